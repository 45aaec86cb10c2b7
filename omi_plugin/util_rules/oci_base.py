"""Base images from `omi_oci_base` targets: pulled by digest from a registry, verified blob by blob.

The pull is a sandboxed process whose cache key is the digest-pinned reference, so it runs once per base; the
layers keep their bytes (and compression), the config contributes the environment, and the manifest digest is
recorded as the image's `org.opencontainers.image.base.digest`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import EMPTY_DIGEST, Digest, DigestContents, DigestSubset, PathGlobs, RemovePrefix
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import Target
from pants.util.logging import LogLevel

from omi_plugin.oci import media_types
from omi_plugin.oci.descriptor import Descriptor
from omi_plugin.oci.image import Layer, RuntimeConfig, parse_env
from omi_plugin.oci.layout import blob_path
from omi_plugin.omi_image import BaseImageConfig
from omi_plugin.target_types import BaseLibraryPathField, BasePythonField, InsecureRegistryField, OciImageReferenceField
from omi_plugin.util_rules.sandbox_tools import REGISTRY_TOOLS, ToolProcessRequest

_PULLED = "__pulled"
# Docker schema 2 layer types have OCI twins with the same bytes.
_DOCKER_TO_OCI = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": media_types.LAYER_TAR_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": media_types.LAYER_TAR,
}


class PullBaseError(Exception):
    """The base image could not be pulled or is not usable."""


@dataclass(frozen=True)
class PulledBaseRequest:
    target: Target


@dataclass(frozen=True)
class PulledBase:
    config: BaseImageConfig
    layers: tuple
    blobs: Digest


@rule(desc="Pull a base image by digest", level=LogLevel.DEBUG)
async def pull_base_image(request: PulledBaseRequest) -> PulledBase:
    target = request.target
    reference = target[OciImageReferenceField].value
    args = ["pull", "--reference", reference, "--out", _PULLED]
    if target[InsecureRegistryField].value:
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
        message = (result.stderr.decode().strip().splitlines() or ["pull failed"])[-1]
        raise PullBaseError(f"{target.address}: image: {message}")
    layout = await Get(Digest, RemovePrefix(result.output_digest, _PULLED))

    index_digest = await Get(Digest, DigestSubset(layout, PathGlobs(["index.json"])))
    index = json.loads((await Get(DigestContents, Digest, index_digest))[0].content)
    manifest_descriptor = Descriptor.from_json(index["manifests"][0])
    manifest_blob = await Get(Digest, DigestSubset(layout, PathGlobs([blob_path(manifest_descriptor.digest)])))
    manifest = json.loads((await Get(DigestContents, Digest, manifest_blob))[0].content)
    config_blob = await Get(Digest, DigestSubset(layout, PathGlobs([blob_path(manifest["config"]["digest"])])))
    config = json.loads((await Get(DigestContents, Digest, config_blob))[0].content)

    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(manifest["layers"]):
        raise PullBaseError(f"{target.address}: image: config has {len(diff_ids)} diff_ids for "
                            f"{len(manifest['layers'])} layers (the base image is malformed)")
    layers = tuple(
        Layer(Descriptor(_DOCKER_TO_OCI.get(l["mediaType"], l["mediaType"]), l["digest"], int(l["size"])), diff_id,
              f"base {reference.rsplit('@', 1)[0]}")
        for l, diff_id in zip(manifest["layers"], diff_ids)
    )
    runtime_json = config.get("config") or {}
    runtime = RuntimeConfig(
        user=str(runtime_json.get("User", "")),
        env=parse_env(runtime_json.get("Env") or []),
        working_dir=str(runtime_json.get("WorkingDir", "")),
    )
    blobs = await Get(Digest, DigestSubset(layout, PathGlobs([blob_path(l.descriptor.digest) for l in layers])))
    base = BaseImageConfig(
        name=reference.rsplit("@", 1)[0], manifest_digest=manifest_descriptor.digest, runtime=runtime,
        python=target[BasePythonField].value or "/usr/bin/python3.11",
        library_path=tuple(target[BaseLibraryPathField].value or ()),
    )
    return PulledBase(base, layers, blobs)


def rules():
    return collect_rules()
