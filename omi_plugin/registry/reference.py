"""Image references (`registry[:port]/repo[:tag][@sha256:…]`) and which hosts may be spoken to in plain HTTP."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Optional

from omi_plugin.oci.descriptor import DIGEST_RE
from omi_plugin.oci.references import REPOSITORY_RE, TAG_RE

DOCKER_HUB = "docker.io"
# Docker Hub's API host differs from the name users type.
_API_HOSTS = {DOCKER_HUB: "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}


class ReferenceError(ValueError):
    """A reference, registry host, repository or tag is malformed."""


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: Optional[str] = None
    digest: Optional[str] = None

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def where(self) -> str:
        return f"{self.registry}/{self.repository}"


def api_host(registry: str) -> str:
    return _API_HOSTS.get(registry, registry)


def host_of(registry: str) -> str:
    """`127.0.0.1:5000` -> `127.0.0.1`, `[::1]:5000` -> `::1`."""
    if registry.startswith("["):
        return registry[1:].split("]", 1)[0]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def is_loopback(registry: str) -> bool:
    """Plain HTTP is allowed without opt-in only to this machine: `localhost`, 127.0.0.0/8 and ::1."""
    host = host_of(registry).lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_registry(registry: str) -> str:
    if not registry or "/" in registry or any(c.isspace() for c in registry) or "@" in registry:
        raise ReferenceError(f"{registry!r} is not a registry host (expected HOST[:PORT], e.g. ghcr.io or 127.0.0.1:5000)")
    return registry


def validate_repository(repository: str) -> str:
    if not REPOSITORY_RE.match(repository):
        raise ReferenceError(f"{repository!r} is not a valid repository name (lowercase path components like team/model)")
    return repository


def validate_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise ReferenceError(f"{tag!r} is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")
    return tag


def _looks_like_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component.startswith("[")


def parse(text: str) -> Reference:
    """Parse `registry/repo[:tag][@digest]`; a name without a registry part is Docker Hub's, as docker does."""
    rest, digest = text, None
    if "@" in text:
        rest, digest = text.split("@", 1)
    if digest is not None and not DIGEST_RE.match(digest):
        raise ReferenceError(f"{text!r}: {digest!r} is not a sha256 digest (sha256: and 64 lowercase hex digits)")
    first, _, remainder = rest.partition("/")
    if remainder and _looks_like_registry(first):
        registry, path = first, remainder
    else:
        registry, path = DOCKER_HUB, rest
        if "/" not in path:
            path = f"library/{path}"
    tag = None
    last_slash = path.rfind("/")
    if ":" in path[last_slash + 1:]:
        path, tag = path.rsplit(":", 1)
        validate_tag(tag)
    validate_registry(registry)
    validate_repository(path)
    return Reference(registry, path, tag, digest)
