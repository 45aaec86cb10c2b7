"""A model file's own bytes as a blob of the store (the omlmd flavour's layers are the raw files), copied once.

The copy is hashed on the way and must come out as the sha256 the build already knows for the file (from its
layer, in the same session): a file rewritten between the two is refused, not stored under a name it no longer has.
The source may be a slice of a blob: a file of a registry artifact that the store keeps only inside its layer.
"""

from __future__ import annotations

import io
import os
import shutil
from typing import BinaryIO, Optional, cast

from omi_plugin.blob_store.sources import SourceChangedError
from omi_plugin.blob_store.store import BlobStore
from omi_plugin.oci.hashing import HashingWriter

CHUNK = 1 << 20


class _Slice(io.RawIOBase):
    """`size` bytes of a file from `offset`, read and sought as a file of their own."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        self._file = open(path, "rb")
        self._offset, self._size, self._at = offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: "bytearray | memoryview") -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._size - self._at)
        if wanted <= 0:
            return 0
        self._file.seek(self._offset + self._at)
        n = self._file.readinto(memoryview(buffer)[:wanted])
        self._at += n
        return n

    def seek(self, position: int, whence: int = os.SEEK_SET) -> int:
        bases = {os.SEEK_SET: 0, os.SEEK_CUR: self._at, os.SEEK_END: self._size}
        if whence not in bases or bases[whence] + position < 0:
            raise ValueError(f"cannot seek to {position} from {whence}")
        self._at = bases[whence] + position
        return self._at

    def tell(self) -> int:
        return self._at

    def close(self) -> None:
        self._file.close()
        super().close()


def open_slice(path: str, offset: int = 0, size: Optional[int] = None) -> BinaryIO:
    """A file's bytes, or `size` of them from `offset`, as a buffered binary file."""
    if size is None and offset == 0:
        return open(path, "rb")
    if size is None:
        size = os.stat(path).st_size - offset
    return cast(BinaryIO, io.BufferedReader(_Slice(path, offset, size)))


def copy_into(store: BlobStore, source: str, expected: str, offset: int = 0, size: Optional[int] = None) -> bool:
    """Make `expected` ("sha256:<hex>") a blob of the store from the file at `source` (or `size` bytes of it from
    `offset`); False when it already was."""
    if store.has(expected):
        return False

    def copy(sink: HashingWriter) -> None:
        with open_slice(source, offset, size) as f:
            shutil.copyfileobj(f, sink, CHUNK)

    digest, _, _ = store.write(copy)  # the store hashes what it is given
    if digest != expected:
        raise SourceChangedError(f"{source}: changed during the build (its bytes are now {digest}, not {expected}; "
                                 "build again once it is written)")
    return True
