"""Rules that turn sandbox files into layer blobs, each as one cacheable process.

Model bytes never enter rule memory: the tool streams them into the tar and hashes on the way, and the rule reads
back only the small `layer.json` descriptor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Tuple

from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    DigestSubset,
    FileContent,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.process import Process, ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

from omi_plugin.oci import canonical_json, compression
from omi_plugin.oci import compress_layer as compress_layer_tool
from omi_plugin.oci.image import Layer
from omi_plugin.oci.layer_output import LAYER_JSON
from omi_plugin.oci.layout import blob_path
from omi_plugin.util_rules.sandbox_tools import BYTECODE_TOOLS, LAYER_TOOLS, ToolProcessRequest

_SPEC = "__layer_spec.json"
LAYER_OUT = "__layer_out"  # the tools' OUT directory (see omi_plugin/oci/layer_output.py)


@dataclass(frozen=True)
class BuiltLayer:
    layer: Layer
    blobs: Digest  # `blobs/sha256/<hex>`, ready to merge into a layout


@dataclass(frozen=True)
class LayerToolRequest:
    """Run `python -m <module> <args>`, a tool that writes `LAYER_OUT/blobs/sha256/<hex>` and `LAYER_OUT/layer.json`."""

    packages: Tuple[str, ...]
    module: str
    args: Tuple[str, ...]
    input_digest: Digest
    description: str
    with_libraries: bool = False


@rule
async def run_layer_tool(request: LayerToolRequest) -> BuiltLayer:
    process = await Get(Process, ToolProcessRequest(
        packages=request.packages,
        module=request.module,
        args=request.args,
        input_digest=request.input_digest,
        description=request.description,
        output_directories=(LAYER_OUT,),
        level=LogLevel.INFO,
        with_libraries=request.with_libraries,
    ))
    result = await Get(ProcessResult, Process, process)
    descriptor_digest, blobs_subset = await MultiGet(
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([f"{LAYER_OUT}/{LAYER_JSON}"]))),
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([f"{LAYER_OUT}/blobs/**"]))),
    )
    contents, blobs = await MultiGet(
        Get(DigestContents, Digest, descriptor_digest), Get(Digest, RemovePrefix(blobs_subset, LAYER_OUT))
    )
    return BuiltLayer(Layer.from_json(json.loads(contents[0].content)), blobs)


@dataclass(frozen=True)
class BuildLayerRequest:
    """`spec` is the build_layer spec (see omi_plugin/oci/build_layer.py); `input_digest` holds its `src` files."""

    spec_json: bytes
    input_digest: Digest
    description: str

    @staticmethod
    def of(spec: Mapping[str, Any], input_digest: Digest, description: str) -> "BuildLayerRequest":
        return BuildLayerRequest(canonical_json.dumps(dict(spec)), input_digest, description)


@rule
async def build_layer(request: BuildLayerRequest) -> BuiltLayer:
    spec = await Get(Digest, CreateDigest([FileContent(_SPEC, request.spec_json)]))
    inputs = await Get(Digest, MergeDigests([spec, request.input_digest]))
    return await Get(BuiltLayer, LayerToolRequest(
        LAYER_TOOLS, "omi_plugin.oci.build_layer", (_SPEC, LAYER_OUT), inputs, request.description))


@dataclass(frozen=True)
class CompileBytecodeRequest:
    """Compile the `.py` files of `source` with the interpreter of a base image (its layers and blobs)."""

    interpreter_layers: Tuple[Layer, ...]
    interpreter_blobs: Digest
    python: str
    loader: str
    library_path: Tuple[str, ...]
    source: BuiltLayer
    description: str


@rule
async def compile_bytecode(request: CompileBytecodeRequest) -> BuiltLayer:
    spec = {
        "interpreter_layers": [{"path": blob_path(layer.descriptor.digest), "media_type": layer.descriptor.media_type}
                               for layer in request.interpreter_layers],
        "python": request.python.lstrip("/"),
        "loader": request.loader,
        "library_path": list(request.library_path),
        "source_layer": blob_path(request.source.layer.descriptor.digest),
        "created_by": "omi: bytecode for " + request.source.layer.created_by.replace("omi: ", ""),
    }
    spec_digest = await Get(Digest, CreateDigest([FileContent(_SPEC, canonical_json.dumps(spec))]))
    inputs = await Get(Digest, MergeDigests([spec_digest, request.interpreter_blobs, request.source.blobs]))
    # A base pulled with zstd layers needs the zstd decoder; gzip and plain tars need only the standard library.
    zstd = any(compression.algorithm_of(layer.descriptor.media_type) == compression.ZSTD
               for layer in request.interpreter_layers)
    return await Get(BuiltLayer, LayerToolRequest(
        BYTECODE_TOOLS, "omi_plugin.bytecode.compile_layer", (_SPEC, LAYER_OUT), inputs, request.description,
        with_libraries=zstd))


@dataclass(frozen=True)
class CompressLayerRequest:
    """The distribution form of `layer` (whose blob is in `blobs`): compressed as `setting` says, cached per layer."""

    layer: Layer
    blobs: Digest
    setting: compression.Setting
    description: str


@rule
async def compress_layer(request: CompressLayerRequest) -> BuiltLayer:
    layer, setting = request.layer, request.setting
    own_blob = await Get(Digest, DigestSubset(request.blobs, PathGlobs([blob_path(layer.descriptor.digest)])))
    if setting.algorithm == compression.NONE or compression.algorithm_of(layer.descriptor.media_type) != compression.NONE:
        return BuiltLayer(layer, own_blob)  # kept as it is: uncompressed by choice, or compressed already (a base's)
    spec = {"layer": layer.to_json(), "compression": setting.to_json()}
    spec_digest = await Get(Digest, CreateDigest([FileContent(_SPEC, canonical_json.dumps(spec))]))
    inputs = await Get(Digest, MergeDigests([spec_digest, own_blob]))
    built = await Get(BuiltLayer, LayerToolRequest(
        LAYER_TOOLS, compress_layer_tool.__name__, (_SPEC, LAYER_OUT), inputs, request.description,
        with_libraries=True))
    # A probed layer that does not compress well comes back as it went in, without a blob of its own.
    return built if built.layer != layer else BuiltLayer(layer, own_blob)


def rules():
    return collect_rules()
