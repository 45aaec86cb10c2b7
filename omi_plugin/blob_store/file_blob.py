"""A model file's own bytes as a blob of the store (the omlmd flavour's layers are the raw files), copied once.

The copy is hashed on the way and must come out as the sha256 the build already knows for the file (from its
layer, in the same session): a file rewritten between the two is refused, not stored under a name it no longer has.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO, Tuple

from omi_plugin.blob_store.sources import SourceChangedError
from omi_plugin.blob_store.store import BlobStore

CHUNK = 1 << 20


def copy_into(store: BlobStore, source: str, expected: str) -> bool:
    """Make `expected` ("sha256:<hex>") a blob of the store from the file at `source`; False when it already was."""
    if store.has(expected):
        return False

    def copy(sink: BinaryIO) -> Tuple[str, int]:
        sha256, size = hashlib.sha256(), 0
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                sha256.update(chunk)
                sink.write(chunk)
                size += len(chunk)
        return "sha256:" + sha256.hexdigest(), size

    digest, _ = store.write_hashed(copy)
    if digest != expected:
        raise SourceChangedError(f"{source}: changed during the build (its bytes are now {digest}, not {expected}; "
                                 "build again once it is written)")
    return True
