import gzip
import hashlib
import os

import pytest

from omi_plugin.check import blobs
from omi_plugin.oci import compression, hashing


def test_hash_file_streams_in_chunks(tmp_path, monkeypatch) -> None:
    data = os.urandom(3 * hashing.CHUNK + 17)
    path = tmp_path / "blob"
    path.write_bytes(data)
    monkeypatch.setattr(hashing, "CHUNK", 4096)
    assert blobs.hash_file(str(path)) == blobs.BlobFacts("sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def test_gzip_layers_are_digested_uncompressed(tmp_path) -> None:
    raw = b"tar bytes" * 1000
    path = tmp_path / "layer"
    path.write_bytes(gzip.compress(raw[:4000]) + gzip.compress(raw[4000:]))  # multi-member gzip too
    assert blobs.uncompressed_digest(str(path), "application/vnd.oci.image.layer.v1.tar+gzip") == \
        "sha256:" + hashlib.sha256(raw).hexdigest()
    assert blobs.uncompressed_digest(str(path), "application/vnd.oci.image.layer.v1.tar") is None
    with pytest.raises(OSError):  # gzip bytes named zstd: reported, not a traceback
        blobs.uncompressed_digest(str(path), "application/vnd.oci.image.layer.v1.tar+zstd")


def test_zstd_layers_are_digested_uncompressed(tmp_path) -> None:
    raw = b"tar bytes" * 1000
    path = tmp_path / "layer"
    path.write_bytes(compression.compress_bytes(raw, compression.Setting(compression.ZSTD)))
    assert blobs.uncompressed_digest(str(path), "application/vnd.oci.image.layer.v1.tar+zstd") == \
        "sha256:" + hashlib.sha256(raw).hexdigest()


def test_store_reports_missing_blobs(tmp_path) -> None:
    assert blobs.BlobStore(str(tmp_path)).facts("sha256:" + "a" * 64) is None
