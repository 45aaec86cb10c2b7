"""The blob store rules with real Pants (RuleRunner): a model file's layer written to the store by the real tool
process, found again without a process, linked into layouts and dist/, and a corrupted store blob rebuilt."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pants.engine.fs import Digest, DigestEntries, SymlinkEntry
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.oci import compression
from omi_plugin.oci.hashing import file_sha256
from omi_plugin.oci.layout import blob_path
from omi_plugin.util_rules.stored_layers import (
    ModelFileDigests,
    ModelFileDigestsRequest,
    StoredBlobsInDist,
    StoredBlobsInDistRequest,
    StoredFileBlob,
    StoredFileBlobRequest,
    StoredModelLayer,
    StoredModelLayerRequest,
)
from omi_testutil import rules as testutil_rules

WEIGHTS = b"float tensors, pretend\n" * 50_000


@pytest.fixture
def rule_runner(tmp_path: Path) -> RuleRunner:
    runner = RuleRunner(rules=[*testutil_rules.blob_store_rules(),
                               QueryRule(StoredModelLayer, [StoredModelLayerRequest]),
                               QueryRule(ModelFileDigests, [ModelFileDigestsRequest]),
                               QueryRule(StoredBlobsInDist, [StoredBlobsInDistRequest]),
                               QueryRule(StoredFileBlob, [StoredFileBlobRequest]),
                               QueryRule(DigestEntries, [Digest])])
    _new_session(runner, tmp_path)
    runner.write_files({"m/weights.bin": WEIGHTS})
    return runner


def _new_session(runner: RuleRunner, tmp_path: Path) -> None:
    """A new Pants session (as the next `pants` command is): uncacheable rules run again."""
    runner.set_options([f"--omi-blob-store={tmp_path / 'store'}"])


def _request(setting: compression.Setting = compression.Setting("none")) -> StoredModelLayerRequest:
    return StoredModelLayerRequest("m/weights.bin", "models/m/weights.bin", "omi: model file weights.bin", setting)


def _store_blob(tmp_path: Path, digest: str) -> Path:
    return tmp_path / "store" / blob_path(digest)


@pytest.mark.parametrize("setting", [compression.Setting("none"), compression.Setting("gzip")],
                         ids=lambda s: s.algorithm)
def test_the_layer_is_written_to_the_store_and_linked_from_its_digest(rule_runner: RuleRunner, tmp_path: Path,
                                                                       setting: compression.Setting) -> None:
    stored = rule_runner.request(StoredModelLayer, [_request(setting)])
    digest = stored.built.layer.descriptor.digest
    blob = _store_blob(tmp_path, digest)
    assert file_sha256(str(blob)) == (digest, stored.built.layer.descriptor.size)
    assert compression.algorithm_of(stored.built.layer.descriptor.media_type) == setting.algorithm
    assert (stored.file_digest, stored.file_size) == file_sha256(os.path.join(rule_runner.build_root, "m/weights.bin"))
    [link] = rule_runner.request(DigestEntries, [stored.built.blobs])
    assert isinstance(link, SymlinkEntry) and (link.path, link.target) == (blob_path(digest), str(blob))


def test_an_unchanged_file_is_found_in_the_next_session_without_rewriting(rule_runner: RuleRunner,
                                                                           tmp_path: Path) -> None:
    first = rule_runner.request(StoredModelLayer, [_request()])
    # A blob is never replaced, so its inode proves nothing; the layer record is rewritten by every write.
    [record] = [p for p in (tmp_path / "store" / "layers").rglob("*") if p.is_file()]
    written = record.stat().st_ino
    _new_session(rule_runner, tmp_path)
    assert rule_runner.request(StoredModelLayer, [_request()]) == first
    assert record.stat().st_ino == written
    assert os.listdir(tmp_path / "store" / "tmp") == []


def test_a_changed_file_is_seen_in_the_next_session(rule_runner: RuleRunner, tmp_path: Path) -> None:
    first = rule_runner.request(StoredModelLayer, [_request()])
    rule_runner.write_files({"m/weights.bin": WEIGHTS + b"retrained"})
    _new_session(rule_runner, tmp_path)
    second = rule_runner.request(StoredModelLayer, [_request()])
    assert second.file_digest != first.file_digest
    assert second.built.layer.descriptor.digest != first.built.layer.descriptor.digest


def test_a_corrupted_store_blob_is_reported_and_rebuilt(rule_runner: RuleRunner, tmp_path: Path, caplog) -> None:
    first = rule_runner.request(StoredModelLayer, [_request()])
    blob = _store_blob(tmp_path, first.built.layer.descriptor.digest)
    blob.chmod(0o644)
    with open(blob, "r+b") as f:
        f.seek(1000)
        f.write(b"\xff\xff")
    _new_session(rule_runner, tmp_path)
    with caplog.at_level(logging.WARNING):
        again = rule_runner.request(StoredModelLayer, [_request()])
    assert again == first
    assert file_sha256(str(blob))[0] == first.built.layer.descriptor.digest
    assert "no longer matches its name" in caplog.text


def test_blobs_are_hard_linked_into_dist_and_again_after_it_is_removed(rule_runner: RuleRunner,
                                                                        tmp_path: Path) -> None:
    stored = rule_runner.request(StoredModelLayer, [_request()])
    digest = stored.built.layer.descriptor.digest
    placed = rule_runner.request(StoredBlobsInDist, [StoredBlobsInDistRequest((digest,))])
    assert placed.paths == (f"omi-blobs/sha256/{digest.split(':')[1]}",)
    in_dist = Path(rule_runner.build_root, "dist", placed.paths[0])
    assert in_dist.stat().st_ino == _store_blob(tmp_path, digest).stat().st_ino
    in_dist.unlink()
    _new_session(rule_runner, tmp_path)
    rule_runner.request(StoredBlobsInDist, [StoredBlobsInDistRequest((digest,))])
    assert in_dist.stat().st_ino == _store_blob(tmp_path, digest).stat().st_ino


def test_model_file_digests_come_from_the_stat_cache(rule_runner: RuleRunner, tmp_path: Path) -> None:
    rule_runner.write_files({"m/labels.txt": "0\n1\n"})
    found = rule_runner.request(ModelFileDigests, [ModelFileDigestsRequest(("m/weights.bin", "m/labels.txt"))])
    assert found.digests == tuple(file_sha256(os.path.join(rule_runner.build_root, p))[0]
                                  for p in ("m/weights.bin", "m/labels.txt"))
    assert os.listdir(tmp_path / "store" / "sources")


def test_the_file_itself_is_copied_into_the_store_once(rule_runner: RuleRunner, tmp_path: Path) -> None:
    digest, _ = file_sha256(os.path.join(rule_runner.build_root, "m/weights.bin"))
    stored = rule_runner.request(StoredFileBlob, [StoredFileBlobRequest("m/weights.bin", digest)])
    blob = _store_blob(tmp_path, digest)
    assert blob.read_bytes() == WEIGHTS
    [link] = rule_runner.request(DigestEntries, [stored.blobs])
    assert isinstance(link, SymlinkEntry) and (link.path, link.target) == (blob_path(digest), str(blob))
    # Found by its name in the next session, with no process: the model file is not read again (it is gone).
    os.remove(os.path.join(rule_runner.build_root, "m/weights.bin"))
    _new_session(rule_runner, tmp_path)
    assert rule_runner.request(StoredFileBlob, [StoredFileBlobRequest("m/weights.bin", digest)]) == stored


def test_a_file_changed_since_its_layer_was_made_is_refused(rule_runner: RuleRunner, tmp_path: Path) -> None:
    stale = "sha256:" + "0" * 64
    with pytest.raises(Exception, match="changed during the build"):
        rule_runner.request(StoredFileBlob, [StoredFileBlobRequest("m/weights.bin", stale)])
    assert not _store_blob(tmp_path, stale).exists()
