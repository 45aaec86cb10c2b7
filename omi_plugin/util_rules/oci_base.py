"""Base images from existing OCI images: pulled by digest (`omi_oci_base`) or read from a layout archive
(`omi_oci_archive_base`), verified blob by blob either way.

Both end as an OCI layout in a digest, turned into a base by one rule: the layers keep their bytes (and
compression), the config contributes the environment, and the manifest digest is recorded as the image's
`org.opencontainers.image.base.digest`. The pull is a sandboxed process whose cache key is the digest-pinned
reference, so it runs once per base.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Tuple, cast

from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import (
    EMPTY_DIGEST,
    CreateDigest,
    Digest,
    DigestContents,
    DigestSubset,
    FileContent,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import HydratedSources, HydrateSourcesRequest
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from omi_plugin.oci import media_types, platforms
from omi_plugin.oci.descriptor import Descriptor
from omi_plugin.oci.image import Layer, RuntimeConfig, parse_env
from omi_plugin.oci.layout import blob_path
from omi_plugin.omi_image import BaseImageConfig
from omi_plugin.target_types import (
    BaseLibraryPathField,
    BasePythonField,
    InsecureRegistryField,
    OciArchiveSourceField,
    OciImageReferenceField,
)
from omi_plugin.util_rules.base_image import BaseImage, BaseImageError, BaseImageFieldSet, PlatformBaseImageRequest
from omi_plugin.util_rules.sandbox_tools import LAYER_TOOLS, REGISTRY_TOOLS, ToolProcessRequest, last_error_line
from omi_plugin.util_rules.target_fields import TargetFieldProblems, TargetFieldsRequest

_PULLED = "__pulled"
# Docker schema 2 layer types have OCI twins with the same bytes.
_DOCKER_TO_OCI = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": media_types.LAYER_TAR_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": media_types.LAYER_TAR,
}


@dataclass(frozen=True)
class PulledBaseFieldSet(BaseImageFieldSet):
    required_fields = (OciImageReferenceField,)

    several_platforms = True  # pinned by an index digest, it holds the manifest of each platform

    image: OciImageReferenceField
    insecure: InsecureRegistryField
    python: BasePythonField
    library_path: BaseLibraryPathField


@dataclass(frozen=True)
class ArchiveBaseFieldSet(BaseImageFieldSet):
    required_fields = (OciArchiveSourceField,)

    source: OciArchiveSourceField
    python: BasePythonField
    library_path: BaseLibraryPathField


@dataclass(frozen=True)
class BaseFromLayoutRequest:
    layout: Digest  # an OCI image layout at the root
    name: str
    address: Address
    python: str
    library_path: Tuple[str, ...]


@rule(desc="Pull a base image by digest", level=LogLevel.DEBUG)
async def pull_base_image(request: PulledBaseFieldSet) -> BaseImage:
    return await Get(BaseImage, PlatformBaseImageRequest(request, platforms.or_build_machine(None)))


@rule(desc="Pull a base image by digest, for one platform", level=LogLevel.DEBUG)
async def pull_platform_base_image(platform_request: PlatformBaseImageRequest) -> BaseImage:
    """An image manifest is taken as it is (its config says its platform); from an index, the platform's manifest."""
    request = cast(PulledBaseFieldSet, platform_request.field_set)
    (await Get(TargetFieldProblems, TargetFieldsRequest(request.address))).raise_first()
    reference = request.image.value or ""  # a required field, judged just above
    args = ["pull", "--reference", reference, "--out", _PULLED, "--platform", platform_request.platform.name]
    if request.insecure.value:
        args.append("--insecure")
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(["DOCKER_CONFIG", "HOME"]))
    process = await Get(Process, ToolProcessRequest(
        packages=REGISTRY_TOOLS,
        module="omi_plugin.registry",
        args=tuple(args),
        input_digest=EMPTY_DIGEST,
        description=f"Pull {reference}",
        output_directories=(_PULLED,),
        level=LogLevel.INFO,
        extra_env=tuple(sorted((k, v) for k, v in env.items() if v)),  # registry credentials
    ))
    result = await Get(FallibleProcessResult, Process, process)
    if result.exit_code != 0:
        raise BaseImageError(f"{request.address}: image: {last_error_line(result, 'pull failed')}")
    layout = await Get(Digest, RemovePrefix(result.output_digest, _PULLED))
    return await Get(BaseImage, BaseFromLayoutRequest(
        layout, reference.rsplit("@", 1)[0], request.address, request.python.value or "/usr/bin/python3.11",
        tuple(request.library_path.value or ())))


@rule(desc="Read a base image from an OCI layout archive", level=LogLevel.DEBUG)
async def archive_base_image(request: ArchiveBaseFieldSet) -> BaseImage:
    sources = await Get(HydratedSources, HydrateSourcesRequest(request.source))
    archive = sources.snapshot.files[0]
    process = await Get(Process, ToolProcessRequest(
        packages=LAYER_TOOLS,
        module="omi_plugin.oci.archive",
        args=(archive, _PULLED),
        input_digest=sources.snapshot.digest,
        description=f"Unpack and verify {archive}",
        output_directories=(_PULLED,),
    ))
    result = await Get(FallibleProcessResult, Process, process)
    if result.exit_code != 0:
        raise BaseImageError(f"{request.address}: source: {last_error_line(result, 'unpacking failed')}")
    layout = await Get(Digest, RemovePrefix(result.output_digest, _PULLED))
    return await Get(BaseImage, BaseFromLayoutRequest(
        layout, archive, request.address, request.python.value or "/usr/bin/python3.11",
        tuple(request.library_path.value or ())))


async def _debian_python_version(request: BaseFromLayoutRequest, layers: Tuple[Layer, ...], blobs: Digest) -> str:
    spec = [{"path": blob_path(layer.descriptor.digest), "media_type": layer.descriptor.media_type} for layer in layers]
    spec_digest = await Get(Digest, CreateDigest([FileContent("__layers.json", json.dumps(spec).encode())]))
    process = await Get(Process, ToolProcessRequest(
        packages=LAYER_TOOLS,
        module="omi_plugin.oci.dpkg_version",
        args=(f"{posixpath.basename(request.python)}-minimal", "__layers.json"),
        input_digest=await Get(Digest, MergeDigests([spec_digest, blobs])),
        description=f"Read the CPython version of {request.name}",
        with_libraries=True,  # zstd layers
    ))
    result = await Get(FallibleProcessResult, Process, process)
    if result.exit_code != 0:
        raise BaseImageError(f"{request.address}: the base's layers cannot be read: "
                             f"{last_error_line(result, 'reading failed')}")
    return result.stdout.decode().strip()


@rule(desc="Read a base image layout", level=LogLevel.DEBUG)
async def base_from_layout(request: BaseFromLayoutRequest) -> BaseImage:
    layout = request.layout
    index_digest = await Get(Digest, DigestSubset(layout, PathGlobs(["index.json"])))
    index = json.loads((await Get(DigestContents, Digest, index_digest))[0].content)
    if len(index.get("manifests", [])) != 1:
        raise BaseImageError(f"{request.address}: the base layout lists {len(index.get('manifests', []))} manifests "
                            "(a base must hold exactly one image)")
    manifest_descriptor = Descriptor.from_json(index["manifests"][0])
    manifest_blob = await Get(Digest, DigestSubset(layout, PathGlobs([blob_path(manifest_descriptor.digest)])))
    manifest = json.loads((await Get(DigestContents, Digest, manifest_blob))[0].content)
    config_blob = await Get(Digest, DigestSubset(layout, PathGlobs([blob_path(manifest["config"]["digest"])])))
    config = json.loads((await Get(DigestContents, Digest, config_blob))[0].content)

    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(manifest["layers"]):
        raise BaseImageError(f"{request.address}: the base config has {len(diff_ids)} diff_ids for "
                            f"{len(manifest['layers'])} layers (the base image is malformed)")
    layers = tuple(
        Layer(Descriptor(_DOCKER_TO_OCI.get(l["mediaType"], l["mediaType"]), l["digest"], int(l["size"])), diff_id,
              f"base {request.name}")
        for l, diff_id in zip(manifest["layers"], diff_ids)
    )
    runtime_json = config.get("config") or {}
    runtime = RuntimeConfig(
        user=str(runtime_json.get("User", "")),
        env=parse_env(runtime_json.get("Env") or []),
        working_dir=str(runtime_json.get("WorkingDir", "")),
    )
    blobs = await Get(Digest, DigestSubset(layout, PathGlobs([blob_path(l.descriptor.digest) for l in layers])))
    try:
        platform = platforms.for_oci(str(config.get("os", "")), str(config.get("architecture", "")))
    except platforms.PlatformError as e:
        raise BaseImageError(f"{request.address}: the base's config: {e}") from None
    python_version = ""
    if platform != platforms.build_machine():
        # The build machine's twin interpreter compiles this base's bytecode only if it is the same CPython: the
        # version Debian's package of the interpreter records in the base (`python3.11-minimal`).
        python_version = await _debian_python_version(request, layers, blobs)
    base = BaseImageConfig(name=request.name, manifest_digest=manifest_descriptor.digest, runtime=runtime,
                           python=request.python,
                           library_path=request.library_path or (*platform.library_path, "usr/local/lib"),
                           loader=platform.loader,
                           platform=platform, python_version=python_version)
    return BaseImage(base, layers, blobs)



def rules():
    return [*collect_rules(), UnionRule(BaseImageFieldSet, PulledBaseFieldSet),
            UnionRule(BaseImageFieldSet, ArchiveBaseFieldSet)]
