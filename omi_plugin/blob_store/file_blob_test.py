import json
import os

import pytest

from omi_plugin.blob_store import file_blob, write_file_blob
from omi_plugin.blob_store.sources import SourceChangedError
from omi_plugin.blob_store.store import BlobStore
from omi_plugin.oci.hashing import file_sha256


def _file(tmp_path, data: bytes) -> str:
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    return str(path)


def test_the_file_becomes_a_blob_of_its_own_bytes_once(tmp_path) -> None:
    store = BlobStore(str(tmp_path / "store"))
    source = _file(tmp_path, os.urandom(3 * file_blob.CHUNK + 17))
    digest, _ = file_sha256(source)
    assert file_blob.copy_into(store, source, digest) is True
    with open(store.blob(digest), "rb") as blob, open(source, "rb") as f:
        assert blob.read() == f.read()
    os.remove(source)  # found by its name: the file is not read again
    assert file_blob.copy_into(store, source, digest) is False


def test_a_file_that_no_longer_has_the_expected_bytes_is_refused(tmp_path) -> None:
    store = BlobStore(str(tmp_path / "store"))
    source = _file(tmp_path, b"weights")
    stale = "sha256:" + "0" * 64
    with pytest.raises(SourceChangedError, match="changed during the build"):
        file_blob.copy_into(store, source, stale)
    assert not store.has(stale)


def test_the_tool_reports_whether_it_wrote(tmp_path) -> None:
    source = _file(tmp_path, b"weights")
    digest, _ = file_sha256(source)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"store": str(tmp_path / "store"), "source": source, "digest": digest}))
    for out, written in (("out1", True), ("out2", False)):
        assert write_file_blob.main([str(spec), str(tmp_path / out)]) == 0
        assert json.loads((tmp_path / out / write_file_blob.STORED_JSON).read_text()) == {
            "written": written, "problems": []}
