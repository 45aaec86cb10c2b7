import json
import multiprocessing
import os
import time

from omi_plugin.blob_store.store import RECENT_SECONDS, BlobStore, Identity, default_root
from omi_plugin.oci.hashing import file_sha256


def _put(store: BlobStore, data: bytes) -> str:
    digest, size, _ = store.write(lambda sink: sink.write(data))
    assert size == len(data)
    return digest


def test_a_blob_is_placed_under_its_sha256_read_only(tmp_path) -> None:
    store = BlobStore(str(tmp_path / "store"))
    digest = _put(store, b"weights" * 1000)
    assert file_sha256(store.blob(digest))[0] == digest
    assert not os.stat(store.blob(digest)).st_mode & 0o222
    # The record describes the blob as it is once written (its temporary name gone): no second hash on first use.
    record = json.loads(open(store._verified(digest)).read())
    assert record["identity"] == Identity.of(os.stat(store.blob(digest))).to_json()
    assert store.has(digest)
    assert os.listdir(tmp_path / "store" / "tmp") == []


def test_a_failed_write_leaves_nothing(tmp_path) -> None:
    store = BlobStore(str(tmp_path / "store"))

    def fail(sink) -> None:  # type: ignore[no-untyped-def]
        sink.write(b"half")
        raise RuntimeError("interrupted")

    try:
        store.write(fail)
    except RuntimeError:
        pass
    assert os.listdir(tmp_path / "store" / "tmp") == []
    assert list(store.blobs()) == []


def test_a_corrupted_blob_is_detected_removed_and_reported(tmp_path) -> None:
    store = BlobStore(str(tmp_path / "store"))
    digest = _put(store, b"x" * 4096)
    path = store.blob(digest)
    before = os.stat(path)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.write(b"y")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the mtime restored: the ctime still moved
    assert not store.has(digest)
    assert not os.path.exists(path)
    assert "no longer matches its name" in store.problems[0]
    assert _put(store, b"x" * 4096) == digest and store.has(digest)  # rebuilt


def test_a_blob_without_a_record_is_hashed_before_use(tmp_path) -> None:
    store = BlobStore(str(tmp_path / "store"))
    good = _put(store, b"good")
    os.unlink(store._verified(good))
    assert store.has(good)  # hashed, matches, recorded again
    forged = "sha256:" + "0" * 64
    os.makedirs(os.path.dirname(store.blob(forged)), exist_ok=True)
    with open(store.blob(forged), "wb") as f:
        f.write(b"not what the name says")
    assert not store.has(forged)


def _writer(root: str, data: bytes, queue) -> None:  # type: ignore[no-untyped-def]
    store = BlobStore(root)
    digests = [store.write(lambda sink: sink.write(data))[0] for _ in range(20)]
    queue.put(set(digests))


def test_two_processes_writing_the_same_blob_both_succeed(tmp_path) -> None:
    root, data = str(tmp_path / "store"), os.urandom(1 << 20)
    queue = multiprocessing.get_context("fork").Queue()
    writers = [multiprocessing.get_context("fork").Process(target=_writer, args=(root, data, queue)) for _ in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    found = queue.get(timeout=5) | queue.get(timeout=5)
    assert len(found) == 1
    store = BlobStore(root)
    assert store.has(found.pop()) and not store.problems
    assert os.listdir(os.path.join(root, "tmp")) == []


def test_link_out_is_a_hard_link_and_keeps_the_record_valid(tmp_path) -> None:
    store = BlobStore(str(tmp_path / "store"))
    digest = _put(store, b"layer bytes")
    dest = tmp_path / "dist" / "omi-blobs" / "sha256" / "x"
    store.link_out(digest, str(dest))
    assert os.path.samefile(store.blob(digest), dest)
    store.link_out(digest, str(dest))  # already the blob: left alone
    (tmp_path / "other").write_bytes(b"stale")
    os.replace(tmp_path / "other", dest)
    store.link_out(digest, str(dest))  # other bytes: replaced
    assert os.path.samefile(store.blob(digest), dest)
    # The links changed the blob's ctime; the record followed, so it is not hashed again.
    record = json.loads(open(store._verified(digest)).read())
    assert record["identity"] == Identity.of(os.stat(store.blob(digest))).to_json()


def test_deleting_the_store_keeps_linked_copies(tmp_path) -> None:
    import shutil

    store = BlobStore(str(tmp_path / "store"))
    digest = _put(store, b"kept")
    store.link_out(digest, str(tmp_path / "dist" / "blob"))
    shutil.rmtree(tmp_path / "store")
    assert (tmp_path / "dist" / "blob").read_bytes() == b"kept"


def test_prune_removes_least_recently_used_but_never_a_recent_blob(tmp_path) -> None:
    store = BlobStore(str(tmp_path / "store"))
    old, older, fresh = (_put(store, bytes([i]) * 1000) for i in range(3))
    now = time.time()
    os.utime(store._verified(older), (now - 3 * RECENT_SECONDS, now - 3 * RECENT_SECONDS))
    os.utime(store._verified(old), (now - 2 * RECENT_SECONDS, now - 2 * RECENT_SECONDS))
    assert store.prune(1500, now=now) == [older, old]
    assert store.has(fresh) and not os.path.exists(store.blob(old))
    assert store.prune(0, now=now) == []  # the fresh blob is never removed


def test_the_default_root_follows_the_bootstrap_cache_rule() -> None:
    assert default_root({"OMI_CACHE_DIR": "/c/omi", "XDG_CACHE_HOME": "/x", "HOME": "/h"}) == "/c/omi/store"
    assert default_root({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == "/x/omi/store"
    assert default_root({"OMI_CACHE_DIR": "", "HOME": "/h"}) == "/h/.cache/omi/store"
