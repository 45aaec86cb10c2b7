"""What every kind of base image resolves to: its layers, their blobs, and what it contributes to the config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from pants.engine.addresses import Address
from pants.engine.fs import Digest

from omi_plugin.oci.image import Layer
from omi_plugin.omi_image import BaseImageConfig


class BaseImageError(Exception):
    """A base image cannot be built or read (bad lock file, a pinned package gone, an unpinned reference, ...)."""


@dataclass(frozen=True)
class BaseImageRequest:
    address: Address


@dataclass(frozen=True)
class BaseImage:
    config: BaseImageConfig
    layers: Tuple[Layer, ...]
    blobs: Digest  # `blobs/sha256/<hex>` of every layer
