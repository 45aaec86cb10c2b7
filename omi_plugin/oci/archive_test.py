import io
import json
import tarfile

import pytest

from omi_plugin.oci.archive import ArchiveError, unpack
from omi_plugin.oci.descriptor import sha256_digest


def _archive(path, files) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _layout_files(blob: bytes):
    digest = sha256_digest(blob).split(":")[1]
    return {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps({"manifests": []}).encode(),
            f"blobs/sha256/{digest}": blob}


def test_unpacks_and_verifies(tmp_path) -> None:
    _archive(tmp_path / "a.tar", _layout_files(b"layer bytes"))
    assert unpack(str(tmp_path / "a.tar"), str(tmp_path / "out")) == 1
    assert (tmp_path / "out/oci-layout").exists()


def test_tampered_blob_is_refused(tmp_path) -> None:
    files = _layout_files(b"layer bytes")
    name = next(n for n in files if n.startswith("blobs/"))
    files[name] = b"layer bytez"
    _archive(tmp_path / "a.tar", files)
    with pytest.raises(ArchiveError, match="not to its name"):
        unpack(str(tmp_path / "a.tar"), str(tmp_path / "out"))
    assert not list((tmp_path / "out" / "blobs" / "sha256").iterdir())


def test_not_a_layout(tmp_path) -> None:
    _archive(tmp_path / "a.tar", {"hello.txt": b"hi"})
    with pytest.raises(ArchiveError, match="not an OCI layout archive"):
        unpack(str(tmp_path / "a.tar"), str(tmp_path / "out"))
