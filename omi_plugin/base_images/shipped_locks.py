"""The Debian locks the plugin ships as package data: omi's default base image and the ModelCar busybox, so that an
adopting repository needs no lock of its own. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from omi_contract.version import OMI_VERSION

DEFAULT_BASE = "python3.11-bookworm"  # CPython 3.11 and the C/C++ runtime libraries from Debian 12 (amd64)
MODELCAR_BUSYBOX = "busybox-bookworm"
_PACKAGE = "omi_plugin.base_images"
_DIRECTORY = "locks"


def default_base(debian_architecture: str) -> str:
    """The name of the default base's lock for an architecture (amd64's has none in its name)."""
    return _for_architecture(DEFAULT_BASE, debian_architecture)


def modelcar_busybox(debian_architecture: str) -> str:
    """The name of the ModelCar busybox lock for an architecture."""
    return _for_architecture(MODELCAR_BUSYBOX, debian_architecture)


def _for_architecture(name: str, debian_architecture: str) -> str:
    return name if debian_architecture == "amd64" else f"{name}-{debian_architecture}"


@dataclass(frozen=True)
class ShippedLock:
    name: str
    origin: str  # where it comes from, as the provenance names it: a package URL with the file as subpath
    content: bytes

    @property
    def image_name(self) -> str:
        """What an image built on this base calls it (`org.opencontainers.image.base.name`)."""
        return f"omi:{self.name}"


def shipped_lock(name: str) -> ShippedLock:
    path = f"{_DIRECTORY}/{name}.lock.json"
    content = resources.files(_PACKAGE).joinpath(path).read_bytes()  # type: ignore[attr-defined]
    return ShippedLock(name, f"pkg:pypi/omi-plugin@{OMI_VERSION}#{_PACKAGE.replace('.', '/')}/{path}", content)


def stale_shipped_lock_message(name: str, what: str) -> str:
    """A shipped lock cannot be refreshed in place: the fix is a newer plugin, or a lock of one's own."""
    return (f"omi-plugin {OMI_VERSION}'s {name} lock pins the Debian package {what}, which is no longer on the mirror "
            f"(Debian replaces packages when it updates them). Upgrade omi-plugin, or lock your own: `python -m "
            f"omi_plugin.base_images.generate_lock --refresh` on a copy of the lock, an `omi_debian_base` target for "
            f"it, and `[omi].default_base_image` (or `[omi].modelcar_lockfile`) naming it.")
