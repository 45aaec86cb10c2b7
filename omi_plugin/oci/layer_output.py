"""The output contract of every layer-building tool: `OUT/blobs/sha256/<hex>` plus `OUT/layer.json`.

The blob is streamed to a partial file and renamed once complete, so a failed tool never leaves a blob behind.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Iterable, List, Mapping, Tuple, Type

from omi_plugin.oci import canonical_json, media_types
from omi_plugin.oci.descriptor import Descriptor
from omi_plugin.oci.image import Layer
from omi_plugin.oci.layout import blob_path
from omi_plugin.oci.tar import Entry, write_layer

LAYER_JSON = "layer.json"


def write_layer_output(entries: Iterable[Entry], out_dir: str, created_by: str) -> Layer:
    os.makedirs(os.path.join(out_dir, "blobs", "sha256"), exist_ok=True)
    partial = os.path.join(out_dir, "layer.tar.partial")
    try:
        with open(partial, "wb") as out:
            info = write_layer(entries, out)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    os.replace(partial, os.path.join(out_dir, blob_path(info.digest)))
    # Uncompressed layers: the layer digest is its diff_id.
    layer = Layer(Descriptor(media_types.LAYER_TAR, info.digest, info.size), info.digest, created_by)
    with open(os.path.join(out_dir, LAYER_JSON), "wb") as f:
        f.write(canonical_json.dumps(layer.to_json()))
    return layer


def run_spec_tool(argv: List[str], usage: str, build: Callable[[Mapping[str, Any], str], Any],
                  errors: Tuple[Type[Exception], ...] = ()) -> int:
    """`python -m <tool> SPEC.json OUT_DIR`: the command line shared by the spec-driven layer tools."""
    if len(argv) != 2:
        print(usage, file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        spec = json.load(f)
    try:
        build(spec, argv[1])
    except errors as e:
        print(f"omi: {e}", file=sys.stderr)
        return 1
    return 0
