"""The platforms omi builds images for, and what each one means on disk: the OCI platform of its image config and
index entry, the Debian architecture of its packages, and where its dynamic loader and libraries live.

One home for these facts, so that no rule writes `x86_64` or `ld-linux-x86-64.so.2` itself. Pants-free.
"""

from __future__ import annotations

import platform as host
from dataclasses import dataclass
from typing import Dict, Optional, Tuple


class PlatformError(ValueError):
    """A platform omi does not build, in one line."""


@dataclass(frozen=True)
class Platform:
    os: str  # OCI `os`
    architecture: str  # OCI `architecture` (Go's GOARCH names)
    variant: Optional[str]  # OCI `variant`: arm64 images say v8, as registries and distroless expect
    debian_architecture: str
    multiarch: str  # the GNU triplet Debian installs libraries under
    loader: str  # the dynamic loader, relative to the image root
    machine: str  # what `platform.machine()` says on it
    qemu: str  # Debian qemu-user-static's emulator of it, to run its images on another machine

    @property
    def name(self) -> str:
        return f"{self.os}/{self.architecture}"

    @property
    def library_path(self) -> Tuple[str, ...]:
        return (f"usr/lib/{self.multiarch}",)

    def to_oci(self) -> Dict[str, str]:
        """The `platform` of an index entry (and the fields of an image config)."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


AMD64 = Platform("linux", "amd64", None, "amd64", "x86_64-linux-gnu", "lib64/ld-linux-x86-64.so.2", "x86_64",
                 "qemu-x86_64-static")
ARM64 = Platform("linux", "arm64", "v8", "arm64", "aarch64-linux-gnu", "lib/ld-linux-aarch64.so.1", "aarch64",
                 "qemu-aarch64-static")
PLATFORMS = (AMD64, ARM64)
_SPELLINGS = {"linux/amd64": AMD64, "linux/x86_64": AMD64, "linux/arm64": ARM64, "linux/arm64/v8": ARM64,
              "linux/aarch64": ARM64}


def parse(text: str) -> Platform:
    """`linux/amd64`, `linux/arm64` (or `linux/arm64/v8`); anything else is one line naming what omi builds."""
    found = _SPELLINGS.get(text.strip().lower())
    if found is None:
        raise PlatformError(f"{text!r} is not a platform omi builds images for (it builds "
                            f"{', '.join(p.name for p in PLATFORMS)})")
    return found


def for_debian_architecture(architecture: str) -> Platform:
    found = next((p for p in PLATFORMS if p.debian_architecture == architecture), None)
    if found is None:
        raise PlatformError(f"Debian architecture {architecture!r} is not one omi builds images for (it builds "
                            f"{', '.join(p.debian_architecture for p in PLATFORMS)})")
    return found


def for_oci(os: str, architecture: str) -> Platform:
    """The platform an image config (or an index entry) names."""
    found = next((p for p in PLATFORMS if (p.os, p.architecture) == (os, architecture)), None)
    if found is None:
        raise PlatformError(f"{os}/{architecture} is not a platform omi builds images for (it builds "
                            f"{', '.join(p.name for p in PLATFORMS)})")
    return found


def machine_name() -> str:
    return host.machine() or "an unknown machine"


def build_machine() -> Optional[Platform]:
    """The platform of the machine the build runs on, when omi builds for it."""
    return next((p for p in PLATFORMS if p.machine == host.machine()), None)


def or_build_machine(platform: Optional[Platform]) -> Platform:
    """`platform`, or for None (a request's "the build machine's") the build machine's; amd64 on a machine omi does
    not build on, where packaging has already said so in one line."""
    return platform or build_machine() or AMD64
