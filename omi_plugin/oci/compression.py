"""Layer compression: gzip and zstd bytes that depend only on the input and the pinned compressors, and the readers
that undo them.

gzip is written by libdeflate (the `deflate` wheel), zstd by the `zstandard` wheel; both bundle their own
implementation, so the output does not depend on the machine's zlib. libdeflate has no streaming interface: a gzip
layer is a series of gzip members of `GZIP_MEMBER` uncompressed bytes each, which RFC 1952 readers (Go's
`compress/gzip` in containerd and podman, zlib, Python) read as one stream. The member size is part of the output's
definition: changing it changes every gzip digest.

The compressor modules are imported only when compressing or reading zstd, so the rest of the OCI core stays
standard-library only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from dataclasses import dataclass
from typing import BinaryIO, Callable, Dict, Iterator, Tuple

NONE, GZIP, ZSTD = "none", "gzip", "zstd"
ALGORITHMS = (NONE, GZIP, ZSTD)
DEFAULT_LEVEL: Dict[str, int] = {GZIP: 6, ZSTD: 3}
LEVEL_RANGE: Dict[str, Tuple[int, int]] = {GZIP: (1, 12), ZSTD: (1, 19)}
MEDIA_TYPE_SUFFIX: Dict[str, str] = {NONE: "", GZIP: "+gzip", ZSTD: "+zstd"}

GZIP_MEMBER = 4 << 20  # uncompressed bytes per gzip member
_CHUNK = 1 << 20

# The compressibility probe: `PROBE_SAMPLES` windows of `_CHUNK` bytes spread over the layer, compressed with gzip at
# level 1; a layer is worth compressing when they shrink to `WORTH_IT` of their size or less. Model weights (float
# tensors) come out at 0.9 and above, code, text and pickled trees far below.
PROBE_SAMPLES = 16
WORTH_IT = 0.9


class CompressionError(ValueError):
    """An unknown algorithm or a level outside its range."""


@dataclass(frozen=True)
class Setting:
    """How one kind of layer is compressed: `algorithm` (none, gzip, zstd) at `level`; with `probe`, only a layer
    whose sample compresses well is compressed."""

    algorithm: str
    level: int = 0  # 0: the algorithm's default
    probe: bool = False

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise CompressionError(f"{self.algorithm!r} is not a compression (use one of {', '.join(ALGORITHMS)})")
        if self.algorithm != NONE and self.level:
            low, high = LEVEL_RANGE[self.algorithm]
            if not low <= self.level <= high:
                raise CompressionError(f"level {self.level} is outside {self.algorithm}'s range {low}-{high}")

    @property
    def effective_level(self) -> int:
        return self.level or DEFAULT_LEVEL.get(self.algorithm, 0)

    def to_json(self) -> Dict[str, object]:
        return {"algorithm": self.algorithm, "level": self.effective_level, "probe": self.probe}


AUTO = "auto"


def settings_for(layers: str, models: str, level: int = 0) -> Tuple[Setting, Setting]:
    """The settings of the code-and-dependency layers and of the model layers; `models` may be `auto`: the layers'
    algorithm, for files that compress well."""
    layer_setting = Setting(layers, 0 if layers == NONE else level)
    if models == AUTO:
        return layer_setting, Setting(layers, layer_setting.level, probe=layers != NONE)
    return layer_setting, Setting(models, 0 if models == NONE else level)


def algorithm_of(media_type: str) -> str:
    for algorithm, suffix in MEDIA_TYPE_SUFFIX.items():
        if suffix and media_type.endswith(suffix):
            return algorithm
    return NONE


def with_algorithm(media_type: str, algorithm: str) -> str:
    """`media_type` (e.g. a `.tar` layer type) with the suffix of `algorithm` in place of any it had."""
    current = MEDIA_TYPE_SUFFIX[algorithm_of(media_type)]
    stem = media_type[: len(media_type) - len(current)] if current else media_type
    return stem + MEDIA_TYPE_SUFFIX[algorithm]


def _chunks(stream: BinaryIO, size: int) -> Iterator[bytes]:
    """Exactly `size`-byte chunks (the last may be shorter): member boundaries must not depend on how reads split."""
    while True:
        parts, want = [], size
        while want:
            part = stream.read(want)
            if not part:
                break
            parts.append(part)
            want -= len(part)
        if parts:
            yield b"".join(parts)
        if want:
            return


def _gzip_encoder(level: int) -> Tuple[int, Callable[[bytes], bytes], Callable[[], bytes]]:
    import deflate  # the pinned libdeflate

    return GZIP_MEMBER, lambda chunk: deflate.gzip_compress(chunk, level), lambda: b""


def _zstd_encoder(level: int) -> Tuple[int, Callable[[bytes], bytes], Callable[[], bytes]]:
    import zstandard  # the pinned libzstd

    # Single-threaded, no content size or checksum in the frame header: the frame is a function of the bytes alone.
    encoder = zstandard.ZstdCompressor(level=level, threads=0, write_content_size=False,
                                       write_checksum=False).compressobj()
    return _CHUNK, encoder.compress, encoder.flush


@dataclass(frozen=True)
class Compressed:
    digest: str  # "sha256:<hex>" of the compressed bytes
    size: int
    uncompressed_digest: str
    uncompressed_size: int


class StreamCompressor:
    """A writable sink that compresses what is written into `out`, hashing both sides on the way: for producers that
    push bytes (the tar writer) rather than a stream to pull from. Member and frame boundaries fall every
    `chunk_size` uncompressed bytes whatever the write sizes, so the output is a function of the bytes alone."""

    def __init__(self, out: BinaryIO, setting: Setting) -> None:
        if setting.algorithm == NONE:
            raise CompressionError("nothing to compress with algorithm 'none'")
        self._out, self._gzip = out, setting.algorithm == GZIP
        self.chunk_size, self._encode, self._finish = (_gzip_encoder if self._gzip else _zstd_encoder)(
            setting.effective_level)
        self._pending = bytearray()
        self._plain, self._packed = hashlib.sha256(), hashlib.sha256()
        self._plain_size = self._packed_size = 0

    def _emit(self, data: bytes) -> None:
        self._packed.update(data)
        self._packed_size += len(data)
        self._out.write(data)

    def _encode_chunk(self, chunk: bytes) -> None:
        self._plain.update(chunk)
        self._plain_size += len(chunk)
        self._emit(self._encode(chunk))

    def write(self, data: bytes) -> None:
        if not self._pending and len(data) == self.chunk_size:
            self._encode_chunk(bytes(data))  # the common case: no copy through the buffer
            return
        self._pending += data
        while len(self._pending) >= self.chunk_size:
            chunk = bytes(self._pending[:self.chunk_size])
            del self._pending[:self.chunk_size]
            self._encode_chunk(chunk)

    def close(self) -> Compressed:
        if self._pending or (self._plain_size == 0 and self._gzip):
            self._encode_chunk(bytes(self._pending))  # an empty input is still one gzip member
            self._pending.clear()
        self._emit(self._finish())
        return Compressed(f"sha256:{self._packed.hexdigest()}", self._packed_size, f"sha256:{self._plain.hexdigest()}",
                          self._plain_size)


def compress_stream(source: BinaryIO, out: BinaryIO, setting: Setting) -> Compressed:
    """Compress the rest of `source` into `out`, hashing both sides on the way (one read, one write)."""
    compressor = StreamCompressor(out, setting)
    for chunk in _chunks(source, compressor.chunk_size):
        compressor.write(chunk)
    return compressor.close()


def compress_bytes(data: bytes, setting: Setting) -> bytes:
    out = io.BytesIO()
    compress_stream(io.BytesIO(data), out, setting)
    return out.getvalue()


def estimated_ratio(path: str) -> float:
    """Compressed size over original size of `PROBE_SAMPLES` windows spread over the file (1.0 for an empty one)."""
    with open(path, "rb") as f:
        def read_at(offset: int, n: int) -> bytes:
            f.seek(offset)
            return f.read(n)

        return estimated_ratio_of(read_at, os.path.getsize(path))


def estimated_ratio_of(read_at: Callable[[int, int], bytes], size: int) -> float:
    """`estimated_ratio` of `size` bytes that `read_at(offset, n)` reads: a file, or a layer not yet written."""
    import deflate

    if size == 0:
        return 1.0
    step = max(_CHUNK, size // PROBE_SAMPLES)
    taken = packed = 0
    for offset in range(0, size, step):
        window = read_at(offset, _CHUNK)
        taken += len(window)
        packed += len(deflate.gzip_compress(window, 1))
    return packed / taken


def open_uncompressed(path: str, media_type: str) -> BinaryIO:
    """A reader of the layer's tar bytes, whatever its compression (from its media type)."""
    algorithm = algorithm_of(media_type)
    if algorithm == GZIP:
        return gzip.open(path, "rb")  # type: ignore[return-value]  # reads every member
    if algorithm == ZSTD:
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), read_across_frames=True,
                                                          closefd=True)  # type: ignore[return-value]
    return open(path, "rb")
