"""Finds what a model's image serves with in the model's own resolve: the `omi_runtime` server, its built-in handler
and that format's libraries, and the smoke checker `pants check` runs.

Each is the target that provides the module in that resolve, as Pants's protobuf backend finds its runtime library:
in an adopting repository the `omi-runtime` requirement (locked with the user's model libraries, so an image never
holds two numpys), here the first-party `omi_runtime` targets. `[omi].runtime`, `[omi].builtin_handlers` and
`[omi].smoke_checker` name a target instead. The locked `omi-runtime` must be this plugin's version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from pants.backend.python.dependency_inference.module_mapper import PythonModuleOwners, PythonModuleOwnersRequest
from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import PythonRequirementsField
from pants.engine.addresses import Address, AddressInput
from pants.engine.fs import DigestContents, PathGlobs
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest

from omi_contract import formats
from omi_contract.version import OMI_VERSION
from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.supply_chain.python_lock import PythonLockError, locked_versions
from omi_plugin.target_types import OmiModelResolveField

SERVER_MODULE = "omi_runtime"
SMOKE_MODULE = "omi_runtime.smoke"
SERVER_DISTRIBUTION = "omi-runtime"


class RuntimeLibraryError(Exception):
    """What the model's resolve lacks, in one line: `<target>: resolve '<name>': <what> (<the line to add>)`."""


@dataclass(frozen=True)
class ServerAddressesRequest:
    model: Address
    format: str  # model.yaml's `format`; empty when the model names its own `handler`
    smoke: bool = False  # also the smoke checker


@dataclass(frozen=True)
class ServerAddresses:
    resolve: str
    addresses: Tuple[Address, ...]


@dataclass(frozen=True)
class _Need:
    module: str
    distribution: str
    why: str  # what needs it, for the error


def _missing(model: Address, resolve: str, need: _Need, lockfile: str) -> str:
    return (f"{model}: resolve {resolve!r}: no `python_requirement` provides the module `{need.module}` that "
            f"{need.why} needs (add `{_requirement_line(need.distribution)}` to the requirements of resolve "
            f"{resolve!r}{f', then run `pants generate-lockfiles --resolve={resolve}`' if lockfile else ''})")


def _requirement_line(distribution: str) -> str:
    return f"{distribution}=={OMI_VERSION}" if distribution == SERVER_DISTRIBUTION else distribution


@rule(desc="Find the model server in the model's resolve")
async def server_addresses(request: ServerAddressesRequest, omi: OmiSubsystem,
                           python_setup: PythonSetup) -> ServerAddresses:
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(request.model, description_of_origin="omi_model"))
    resolve = wrapped.target[OmiModelResolveField].normalized_value(python_setup)
    lockfile = python_setup.resolves.get(resolve, "")

    overrides: List[Tuple[str, str]] = []  # (address spec, option)
    needs: List[_Need] = []
    if omi.runtime:
        overrides.append((omi.runtime, "[omi].runtime"))
    else:
        needs.append(_Need(SERVER_MODULE, SERVER_DISTRIBUTION, "the model server"))
    builtin = formats.lookup(request.format) if request.format else None
    if builtin is not None and builtin.handler:
        override = omi.builtin_handlers.get(builtin.name, "")
        if override:
            overrides.append((override, f"[omi].builtin_handlers[{builtin.name!r}]"))
        else:
            why = f"the built-in `{builtin.name}` handler"
            needs.append(_Need(builtin.handler_module, SERVER_DISTRIBUTION, why))
            needs.extend(_Need(module, dist, why) for module, dist in builtin.libraries)
    if request.smoke:
        if omi.smoke_checker:
            overrides.append((omi.smoke_checker, "[omi].smoke_checker"))
        else:
            needs.append(_Need(SMOKE_MODULE, SERVER_DISTRIBUTION, "`pants check`'s smoke test"))

    owners = await MultiGet(Get(PythonModuleOwners, PythonModuleOwnersRequest(n.module, resolve)) for n in needs)
    found: Dict[Address, _Need] = {}
    for need, owner in zip(needs, owners):
        if owner.ambiguous:
            raise RuntimeLibraryError(
                f"{request.model}: resolve {resolve!r}: several targets provide the module `{need.module}`: "
                f"{', '.join(sorted(map(str, owner.ambiguous)))} (keep one, or name it in "
                f"{'[omi].runtime' if need.module == SERVER_MODULE else '[omi].builtin_handlers'})")
        if not owner.unambiguous:
            raise RuntimeLibraryError(_missing(request.model, resolve, need, lockfile))
        for address in owner.unambiguous:
            # A first-party module's owner is its file's target; the server needs its whole target (its transports
            # and handlers are imported by name, so inference cannot find them).
            found.setdefault(address.maybe_convert_to_target_generator() if address.is_file_target else address, need)
    named = await MultiGet(Get(Address, AddressInput, AddressInput.parse(spec, description_of_origin=option))
                           for spec, option in overrides)

    server_targets = await MultiGet(
        Get(WrappedTarget, WrappedTargetRequest(a, description_of_origin="omi_model"))
        for a, need in found.items() if need.module == SERVER_MODULE)
    if any(t.target.has_field(PythonRequirementsField) for t in server_targets):
        # A server of another omi version could read the model record this plugin writes differently.
        contents = await Get(DigestContents, PathGlobs([lockfile])) if lockfile else DigestContents()
        _check_locked_version(request.model, resolve, lockfile, contents[0].content if contents else None)
    return ServerAddresses(resolve, tuple(sorted({*found, *named})))


def _check_locked_version(model: Address, resolve: str, lockfile: str, content: Optional[bytes]) -> None:
    regenerate = f"`pants generate-lockfiles --resolve={resolve}`"
    if content is None:
        raise RuntimeLibraryError(f"{model}: resolve {resolve!r}: its lockfile {lockfile!r} does not exist "
                                  f"(run {regenerate})")
    try:
        versions = locked_versions(content.decode("utf-8", errors="replace"), lockfile)
    except PythonLockError as e:
        raise RuntimeLibraryError(f"{model}: resolve {resolve!r}: {e}") from None
    locked: Optional[str] = versions.get(SERVER_DISTRIBUTION)
    if locked is None:
        raise RuntimeLibraryError(f"{model}: resolve {resolve!r}: {lockfile} does not lock {SERVER_DISTRIBUTION} "
                                  f"(require `{SERVER_DISTRIBUTION}=={OMI_VERSION}` and run {regenerate})")
    if locked != OMI_VERSION:
        raise RuntimeLibraryError(
            f"{model}: resolve {resolve!r}: {lockfile} locks {SERVER_DISTRIBUTION} {locked}, but the plugin is "
            f"omi-plugin {OMI_VERSION} (require `{SERVER_DISTRIBUTION}=={OMI_VERSION}` and run {regenerate}, or "
            f"install omi-plugin=={locked})")


def rules():
    return collect_rules()
