"""Registry credentials and authentication: docker's config.json, credential helpers, Basic and Bearer tokens.

Credentials come from `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`): `credHelpers[registry]`, then
`credsStore`, then `auths[registry]` (`auth` = base64 "user:password", or `username`/`password`,
`identitytoken`, `registrytoken`). A registry answers 401 with `WWW-Authenticate: Basic ...` or
`Bearer realm=...,service=...,scope=...`; for Bearer we fetch a token from the realm with those credentials and
cache it per scope set. Secrets never appear in a repr, an error message, or a log line.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from omi_plugin.registry.errors import RegistryError
from omi_plugin.registry.reference import DOCKER_HUB, is_loopback

DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    """A user name and secret; `repr` is redacted so a stray log line cannot leak them."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)  # OAuth2 refresh token (docker's `identitytoken`)
    registry_token: str = field(default="", repr=False)  # a bearer token given as is (`registrytoken`)
    source: str = ""  # where they came from, for error messages: a file path or a helper name

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, source={self.source!r}, secret=<redacted>)"

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")


def docker_config_path(env: Mapping[str, str] = os.environ) -> str:
    directory = env.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def _normalize_key(key: str) -> str:
    """`https://ghcr.io/v1/` and `ghcr.io` name the same registry in `auths`."""
    if "://" in key:
        key = urllib.parse.urlsplit(key).netloc or key
    return key.split("/", 1)[0].lower()


def _registry_keys(registry: str) -> List[str]:
    keys = [registry.lower()]
    if registry in (DOCKER_HUB, "index.docker.io", "registry-1.docker.io"):
        keys += ["index.docker.io", "docker.io", "registry-1.docker.io"]
    return keys


def _run_helper(helper: str, registry: str, config_path: str, env: Mapping[str, str]) -> Optional[Credentials]:
    program = f"docker-credential-{helper}"
    executable = shutil.which(program, path=env.get("PATH"))
    if executable is None:
        raise RegistryError(registry, f"credential helper {program} is not on PATH",
                            f"install it, or remove it from credsStore/credHelpers in {config_path}")
    server = DOCKER_HUB_AUTH_KEY if registry == DOCKER_HUB else registry
    try:
        done = subprocess.run([executable, "get"], input=server.encode(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=HELPER_TIMEOUT, check=False, env=dict(env))
    except subprocess.TimeoutExpired:
        raise RegistryError(registry, f"credential helper {program} did not answer in {HELPER_TIMEOUT:.0f}s",
                            "unlock the keychain or check the helper") from None
    if done.returncode != 0:
        # Helpers report a missing entry on stdout with a non-zero exit; that is "no credentials", not an error.
        message = (done.stdout or done.stderr).decode("utf-8", "replace").strip().splitlines()
        if message and "not found" in message[0].lower():
            return None
        raise RegistryError(registry, f"credential helper {program} failed (exit {done.returncode})",
                            f"run `echo {server} | {program} get` to see why")
    try:
        answer = json.loads(done.stdout)
        username, secret = str(answer.get("Username", "")), str(answer["Secret"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise RegistryError(registry, f"credential helper {program} returned malformed output",
                            "it must print JSON with Username and Secret") from None
    if username == "<token>":
        return Credentials(identity_token=secret, source=program)
    return Credentials(username, secret, source=program)


def _from_auth_entry(entry: Mapping[str, object], registry: str, config_path: str) -> Optional[Credentials]:
    username = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    encoded = entry.get("auth")
    if encoded:
        try:
            username, _, password = base64.b64decode(str(encoded)).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(registry, f"the `auth` entry for {registry} in {config_path} is not base64 "
                                "of user:password", "run `docker login` again or fix the file") from None
    identity = str(entry.get("identitytoken") or "")
    token = str(entry.get("registrytoken") or "")
    if not (username or password or identity or token):
        return None
    return Credentials(username, password, identity, token, source=config_path)


def load_credentials(registry: str, env: Mapping[str, str] = os.environ) -> Optional[Credentials]:
    """Credentials for `registry` from docker's config, or None (anonymous)."""
    path = docker_config_path(env)
    try:
        with open(path, "rb") as f:
            config = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise RegistryError(registry, f"cannot read {path}: {e.__class__.__name__}",
                            "fix or remove the docker config file") from None
    if not isinstance(config, dict):
        raise RegistryError(registry, f"{path} is not a JSON object", "fix or remove the docker config file")
    keys = _registry_keys(registry)
    helpers = {_normalize_key(k): v for k, v in (config.get("credHelpers") or {}).items()}
    helper = next((helpers[k] for k in keys if k in helpers), None) or config.get("credsStore")
    if helper:
        found = _run_helper(str(helper), registry, path, env)
        if found is not None:
            return found
    auths = {_normalize_key(k): v for k, v in (config.get("auths") or {}).items() if isinstance(v, dict)}
    for key in keys:
        if key in auths:
            return _from_auth_entry(auths[key], registry, path)
    return None


_PARAM_RE = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenge(header: str) -> Tuple[str, Dict[str, str]]:
    """`Bearer realm="https://x/token",service="x",scope="repository:a:pull"` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params: Dict[str, str] = {}
    for match in _PARAM_RE.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), params


def merge_scopes(scopes: Sequence[str]) -> Tuple[str, ...]:
    """`repository:a:pull` + `repository:a:push` -> `repository:a:pull,push`; sorted, so usable as a cache key."""
    actions: Dict[str, List[str]] = {}
    for scope in scopes:
        for one in scope.split(" "):
            if not one:
                continue
            resource, _, acts = one.rpartition(":")
            bucket = actions.setdefault(resource, [])
            bucket.extend(a for a in acts.split(",") if a and a not in bucket)
    return tuple(f"{resource}:{','.join(sorted(acts))}" for resource, acts in sorted(actions.items()))


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


@dataclass
class _Token:
    value: str
    expires: float


class Authenticator:
    """Answers a registry's challenges and then authenticates every later request up front."""

    def __init__(self, registry: str, credentials: Optional[Credentials] = None, *, insecure: bool = False,
                 timeout: float = 60.0, ca_file: Optional[str] = None, config_path: Optional[str] = None,
                 loader: Optional[Callable[[str], Optional[Credentials]]] = None) -> None:
        self.registry = registry
        self._credentials = credentials
        # Credentials (and credential helpers, which may prompt or be slow) are looked up only once a registry
        # asks for them: an open loopback registry never triggers a helper.
        self._loader = loader if credentials is None else None
        self.insecure = insecure
        self.timeout = timeout
        self.config_path = config_path or docker_config_path()
        self._scheme = ""  # "basic" or "bearer" once the registry has said which
        self._bearer: Dict[str, str] = {}
        self._tokens: Dict[Tuple[str, ...], _Token] = {}
        self._tls = ssl.create_default_context(cafile=ca_file)
        if insecure:
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE

    @property
    def credentials(self) -> Optional[Credentials]:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            self._credentials = loader(self.registry)
        return self._credentials

    def headers(self, scopes: Sequence[str]) -> Dict[str, str]:
        if self._scheme == "basic" and self.credentials and self.credentials.username:
            return {"Authorization": self.credentials.basic_header()}
        if self._scheme == "bearer":
            token = self._tokens.get(merge_scopes(scopes))
            if token is not None and token.expires > time.time():
                return {"Authorization": f"Bearer {token.value}"}
        return {}

    def challenge(self, header: Optional[str], scopes: Sequence[str], where: str) -> bool:
        """Learn from a 401; True if the request is worth sending again with new credentials."""
        if not header:
            return False
        scheme, params = parse_challenge(header)
        if scheme == "basic":
            self._scheme = "basic"
            return bool(self.credentials and self.credentials.username)
        if scheme != "bearer" or "realm" not in params:
            return False
        self._scheme = "bearer"
        self._bearer = params
        wanted = merge_scopes([*scopes, params.get("scope", "")])
        self._tokens[merge_scopes(scopes)] = self._fetch_token(wanted, where)
        return True

    def failure(self, where: str, status: int) -> RegistryError:
        """The one-line error for a 401/403 that survived the challenge."""
        if status == 403:
            return RegistryError(where, "access denied", "the credentials lack permission for this repository")
        if self.credentials is None:
            return RegistryError(where, "authentication required",
                                 f"no credentials for {self.registry} in {self.config_path}; "
                                 f"run `docker login {self.registry}` or set DOCKER_CONFIG")
        return RegistryError(where, "authentication failed",
                             f"check the credentials for {self.registry} from {self.credentials.source}")

    def _fetch_token(self, scopes: Tuple[str, ...], where: str) -> _Token:
        realm = self._bearer["realm"]
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("https", "http"):
            raise RegistryError(where, f"token realm {realm!r} is not an HTTP(S) URL", "check the registry")
        if parts.scheme == "http" and not (self.insecure or is_loopback(parts.netloc)):
            raise RegistryError(where, f"token realm {parts.netloc} is plain HTTP",
                                "refusing to send credentials over it; mark the registry insecure if intended")
        creds = self.credentials
        if creds is not None and creds.registry_token:
            return _Token(creds.registry_token, time.time() + 3600)
        query: List[Tuple[str, str]] = []
        if "service" in self._bearer:
            query.append(("service", self._bearer["service"]))
        query += [("scope", s) for s in scopes]
        headers = {"User-Agent": "omi-registry-client/1"}
        if creds is not None and creds.identity_token:
            # OAuth2 refresh-token grant, as docker does for `identitytoken`.
            form = [("grant_type", "refresh_token"), ("refresh_token", creds.identity_token),
                    ("client_id", "omi"), ("access_type", "offline"), *query]
            request = urllib.request.Request(realm, data=urllib.parse.urlencode(form).encode(), headers={
                **headers, "Content-Type": "application/x-www-form-urlencoded"}, method="POST")
        else:
            if creds is not None and creds.username:
                headers["Authorization"] = creds.basic_header()
            separator = "&" if parts.query else "?"
            request = urllib.request.Request(realm + separator + urllib.parse.urlencode(query), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._tls) as answer:
                payload = json.loads(answer.read(1 << 20))
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise self.failure(where, 401 if creds else 403) from None
            raise RegistryError(where, f"token service {parts.netloc} answered {e.code}",
                                "retry later or check the registry's auth service") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise RegistryError(where, f"token service {parts.netloc} unreachable: {reason}",
                                "check the network and the registry's auth service") from None
        except ValueError:
            raise RegistryError(where, f"token service {parts.netloc} returned malformed JSON",
                                "check the registry's auth service") from None
        token = payload.get("token") or payload.get("access_token") if isinstance(payload, dict) else None
        if not token:
            raise RegistryError(where, f"token service {parts.netloc} returned no token", "check the credentials")
        lifetime = float(payload.get("expires_in") or 60)
        # Renew a little early so a long upload does not start with a token about to expire.
        return _Token(str(token), time.time() + max(10.0, lifetime - 10.0))
