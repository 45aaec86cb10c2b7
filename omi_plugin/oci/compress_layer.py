"""Compress one uncompressed layer blob into its distribution form.

Usage: python -m omi_plugin.oci.compress_layer SPEC.json OUT_DIR

SPEC: {"layer": <Layer JSON of the input>, "compression": {"algorithm": "gzip", "level": 6, "probe": false}}
The input blob is `blobs/sha256/<hex>` in the working directory. OUT_DIR gets `layer.json` (the layer as the manifest
will list it: compressed digest, size and media type, the same diff_id) and, when the layer was compressed, the
compressed blob under `blobs/sha256/`. A probed layer that does not compress well is left as it is (no blob out).
The input's sha256 is checked on the way: a blob that no longer matches its name is never compressed.
"""

from __future__ import annotations

import os
import sys
from typing import Any, List, Mapping

from omi_plugin.oci import canonical_json, compression
from omi_plugin.oci.descriptor import Descriptor
from omi_plugin.oci.image import Layer
from omi_plugin.oci.layer_output import LAYER_JSON, run_spec_tool
from omi_plugin.oci.layout import blob_path


class CompressLayerError(Exception):
    pass


def compress_layer(spec: Mapping[str, Any], out_dir: str) -> Layer:
    layer = Layer.from_json(spec["layer"])
    options = spec["compression"]
    setting = compression.Setting(str(options["algorithm"]), int(options.get("level", 0)), bool(options.get("probe")))
    source = blob_path(layer.descriptor.digest)
    if compression.algorithm_of(layer.descriptor.media_type) != compression.NONE:
        raise CompressLayerError(f"{layer.created_by}: the layer is already compressed ({layer.descriptor.media_type})")
    result = layer
    worth_it = not setting.probe or compression.estimated_ratio(source) <= compression.WORTH_IT
    os.makedirs(os.path.join(out_dir, "blobs", "sha256"), exist_ok=True)
    if setting.algorithm != compression.NONE and worth_it:
        partial = os.path.join(out_dir, "layer.partial")
        try:
            with open(source, "rb") as src, open(partial, "wb") as out:
                packed = compression.compress_stream(src, out, setting)
            if packed.uncompressed_digest != layer.descriptor.digest:
                raise CompressLayerError(f"{source}: its bytes have sha256 {packed.uncompressed_digest}, not the "
                                         f"{layer.descriptor.digest} it is named for (a corrupted store; rebuild)")
        except BaseException:
            if os.path.exists(partial):
                os.unlink(partial)
            raise
        os.replace(partial, os.path.join(out_dir, blob_path(packed.digest)))
        media_type = compression.with_algorithm(layer.descriptor.media_type, setting.algorithm)
        result = Layer(Descriptor(media_type, packed.digest, packed.size), layer.diff_id, layer.created_by)
    with open(os.path.join(out_dir, LAYER_JSON), "wb") as f:
        f.write(canonical_json.dumps(result.to_json()))
    return result


def main(argv: List[str]) -> int:
    return run_spec_tool(argv, __doc__ or "", compress_layer, (CompressLayerError, compression.CompressionError))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
