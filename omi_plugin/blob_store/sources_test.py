import os
import time

import pytest

from omi_plugin.blob_store import sources
from omi_plugin.blob_store.store import BlobStore, Identity


def _store(tmp_path) -> BlobStore:
    return BlobStore(str(tmp_path / "store"))


def _age(store: BlobStore, path: str, seconds: int) -> None:
    """Pretend the record was written `seconds` later than it was: the file is then old enough to trust."""
    record = store.record_path(sources.KIND, os.path.realpath(path))
    import json

    with open(record) as f:
        data = json.load(f)
    data["recorded_ns"] += seconds * 1_000_000_000
    with open(record, "w") as f:
        json.dump(data, f)


def test_an_unchanged_file_is_known_without_reading_it(tmp_path) -> None:
    store, path = _store(tmp_path), str(tmp_path / "model.bin")
    with open(path, "wb") as f:
        f.write(b"weights")
    sources.remember(store, path, sources.identity(path), "sha256:abc")
    _age(store, path, 10)
    known = sources.known_digest(store, path)
    assert known is not None and known.trusted and known.digest == "sha256:abc"


def test_a_just_written_file_is_racy_and_must_be_hashed(tmp_path) -> None:
    store, path = _store(tmp_path), str(tmp_path / "model.bin")
    with open(path, "wb") as f:
        f.write(b"weights")
    sources.remember(store, path, sources.identity(path), "sha256:abc")
    known = sources.known_digest(store, path)
    assert known is not None and not known.trusted


def test_racy_is_within_the_window_of_the_record(tmp_path) -> None:
    now = time.time_ns()
    file = Identity(1, 2, 3, now - 5 * sources.RACY_NS, now - 5 * sources.RACY_NS)
    assert not sources.is_racy(file, now)
    assert sources.is_racy(Identity(1, 2, 3, file.mtime_ns, now - sources.RACY_NS // 2), now)


def test_a_file_changed_in_place_with_its_mtime_restored_is_seen(tmp_path) -> None:
    store, path = _store(tmp_path), str(tmp_path / "model.bin")
    with open(path, "wb") as f:
        f.write(b"weights-1")
    before = os.stat(path)
    sources.remember(store, path, sources.identity(path), "sha256:one")
    _age(store, path, 10)
    time.sleep(0.01)
    with open(path, "r+b") as f:
        f.write(b"WEIGHTS-2")  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert sources.known_digest(store, path) is None


def test_a_file_changed_while_read_is_not_recorded(tmp_path) -> None:
    store, path = _store(tmp_path), str(tmp_path / "model.bin")
    with open(path, "wb") as f:
        f.write(b"weights")
    before = sources.identity(path)
    with open(path, "ab") as f:
        f.write(b"more")
    with pytest.raises(sources.SourceChangedError, match="changed while it was being read"):
        sources.remember(store, path, before, "sha256:abc")
    assert sources.known_digest(store, path) is None
