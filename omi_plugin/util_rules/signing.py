"""Sign in-toto statements with `[omi].signing_key`, in a process that is never cached (its environment holds the
key), and turn a failure into one line naming the target and the option."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Tuple

from pants.base.build_root import BuildRoot
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.supply_chain import sign_tool
from omi_plugin.supply_chain.sign_tool import KEY_ENV, KEY_FILE_ENV, PASSWORD_ENV
from omi_plugin.util_rules.sandbox_tools import ToolProcessRequest

SIGN_TOOLS = ("omi_plugin.supply_chain",)


class SigningConfigError(ValueError):
    """One line: `<target>: [omi].signing_key: <what is wrong> (<how to fix it>)`."""


@dataclass(frozen=True)
class SignStatementsRequest:
    address: Address
    statements: Tuple[Tuple[str, bytes], ...]  # (name, statement JSON)


@dataclass(frozen=True)
class SignedStatements:
    bundles: Tuple[Tuple[str, bytes], ...]  # (name, Sigstore bundle JSON), in the request's order


@rule(desc="Sign the attestations of an OMI image", level=LogLevel.DEBUG)
async def sign_statements(request: SignStatementsRequest, omi: OmiSubsystem, build_root: BuildRoot) -> SignedStatements:
    spec = omi.signing_key
    where = f"{request.address}: [omi].signing_key"
    if spec.startswith("env:"):
        name = spec[len("env:"):]
        env = await Get(EnvironmentVars, EnvironmentVarsRequest([name, PASSWORD_ENV]))
        if not env.get(name):
            raise SigningConfigError(f"{where}: environment variable {name} is not set (export the PEM key in it, "
                                     "or point the option at a key file)")
        key_env: Tuple[Tuple[str, str], ...] = ((KEY_ENV, env[name]),)
    else:
        env = await Get(EnvironmentVars, EnvironmentVarsRequest([PASSWORD_ENV]))
        path = spec if os.path.isabs(spec) else os.path.join(build_root.path, spec)
        key_env = ((KEY_FILE_ENV, path),)
    password = ((PASSWORD_ENV, env[PASSWORD_ENV]),) if env.get(PASSWORD_ENV) else ()
    files = await Get(Digest, CreateDigest([FileContent(f"statements/{n}.json", data) for n, data in request.statements]))
    process = await Get(Process, ToolProcessRequest(
        packages=SIGN_TOOLS,
        module=sign_tool.__name__,
        args=(*(f"--statement={n}=statements/{n}.json" for n, _ in request.statements), "--out", "signed"),
        input_digest=files,
        description=f"Sign the attestations of {request.address}",
        output_directories=("signed",),
        extra_env=(*key_env, *password),
        with_libraries=True,
        cache_scope=ProcessCacheScope.PER_SESSION,
    ))
    result = await Get(FallibleProcessResult, Process, process)
    if result.exit_code != 0:
        lines = [line for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
        reason = lines[-1].removeprefix("error: ") if lines else f"the signer exited with {result.exit_code}"
        raise SigningConfigError(f"{where}: {reason}")
    contents = {c.path: c.content for c in await Get(DigestContents, Digest, result.output_digest)}
    return SignedStatements(tuple((n, contents[f"signed/{n}.sigstore.json"]) for n, _ in request.statements))


def rules():
    return collect_rules()
