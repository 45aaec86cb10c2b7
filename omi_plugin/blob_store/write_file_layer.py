"""Tool: write one model file's layer into the blob store (or find it there), for the Pants rule.

    python -m omi_plugin.blob_store.write_file_layer SPEC.json OUT_DIR

SPEC: {"store": "/abs/store", "layer": <FileLayerSpec JSON>}. OUT_DIR gets `stored.json` (a StoredFileLayer and
the store's problems). It reads and writes outside any sandbox by design: a process running it must never be cached.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, List, Mapping

from omi_plugin.blob_store import file_layer
from omi_plugin.blob_store.sources import SourceChangedError
from omi_plugin.blob_store.store import BlobStore, BlobStoreError
from omi_plugin.oci.compression import CompressionError
from omi_plugin.oci.layer_output import run_spec_tool
from omi_plugin.oci.tar import LayerError

STORED_JSON = "stored.json"


def write(spec: Mapping[str, Any], out_dir: str) -> file_layer.StoredFileLayer:
    store = BlobStore(str(spec["store"]))
    stored = file_layer.build(store, file_layer.FileLayerSpec.from_json(spec["layer"]))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, STORED_JSON), "w") as f:
        json.dump({**stored.to_json(), "problems": store.problems}, f, sort_keys=True)
    return stored


def main(argv: List[str]) -> int:
    return run_spec_tool(argv, __doc__ or "", write,
                         (SourceChangedError, BlobStoreError, CompressionError, LayerError, OSError))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
