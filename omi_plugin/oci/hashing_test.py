import hashlib
import io
import os

from omi_plugin.oci import hashing


def test_stream_sha256_in_small_chunks_and_copying(monkeypatch) -> None:
    data = os.urandom(5 * 4096 + 3)
    monkeypatch.setattr(hashing, "CHUNK", 4096)
    copy = io.BytesIO()
    assert hashing.stream_sha256(io.BytesIO(data), copy_to=copy) == ("sha256:" + hashlib.sha256(data).hexdigest(),
                                                                      len(data))
    assert copy.getvalue() == data


def test_file_sha256_of_an_empty_file(tmp_path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert hashing.file_sha256(str(path)) == ("sha256:" + hashlib.sha256(b"").hexdigest(), 0)
