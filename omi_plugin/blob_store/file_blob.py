"""A model file's own bytes as a blob of the store (the omlmd flavour's layers are the raw files), copied once.

The copy is hashed on the way and must come out as the sha256 the build already knows for the file (from its
layer, in the same session): a file rewritten between the two is refused, not stored under a name it no longer has.
"""

from __future__ import annotations

import shutil

from omi_plugin.blob_store.sources import SourceChangedError
from omi_plugin.blob_store.store import BlobStore
from omi_plugin.oci.hashing import HashingWriter

CHUNK = 1 << 20


def copy_into(store: BlobStore, source: str, expected: str) -> bool:
    """Make `expected` ("sha256:<hex>") a blob of the store from the file at `source`; False when it already was."""
    if store.has(expected):
        return False

    def copy(sink: HashingWriter) -> None:
        with open(source, "rb") as f:
            shutil.copyfileobj(f, sink, CHUNK)

    digest, _, _ = store.write(copy)  # the store hashes what it is given
    if digest != expected:
        raise SourceChangedError(f"{source}: changed during the build (its bytes are now {digest}, not {expected}; "
                                 "build again once it is written)")
    return True
