"""Tool: copy one model file into the blob store as a blob of its own bytes (or find it there), for the Pants rule.

    python -m omi_plugin.blob_store.write_file_blob SPEC.json OUT_DIR

SPEC: {"store": "/abs/store", "source": "/abs/file", "digest": "sha256:<hex>"}, and for bytes inside a blob of the
store (a file of a registry artifact kept in its layer) "offset" and "size". OUT_DIR gets `stored.json` (whether
it was written, and the store's problems). It reads and writes outside any sandbox by design: a process running it
must never be cached.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, List, Mapping

from omi_plugin.blob_store import file_blob
from omi_plugin.blob_store.sources import SourceChangedError
from omi_plugin.blob_store.store import BlobStore, BlobStoreError
from omi_plugin.blob_store.write_file_layer import STORED_JSON
from omi_plugin.oci.layer_output import run_spec_tool


def write(spec: Mapping[str, Any], out_dir: str) -> bool:
    store = BlobStore(str(spec["store"]))
    size = spec.get("size")
    written = file_blob.copy_into(store, str(spec["source"]), str(spec["digest"]), int(spec.get("offset", 0)),
                                  None if size is None else int(size))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, STORED_JSON), "w") as f:
        json.dump({"written": written, "problems": store.problems}, f, sort_keys=True)
    return written


def main(argv: List[str]) -> int:
    return run_spec_tool(argv, __doc__ or "", write, (SourceChangedError, BlobStoreError, OSError))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
