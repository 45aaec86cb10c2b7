import gzip
import hashlib
import io
import os
import resource

import pytest

from omi_plugin.oci import compression
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.compression import GZIP, NONE, ZSTD, CompressionError, Setting

# ~6.5 MB: two gzip members, many zstd blocks. Text that compresses, as code and metadata layers do.
FIXED_INPUT = b"".join(b"%08d omi layer line, mode 0644, uid 0\n" % i for i in range(170_000))
# The digests of FIXED_INPUT compressed by the pinned compressors ([omi-tools]: deflate 0.8.1, zstandard 0.25.0) at
# their default levels. They must never change for a given lockfile: a change here changes every image digest.
GOLDEN = {
    GZIP: "sha256:96a399de0b164cd51b3524ac84305a03abf74943b31d142ef0f12c7541e03ed4",
    ZSTD: "sha256:892fedeb7ff3d6ad8f88658fd70c37615ab8aad47a0c045e56bd7314a749ad04",
}


@pytest.mark.parametrize("algorithm", [GZIP, ZSTD])
def test_compressed_bytes_are_pinned(algorithm: str) -> None:
    data = compression.compress_bytes(FIXED_INPUT, Setting(algorithm))
    assert "sha256:" + hashlib.sha256(data).hexdigest() == GOLDEN[algorithm]


@pytest.mark.parametrize("algorithm", [GZIP, ZSTD])
def test_round_trip_and_both_digests(tmp_path, algorithm: str) -> None:
    out = io.BytesIO()
    info = compression.compress_stream(io.BytesIO(FIXED_INPUT), out, Setting(algorithm))
    assert info.uncompressed_digest == "sha256:" + hashlib.sha256(FIXED_INPUT).hexdigest()
    assert info.uncompressed_size == len(FIXED_INPUT)
    assert info.digest == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest() and info.size == len(out.getvalue())
    assert info.size < len(FIXED_INPUT) / 4
    path = tmp_path / "blob"
    path.write_bytes(out.getvalue())
    with compression.open_uncompressed(str(path), compression.with_algorithm(mt.LAYER_TAR, algorithm)) as f:
        assert f.read() == FIXED_INPUT


def test_gzip_is_members_that_any_gzip_reader_reads_as_one_stream() -> None:
    data = compression.compress_bytes(FIXED_INPUT, Setting(GZIP))
    assert gzip.decompress(data) == FIXED_INPUT
    assert data.count(b"\x1f\x8b\x08") >= 2  # one member per GZIP_MEMBER bytes
    assert compression.compress_bytes(b"", Setting(GZIP)) and gzip.decompress(
        compression.compress_bytes(b"", Setting(GZIP))) == b""


class _ShortReads(io.RawIOBase):
    """A stream that returns at most 1000 bytes per read, as pipes and sockets may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._data.read(min(n, 1000) if n >= 0 else 1000)


@pytest.mark.parametrize("algorithm", [GZIP, ZSTD])
def test_output_does_not_depend_on_how_reads_split(algorithm: str) -> None:
    out = io.BytesIO()
    compression.compress_stream(_ShortReads(FIXED_INPUT[:300_000]), out, Setting(algorithm))  # type: ignore[arg-type]
    assert out.getvalue() == compression.compress_bytes(FIXED_INPUT[:300_000], Setting(algorithm))


class _Repeating(io.RawIOBase):
    def __init__(self, block: bytes, total: int) -> None:
        self._block, self._left = block, total

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = min(n if n >= 0 else len(self._block), self._left, len(self._block))
        self._left -= n
        return self._block[:n]


class _Counting:
    size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)


@pytest.mark.parametrize("algorithm", [GZIP, ZSTD])
def test_memory_stays_flat_while_streaming(algorithm: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    total = 192 << 20
    sink = _Counting()
    info = compression.compress_stream(_Repeating(os.urandom(1 << 20), total), sink,  # type: ignore[arg-type]
                                       Setting(algorithm, 1))
    assert info.uncompressed_size == total and info.size == sink.size
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 64, f"peak memory grew by {grown_mib:.0f} MiB compressing {total >> 20} MiB"


def test_probe_tells_weights_from_text(tmp_path) -> None:
    text, noise = tmp_path / "text", tmp_path / "noise"
    text.write_bytes(FIXED_INPUT)
    noise.write_bytes(os.urandom(3 << 20))
    assert compression.estimated_ratio(str(text)) < 0.3
    assert compression.estimated_ratio(str(noise)) > compression.WORTH_IT
    (tmp_path / "empty").write_bytes(b"")
    assert compression.estimated_ratio(str(tmp_path / "empty")) == 1.0


def test_media_types() -> None:
    assert compression.with_algorithm(mt.LAYER_TAR, GZIP) == mt.LAYER_TAR_GZIP
    assert compression.with_algorithm(mt.LAYER_TAR_GZIP, ZSTD) == mt.LAYER_TAR_ZSTD
    assert compression.with_algorithm(mt.LAYER_TAR_ZSTD, NONE) == mt.LAYER_TAR
    assert compression.with_algorithm(mt.MODELPACK_WEIGHT_TAR, ZSTD) == mt.MODELPACK_WEIGHT_TAR + "+zstd"
    assert compression.algorithm_of(mt.LAYER_TAR) == NONE


def test_settings() -> None:
    assert compression.settings_for(GZIP, compression.AUTO) == (Setting(GZIP), Setting(GZIP, probe=True))
    assert compression.settings_for(NONE, compression.AUTO, 9) == (Setting(NONE), Setting(NONE))
    assert compression.settings_for(ZSTD, GZIP, 5) == (Setting(ZSTD, 5), Setting(GZIP, 5))
    assert Setting(GZIP).to_json() == {"algorithm": GZIP, "level": 6, "probe": False}
    with pytest.raises(CompressionError, match=r"^'xz' is not a compression \(use one of none, gzip, zstd\)$"):
        Setting("xz")
    with pytest.raises(CompressionError, match=r"^level 13 is outside gzip's range 1-12$"):
        Setting(GZIP, 13)
