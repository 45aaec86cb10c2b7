"""Sign in-toto statements with `[omi].signing_key`, inside the rule: the key never enters a process (whose
environment Pants would log at debug level, keep in a kept sandbox's `__run.sh`, or send to a remote executor),
and the rule is uncacheable, so a replaced key file is read again on the next run. Failures are one line naming
the target and the option, never the key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Tuple

from pants.base.build_root import BuildRoot
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.rules import Get, _uncacheable_rule, collect_rules

from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.supply_chain.signing import SigningError, load_private_key, sign

PASSWORD_ENV = "OMI_SIGNING_KEY_PASSWORD"  # what users set for an encrypted `[omi].signing_key`


class SigningConfigError(ValueError):
    """One line: `<target>: [omi].signing_key: <what is wrong> (<how to fix it>)`."""


@dataclass(frozen=True)
class SignStatementsRequest:
    address: Address
    statements: Tuple[Tuple[str, bytes], ...]  # (name, statement JSON)


@dataclass(frozen=True)
class SignedStatements:
    bundles: Tuple[Tuple[str, bytes], ...]  # (name, Sigstore bundle JSON), in the request's order


def key_file_path(spec: str, build_root: str) -> str:
    """A key file as `[omi].signing_key` names it: `~` expanded, relative paths from the build root."""
    path = os.path.expanduser(spec)
    return path if os.path.isabs(path) else os.path.join(build_root, path)


@_uncacheable_rule
async def sign_statements(request: SignStatementsRequest, omi: OmiSubsystem, build_root: BuildRoot) -> SignedStatements:
    spec = omi.signing_key
    where = f"{request.address}: [omi].signing_key"
    names = [PASSWORD_ENV, *([spec[len("env:"):]] if spec.startswith("env:") else [])]
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(names))
    password = env.get(PASSWORD_ENV)
    try:
        if spec.startswith("env:"):
            name = spec[len("env:"):]
            if not env.get(name):
                raise SigningError(f"environment variable {name} is not set (export the PEM key in it, or point the "
                                   "option at a key file)")
            pem, origin = (env.get(name) or "").encode(), f"the key in ${name}"
        else:
            path = key_file_path(spec, build_root.path)
            try:
                with open(path, "rb") as f:
                    pem, origin = f.read(), path
            except OSError as e:
                raise SigningError(f"{path}: cannot read the signing key ({e.strerror})") from None
        key = load_private_key(pem, password.encode() if password else None, origin)
        return SignedStatements(tuple((n, sign(_json(data, n), key)) for n, data in request.statements))
    except SigningError as e:
        raise SigningConfigError(f"{where}: {e}") from None


def _json(data: bytes, name: str) -> dict:
    import json

    value = json.loads(data)
    if not isinstance(value, dict):
        raise SigningError(f"the {name} statement is not a JSON object")
    return value


def rules():
    return collect_rules()
