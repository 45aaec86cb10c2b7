"""Blob integrity: stream-hash blobs of a layout (never reading one whole) and digest uncompressed layers.

A 10 GB weight layer is hashed in 1 MiB chunks with flat memory; results are cached per layout so a blob shared
by several manifests is read once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import BinaryIO, Dict, Optional

from omi_plugin.oci import compression
from omi_plugin.oci.hashing import stream_sha256

SHA256_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}\Z")
# JSON documents (manifests, configs) larger than this are not parsed: registries cap manifests at 4 MiB.
MAX_JSON_BLOB = 16 << 20


class UnsupportedCompression(ValueError):
    """The layer's compression has no decoder here (the `[omi-tools]` libraries are not installed)."""


@dataclass(frozen=True)
class BlobFacts:
    digest: str  # "sha256:<hex>" of the bytes on disk
    size: int


def _hash_stream(stream: BinaryIO) -> BlobFacts:
    return BlobFacts(*stream_sha256(stream))


def hash_file(path: str) -> BlobFacts:
    with open(path, "rb") as f:
        return _hash_stream(f)


def uncompressed_digest(path: str, media_type: str) -> Optional[str]:
    """sha256 of the decompressed layer, or None when the layer is not compressed (its digest is the answer)."""
    if compression.algorithm_of(media_type) == compression.NONE:
        return None
    try:
        reader = compression.open_uncompressed(path, media_type)  # incremental, every gzip member or zstd frame
    except ImportError as e:
        raise UnsupportedCompression(f"no decoder for {media_type} ({e})") from None
    try:
        with reader as f:
            return _hash_stream(f).digest
    except (OSError, EOFError):
        raise
    except Exception as e:  # zlib.error, zstandard.ZstdError: the bytes are not what the media type says
        raise OSError(f"{type(e).__name__}: {e}") from None


@dataclass
class BlobStore:
    """The `blobs/sha256` directory of one layout, with memoised hashes."""

    root: str
    _facts: Dict[str, Optional[BlobFacts]] = field(default_factory=dict)
    _uncompressed: Dict[str, Optional[str]] = field(default_factory=dict)

    def path(self, digest: str) -> str:
        return os.path.join(self.root, "blobs", "sha256", digest.split(":", 1)[1])

    def facts(self, digest: str) -> Optional[BlobFacts]:
        """Actual digest and size of the blob stored under `digest`, or None when it is absent."""
        if digest not in self._facts:
            path = self.path(digest)
            self._facts[digest] = hash_file(path) if os.path.isfile(path) else None
        return self._facts[digest]

    def uncompressed(self, digest: str, media_type: str) -> str:
        """The diff id of a present layer blob: its own digest if uncompressed, else the decompressed sha256."""
        key = f"{digest} {media_type}"
        if key not in self._uncompressed:
            self._uncompressed[key] = uncompressed_digest(self.path(digest), media_type)
        found = self._uncompressed[key]
        if found is not None:
            return found
        facts = self.facts(digest)
        return facts.digest if facts else digest

    def read_small(self, digest: str) -> bytes:
        size = os.path.getsize(self.path(digest))
        if size > MAX_JSON_BLOB:
            raise ValueError(f"{size} bytes is too large for a JSON document")
        with open(self.path(digest), "rb") as f:
            return f.read()
