"""One rule that turns sandbox files into one normalised layer blob, as a cacheable process.

Model bytes never enter rule memory: the process streams them into the tar and hashes on the way, and the rule
reads back only the small `layer.json` descriptor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

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

from omi_plugin.oci import canonical_json
from omi_plugin.oci.image import Layer
from omi_plugin.util_rules.sandbox_tools import ToolProcessRequest

_OUT = "__layer_out"


@dataclass(frozen=True)
class BuildLayerRequest:
    """`spec` is the build_layer spec (see omi_plugin/oci/build_layer.py); `input_digest` holds its `src` files."""

    spec_json: bytes
    input_digest: Digest
    description: str

    @staticmethod
    def of(spec: Mapping[str, Any], input_digest: Digest, description: str) -> "BuildLayerRequest":
        return BuildLayerRequest(canonical_json.dumps(dict(spec)), input_digest, description)


@dataclass(frozen=True)
class BuiltLayer:
    layer: Layer
    blobs: Digest  # `blobs/sha256/<hex>`, ready to merge into a layout


@rule
async def build_layer(request: BuildLayerRequest) -> BuiltLayer:
    spec_digest = await Get(Digest, CreateDigest([FileContent("__layer_spec.json", request.spec_json)]))
    inputs = await Get(Digest, MergeDigests([spec_digest, request.input_digest]))
    process = await Get(Process, ToolProcessRequest(
        module="omi_plugin.oci.build_layer",
        args=("__layer_spec.json", _OUT),
        input_digest=inputs,
        description=request.description,
        output_directories=(_OUT,),
        level=LogLevel.INFO,
    ))
    result = await Get(ProcessResult, Process, process)
    descriptor_digest, blobs_subset = await MultiGet(
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([f"{_OUT}/layer.json"]))),
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([f"{_OUT}/blobs/**"]))),
    )
    contents, blobs = await MultiGet(
        Get(DigestContents, Digest, descriptor_digest), Get(Digest, RemovePrefix(blobs_subset, _OUT))
    )
    return BuiltLayer(Layer.from_json(json.loads(contents[0].content)), blobs)


def rules():
    return collect_rules()
