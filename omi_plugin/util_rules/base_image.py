"""What every kind of base image resolves to (its layers, their blobs, its part of the config), and the dispatch.

Each kind (`omi_debian_base`, `omi_oci_base`, `omi_oci_archive_base`) is a member of the `BaseImageFieldSet` union
with its own rule from its field set to `BaseImage`; adding a kind is a field set, a rule and a `UnionRule`. No
address is omi's default base, which needs no target (`DefaultBaseImageRequest`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from pants.engine.addresses import Address
from pants.engine.environment import EnvironmentName
from pants.engine.fs import Digest
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import FieldSet, WrappedTarget, WrappedTargetRequest
from pants.engine.unions import UnionMembership, union

from omi_plugin.oci.image import Layer
from omi_plugin.oci.platforms import Platform, or_build_machine
from omi_plugin.omi_image import BaseImageConfig
from omi_plugin.supply_chain.sbom import DebianPackage


class BaseImageError(Exception):
    """A base image cannot be built or read (bad lock file, a pinned package gone, an unpinned reference, ...)."""


@dataclass(frozen=True)
class BaseImageRequest:
    address: Optional[Address]  # None: omi's default base
    # The default base's platform (None: the build machine's); a base target's platform is its own (a Debian base's
    # is its lock's architecture), which the image's must then be.
    platform: Optional[Platform] = None


@dataclass(frozen=True)
class DefaultBaseImageRequest:
    """omi's own base, built from the Debian lock the plugin ships for the platform (`debian_base.py`)."""

    platform: Optional[Platform] = None  # None: the build machine's


@dataclass(frozen=True)
class BaseImage:
    config: BaseImageConfig
    layers: Tuple[Layer, ...]
    blobs: Digest  # `blobs/sha256/<hex>` of every layer
    # What the SBOM and the provenance say of the base: the Debian packages it was assembled from, and the lock
    # files (path, sha256) that pinned them. Empty for a pulled base, whose contents omi did not choose.
    packages: Tuple[DebianPackage, ...] = ()
    locks: Tuple[Tuple[str, str], ...] = ()


@union(in_scope_types=[EnvironmentName])  # its members run processes, in the caller's environment
class BaseImageFieldSet(FieldSet):
    """One kind of base image: its members each have a rule `(their field set) -> BaseImage`. A member that can hold
    several platforms (`several_platforms`: an `omi_oci_base` pinned by an index digest, the only one so far) is
    asked for one through `PlatformBaseImageRequest`, whose one rule is that kind's."""

    several_platforms = False


@dataclass(frozen=True)
class PlatformBaseImageRequest:
    """A base that can hold several platforms, for one of them."""

    field_set: BaseImageFieldSet
    platform: Platform


@rule(desc="Resolve a base image")
async def base_image(request: BaseImageRequest, union_membership: UnionMembership) -> BaseImage:
    if request.address is None:
        return await Get(BaseImage, DefaultBaseImageRequest(request.platform))
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="base_image"))
    target = wrapped.target
    kinds = [kind for kind in union_membership.get(BaseImageFieldSet) if kind.is_applicable(target)]
    if not kinds:
        raise BaseImageError(f"{request.address}: is a `{target.alias}`, not a base image (point base_image at an "
                             "omi_debian_base, omi_oci_base or omi_oci_archive_base target)")
    field_set = kinds[0].create(target)
    if field_set.several_platforms:
        return await Get(BaseImage, PlatformBaseImageRequest(field_set, or_build_machine(request.platform)))
    return await Get(BaseImage, BaseImageFieldSet, field_set)


def rules():
    return collect_rules()
