"""Streaming sha256 of blobs: the one way omi hashes a file or a stream, in chunks, never the whole blob in memory."""

from __future__ import annotations

import hashlib
from typing import IO, BinaryIO, Optional, Tuple

CHUNK = 1 << 20


def stream_sha256(stream: IO[bytes], copy_to: Optional[IO[bytes]] = None) -> Tuple[str, int]:
    """`("sha256:<hex>", size)` of the rest of `stream`, writing each chunk to `copy_to` on the way if given."""
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
        if copy_to is not None:
            copy_to.write(chunk)
    return "sha256:" + digest.hexdigest(), size


def file_sha256(path: str) -> Tuple[str, int]:
    """`("sha256:<hex>", size)` of the file at `path`."""
    with open(path, "rb") as f:
        return stream_sha256(f)


class HashingWriter:
    """A writable sink that passes every byte to `out` and hashes it on the way."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self.sha256.update(data)
        self.size += len(data)
