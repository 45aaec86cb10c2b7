"""The base-image lock file: which Debian packages, at which versions, from which URLs, with which sha256.

A lock is canonical JSON (sorted keys, 2-space indent, trailing newline) so that regenerating it from the same
indexes gives the same bytes and a diff shows exactly which packages moved:

    {
      "architecture": "amd64",
      "excludes": ["debconf", ...],
      "lock_format": 1,
      "packages": [
        {"architecture": "amd64", "name": "libc6", "sha256": "...", "size": 2759320,
         "url": "http://deb.debian.org/debian/pool/main/g/glibc/libc6_2.36-9+deb12u9_amd64.deb",
         "version": "2.36-9+deb12u9"},
        ...
      ],
      "requested": ["python3.11-minimal", ...],
      "sources": [{"components": ["main"], "mirror": "http://deb.debian.org/debian", "suite": "bookworm"}, ...],
      "suite": "bookworm"
    }

`requested`, `excludes` and `sources` are what the generator was asked for, so a lock can be refreshed in place
(`generate_lock --refresh LOCK`) without remembering the original command.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from omi_plugin.oci.canonical_json import dumps_pretty

LOCK_FORMAT = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+\Z")


class LockError(ValueError):
    """A lock file is unreadable or invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Source:
    """One suite on one mirror whose indexes the lock was resolved from."""

    mirror: str
    suite: str
    components: Tuple[str, ...] = ("main",)

    def to_json(self) -> Dict[str, Any]:
        return {"mirror": self.mirror, "suite": self.suite, "components": list(self.components)}


@dataclass(frozen=True)
class LockedPackage:
    """One pinned `.deb`: downloading `url` must give exactly `size` bytes hashing to `sha256`."""

    name: str
    version: str
    architecture: str
    url: str
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        """The basename the `.deb` is stored under when fetched (`libc6_2.36-9+deb12u9_amd64.deb`)."""
        return self.url.rsplit("/", 1)[-1]

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "version": self.version, "architecture": self.architecture, "url": self.url,
                "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Lock:
    """A whole lock file."""

    suite: str
    architecture: str
    sources: Tuple[Source, ...]
    requested: Tuple[str, ...]
    excludes: Tuple[str, ...]
    packages: Tuple[LockedPackage, ...]

    def to_json(self) -> Dict[str, Any]:
        return {
            "lock_format": LOCK_FORMAT,
            "suite": self.suite,
            "architecture": self.architecture,
            "sources": [s.to_json() for s in self.sources],
            "requested": list(self.requested),
            "excludes": sorted(self.excludes),
            "packages": [p.to_json() for p in sorted(self.packages, key=lambda p: p.name)],
        }

    def package(self, name: str) -> LockedPackage:
        for package in self.packages:
            if package.name == name:
                return package
        raise KeyError(name)


def canonical_json(value: Any) -> str:
    """Locks and layer records are human-facing JSON: the project's one pretty form."""
    return dumps_pretty(value)


def dump_lock(lock: Lock) -> str:
    return canonical_json(lock.to_json())


def _get(obj: Dict[str, Any], key: str, kind: type, where: str, lock_path: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise LockError(f"{lock_path}: {where}{key} is missing")
    value = obj[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise LockError(f"{lock_path}: {where}{key} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def _string_list(obj: Dict[str, Any], key: str, where: str, lock_path: str) -> Tuple[str, ...]:
    values = _get(obj, key, list, where, lock_path)
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value:
            raise LockError(f"{lock_path}: {where}{key}[{i}] must be a non-empty string")
    return tuple(values)


def parse_lock(text: str, lock_path: str) -> Lock:
    """Validate and load lock JSON; every error is one line naming `lock_path` and the offending field."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise LockError(f"{lock_path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise LockError(f"{lock_path}: the top level must be a JSON object")
    fmt = _get(data, "lock_format", int, "", lock_path)
    if fmt != LOCK_FORMAT:
        raise LockError(f"{lock_path}: lock_format is {fmt}, this version of omi reads {LOCK_FORMAT}")
    unknown = sorted(set(data) - {"lock_format", "suite", "architecture", "sources", "requested", "excludes",
                                  "packages"})
    if unknown:
        raise LockError(f"{lock_path}: unknown field {unknown[0]}")
    sources = []
    for i, raw in enumerate(_get(data, "sources", list, "", lock_path)):
        where = f"sources[{i}]."
        mirror = _get(raw, "mirror", str, where, lock_path)
        if not mirror.startswith(("http://", "https://")):
            raise LockError(f"{lock_path}: {where}mirror must be an http(s) URL, got {mirror!r}")
        sources.append(Source(mirror, _get(raw, "suite", str, where, lock_path),
                              _string_list(raw, "components", where, lock_path)))
    packages = []
    seen = set()
    for i, raw in enumerate(_get(data, "packages", list, "", lock_path)):
        where = f"packages[{i}]."
        name = _get(raw, "name", str, where, lock_path)
        where = f"packages[{i}] ({name})."
        if not _NAME.match(name):
            raise LockError(f"{lock_path}: {where}name is not a Debian package name")
        if name in seen:
            raise LockError(f"{lock_path}: {where}name appears twice")
        seen.add(name)
        url = _get(raw, "url", str, where, lock_path)
        if not url.startswith(("http://", "https://")) or not url.endswith(".deb"):
            raise LockError(f"{lock_path}: {where}url must be an http(s) URL of a .deb, got {url!r}")
        sha256 = _get(raw, "sha256", str, where, lock_path)
        if not _SHA256.match(sha256):
            raise LockError(f"{lock_path}: {where}sha256 must be 64 lowercase hex digits")
        size = _get(raw, "size", int, where, lock_path)
        if size <= 0:
            raise LockError(f"{lock_path}: {where}size must be positive")
        packages.append(LockedPackage(name, _get(raw, "version", str, where, lock_path),
                                      _get(raw, "architecture", str, where, lock_path), url, sha256, size))
    filenames: Dict[str, str] = {}
    for package in packages:
        other = filenames.setdefault(package.filename, package.name)
        if other != package.name:
            raise LockError(f"{lock_path}: packages {other} and {package.name} have the same file name "
                            f"{package.filename}")
    if not packages:
        raise LockError(f"{lock_path}: packages is empty")
    return Lock(
        suite=_get(data, "suite", str, "", lock_path),
        architecture=_get(data, "architecture", str, "", lock_path),
        sources=tuple(sources),
        requested=_string_list(data, "requested", "", lock_path),
        excludes=_string_list(data, "excludes", "", lock_path),
        packages=tuple(packages),
    )


def load_lock(lock_path: str) -> Lock:
    """Read and validate a lock file from disk."""
    try:
        with open(lock_path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise LockError(f"{lock_path}: cannot read lock file ({e.strerror})") from None
    return parse_lock(text, lock_path)


def refresh_command(lock_path: str) -> str:
    """The exact command that re-resolves a lock in place from its recorded sources, requests and excludes."""
    return f"python -m omi_plugin.base_images.generate_lock --refresh {lock_path}"


def stale_package_message(lock_path: str, package: Any) -> str:
    """What to say when a pinned `.deb` is gone (HTTP 404) or changed on the mirror.

    Debian removes the previous `.deb` from the mirror when it publishes an update (security fixes in particular),
    so a lock goes stale by design; the fix is always to re-resolve it and commit the result.
    `package` is a `LockedPackage` or a package name.
    """
    if isinstance(package, LockedPackage):
        what = f"{package.name} {package.version} ({package.url})"
    else:
        what = str(package)
    return (f"{lock_path}: the pinned Debian package {what} is no longer on the mirror (Debian replaces packages "
            f"when it updates them). Refresh the lock with `{refresh_command(lock_path)}` and commit the result.")


def locked_packages(lock: Lock) -> List[LockedPackage]:
    """Packages in lock order (by name), which is also the order their files are merged into the layer."""
    return sorted(lock.packages, key=lambda p: p.name)
