"""Another platform's Python dependencies: the versions the model's resolve locks, as that platform's wheels, in a
packed PEX whose `.deps` become the image's dependency layer. Nothing is built or run for the other platform.

Pex chooses the wheels from the lockfile with the platform's complete-platform file (shipped beside the Debian locks,
`base_images/complete_platforms/`). Pants 2.17 would run that Pex under its own CPython 3.9, whose pip then refuses
every wheel that requires Python 3.10 or newer while downloading it (Pex 2.1.137 checks `Requires-Python` against
the interpreter it runs on, not the target platform); so the PEX is built by a Pex run on the resolve's own
interpreter (CPython 3.11), with the requirement strings and lockfile Pants derives for the targets.
"""

from __future__ import annotations

import itertools
import json
import posixpath
import re
from dataclasses import dataclass
from importlib import resources
from typing import List

from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import PexLayout, PexRequest, PythonExecutable, ReqStrings
from pants.backend.python.util_rules.pex_cli import PexCliProcess
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.backend.python.util_rules.pex_requirements import (
    LoadedLockfile,
    LoadedLockfileRequest,
    Lockfile,
    PexRequirements,
    Resolve,
    ResolvePexConfig,
    ResolvePexConfigRequest,
)
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.process import FallibleProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

from omi_plugin.oci.platforms import Platform

PEX_DIR = "runtime.pex"


class ForeignWheelsError(ValueError):
    """One line: `<target>: platforms: <what is wrong> (<how to fix it>)`."""


@dataclass(frozen=True)
class ForeignDependenciesRequest:
    address: Address  # the omi_model, for messages
    python_addresses: Addresses
    platform: Platform


@dataclass(frozen=True)
class ForeignDependencies:
    pex: Digest  # a packed PEX at `PEX_DIR`: its `.deps` hold the platform's wheels


def complete_platform(platform: Platform) -> FileContent:
    """The complete-platform file the plugin ships for a platform."""
    name = f"{platform.os}_{platform.architecture}-cp311-bookworm.json"
    data = resources.files("omi_plugin.base_images").joinpath(  # type: ignore[attr-defined]
        f"complete_platforms/{name}").read_bytes()
    return FileContent(f"__complete_platforms/{name}", data)


@rule(desc="Resolve the runtime's wheels for another platform", level=LogLevel.DEBUG)
async def foreign_dependencies(request: ForeignDependenciesRequest) -> ForeignDependencies:
    pex_request = await Get(PexRequest, PexFromTargetsRequest(
        request.python_addresses, output_filename=PEX_DIR, internal_only=False, layout=PexLayout.PACKED,
        description=f"Resolve the runtime of {request.address}"))
    requirements = pex_request.requirements
    if not isinstance(requirements, PexRequirements) or not isinstance(requirements.from_superset, Resolve):
        raise ForeignWheelsError(f"{request.address}: platforms: {request.platform.name} wheels are chosen from the "
                                 "model resolve's Pex lockfile (`[python].enable_resolves`, then `pants "
                                 "generate-lockfiles`)")
    resolve = requirements.from_superset
    platform_file = complete_platform(request.platform)
    # Pex must run on the platform's CPython version (see the module's docstring), whatever the resolve allows.
    version = json.loads(platform_file.content)["marker_environment"]["python_version"]
    req_strings, lockfile, config, python = await MultiGet(
        Get(ReqStrings, PexRequirements, requirements),
        Get(Lockfile, Resolve, resolve),
        Get(ResolvePexConfig, ResolvePexConfigRequest(resolve.name)),
        Get(PythonExecutable, InterpreterConstraints, InterpreterConstraints([f"CPython=={version}.*"])),
    )
    loaded = await Get(LoadedLockfile, LoadedLockfileRequest(lockfile))
    if not loaded.is_pex_native:
        raise ForeignWheelsError(f"{request.address}: platforms: the {resolve.name} resolve's lockfile is not a Pex "
                                 f"lockfile, which {request.platform.name} wheels are chosen from (generate it with "
                                 "`pants generate-lockfiles`)")
    inputs = await Get(Digest, MergeDigests([loaded.lockfile_digest, await Get(Digest, CreateDigest([platform_file]))]))
    result = await Get(FallibleProcessResult, PexCliProcess(
        subcommand=(),
        extra_args=(*req_strings.req_strings, "--lock", loaded.lockfile_path, *config.pex_args(),
                    "--complete-platform", platform_file.path, "--layout", "packed", "--output-file", PEX_DIR),
        additional_input_digest=inputs,
        extra_env={"PEX_PYTHON": python.path},  # see the module's docstring
        output_directories=(PEX_DIR,),
        description=f"Resolve the {request.platform.name} wheels of {request.address}",
    ))
    if result.exit_code != 0:
        raise ForeignWheelsError(f"{request.address}: platforms: the {request.platform.name} wheels cannot be "
                                 f"chosen: {pex_error(result.stderr.decode(errors='replace'), request.platform.name)}")
    return ForeignDependencies(result.output_digest)


_NO_ARTIFACT = re.compile(r"^\d+\.\) (?P<project>\S+) (?P<version>\S+) \(via: [^)]*\) does not have any "
                          r"compatible artifacts")


def pex_error(stderr: str, platform: str) -> str:
    """Pex's reason, in one line: the locked distributions without a file for `platform`, each with the platforms
    its files are for; else Pex's last lines."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    missing: List[str] = []
    for i, line in enumerate(lines):
        found = _NO_ARTIFACT.match(line)
        if not found:
            continue
        files = list(itertools.takewhile(lambda u: "://" in u, lines[i + 1:]))
        tags = sorted({posixpath.basename(u)[:-len(".whl")].split("-")[-1] for u in files if u.endswith(".whl")})
        wheels = f" (its wheels are for {', '.join(tags)})" if tags else ""
        missing.append(f"{found['project']} {found['version']}{wheels}")
    if missing:
        return (f"the lockfile has no {platform} wheel of {'; '.join(missing)} (lock a version that ships one, or "
                "leave this platform out)")
    return " ".join(lines[-3:])[-600:] if lines else "Pex failed without a message"


def rules():
    return collect_rules()
