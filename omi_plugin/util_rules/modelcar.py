"""The KServe ModelCar layer of an `omi_model` with `modelcar=True` (see `base_images/modelcar_layer.py`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Tuple

from pants.engine.addresses import Address
from pants.engine.fs import DigestContents, PathGlobs
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from omi_plugin.base_images.build_layer import BuildError
from omi_plugin.base_images.modelcar_layer import model_links
from omi_plugin.base_images.shipped_locks import modelcar_busybox, shipped_lock
from omi_plugin.oci.platforms import AMD64, Platform
from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.supply_chain.sbom import DebianPackage
from omi_plugin.util_rules.debian_base import LockedDebs, LockedDebsRequest
from omi_plugin.util_rules.layers import LAYER_OUT, BuiltLayer, LayerToolRequest
from omi_plugin.util_rules.sandbox_tools import BASE_IMAGE_TOOLS


class ModelCarError(ValueError):
    """One line: `<target>: <what> (<fix>)`."""


@dataclass(frozen=True)
class ModelCarLayerRequest:
    address: Address
    model_yaml: str  # its path, for errors
    model_name: str
    entries: Tuple[str, ...]  # model.yaml's `files`
    platform: Platform = AMD64  # the image's: its busybox is that architecture's


@dataclass(frozen=True)
class ModelCarLayer:
    built: BuiltLayer
    packages: Tuple[DebianPackage, ...]  # what the layer adds, for the SBOM
    lock: Tuple[str, str]  # (repository path, sha256) of the busybox lock, for the provenance


@rule(desc="Build the KServe ModelCar layer", level=LogLevel.DEBUG)
async def modelcar_layer(request: ModelCarLayerRequest, omi: OmiSubsystem) -> ModelCarLayer:
    try:
        model_links(request.model_name, request.entries)
    except BuildError as e:
        raise ModelCarError(f"{request.address}: {request.model_yaml}: files: {e}") from None
    lock_path = omi.modelcar_lockfile
    architecture = request.platform.debian_architecture
    if not lock_path:
        shipped = shipped_lock(modelcar_busybox(architecture))
        locked_request = LockedDebsRequest(f"{request.address}: modelcar", shipped.origin, shipped.content,
                                           shipped=shipped.name)
    else:
        found = await Get(DigestContents, PathGlobs([lock_path]))
        if not found:
            raise ModelCarError(
                f"{request.address}: modelcar: the busybox lock [omi].modelcar_lockfile = {lock_path!r} does not "
                f"exist (create it: python -m omi_plugin.base_images.generate_lock --suite bookworm --arch "
                f"{architecture} --package busybox-static --output {lock_path}, or unset the option for the locks "
                "omi ships)")
        try:
            document = json.loads(found[0].content)
        except ValueError:
            document = None
        # A lock that is not one: its own reader says what is wrong with it.
        locked_architecture = document.get("architecture") if isinstance(document, dict) else None
        if locked_architecture not in (None, architecture):
            raise ModelCarError(
                f"{request.address}: modelcar: the busybox lock [omi].modelcar_lockfile = {lock_path!r} is for "
                f"{locked_architecture}, and the image is {request.platform.name} (unset the option for the locks omi "
                f"ships, or build this target for {locked_architecture})")
        locked_request = LockedDebsRequest(f"{request.address}: modelcar", lock_path, found[0].content)
    locked = await Get(LockedDebs, LockedDebsRequest, locked_request)
    entries = [arg for entry in request.entries for arg in ("--entry", entry)]
    built = await Get(BuiltLayer, LayerToolRequest(
        BASE_IMAGE_TOOLS, "omi_plugin.base_images.modelcar_layer",
        ("--lock", locked.lock_name, "--debs", "debs", "--model", request.model_name, *entries, "--out", LAYER_OUT),
        locked.digest, f"Layer: KServe ModelCar for {request.address}",
    ))
    return ModelCarLayer(built, locked.packages, locked.lock)


def rules():
    return collect_rules()
