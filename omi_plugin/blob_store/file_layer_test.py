import json
import os
import shutil

import pytest

from omi_plugin.blob_store import file_layer, sources, write_file_layer
from omi_plugin.blob_store.store import BlobStore
from omi_plugin.oci import build_layer, compress_layer, compression
from omi_plugin.oci.hashing import file_sha256
from omi_plugin.oci.layout import blob_path

DEST = "models/m/weights.bin"


def _model(tmp_path, data: bytes) -> str:
    path = str(tmp_path / "weights.bin")
    with open(path, "wb") as f:
        f.write(data)
    return path


def _through_sandbox_tools(tmp_path, source: str, setting: compression.Setting):  # type: ignore[no-untyped-def]
    """The same layer as the sandboxed tools write it: build_layer, then compress_layer."""
    work = tmp_path / "tools"
    work.mkdir()
    shutil.copy(source, work / "weights.bin")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        layer = build_layer.build({"created_by": "omi: model file weights.bin",
                                   "files": [{"src": "weights.bin", "dest": DEST}]}, "out")
        if setting.algorithm == compression.NONE:
            return layer
        os.makedirs("blobs/sha256", exist_ok=True)
        os.replace(os.path.join("out", blob_path(layer.descriptor.digest)), blob_path(layer.descriptor.digest))
        return compress_layer.compress_layer({"layer": layer.to_json(), "compression": setting.to_json()}, "comp")
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("setting", [compression.Setting("none"), compression.Setting("gzip"),
                                     compression.Setting("zstd")], ids=lambda s: s.algorithm)
def test_the_layer_is_byte_identical_to_the_sandboxed_tools(tmp_path, setting) -> None:
    source = _model(tmp_path, b"float tensors, pretend\n" * 300_000)  # several gzip members
    store = BlobStore(str(tmp_path / "store"))
    stored = file_layer.build(store, file_layer.FileLayerSpec(source, DEST, "omi: model file weights.bin", setting))
    assert stored.layer == _through_sandbox_tools(tmp_path, source, setting)
    assert file_sha256(store.blob(stored.layer.descriptor.digest))[0] == stored.layer.descriptor.digest
    assert (stored.file_digest, stored.file_size) == file_sha256(source)


@pytest.mark.parametrize("size", [6000, 3 << 20], ids=["small", "large"])
def test_the_probe_decides_as_the_sandboxed_compressor_does(tmp_path, size) -> None:
    """The probe samples the layer's tar, not the file: a small file's tar headers and padding compress, so a few
    KB of incompressible bytes are compressed as a layer, and megabytes of them are not."""
    source = _model(tmp_path, os.urandom(size))
    setting = compression.Setting("gzip", probe=True)
    stored = file_layer.build(BlobStore(str(tmp_path / "store")),
                              file_layer.FileLayerSpec(source, DEST, "omi: model file weights.bin", setting))
    assert stored.layer == _through_sandbox_tools(tmp_path, source, setting)
    assert compression.algorithm_of(stored.layer.descriptor.media_type) == (
        compression.GZIP if size == 6000 else compression.NONE)


def test_an_unchanged_file_is_found_without_writing(tmp_path) -> None:
    source = _model(tmp_path, os.urandom(1 << 20))
    store = BlobStore(str(tmp_path / "store"))
    spec = file_layer.FileLayerSpec(source, DEST, "omi: model file weights.bin", compression.Setting("none"))
    first = file_layer.build(store, spec)
    blob = os.stat(store.blob(first.layer.descriptor.digest))
    assert file_layer.find(store, spec) == first  # racy: hashed, not rewritten
    assert file_layer.build(store, spec) == first
    assert os.stat(store.blob(first.layer.descriptor.digest)).st_ino == blob.st_ino
    assert os.listdir(tmp_path / "store" / "tmp") == []


def test_a_changed_file_gets_a_new_layer(tmp_path) -> None:
    source = _model(tmp_path, b"one" * 1000)
    store = BlobStore(str(tmp_path / "store"))
    spec = file_layer.FileLayerSpec(source, DEST, "omi: model file weights.bin", compression.Setting("none"))
    first = file_layer.build(store, spec)
    with open(source, "r+b") as f:
        f.write(b"two")
    assert file_layer.find(store, spec) is None
    second = file_layer.build(store, spec)
    assert second.file_digest == file_sha256(source)[0] != first.file_digest


def test_a_corrupted_stored_layer_is_rebuilt_not_used(tmp_path) -> None:
    source = _model(tmp_path, b"weights" * 10_000)
    store = BlobStore(str(tmp_path / "store"))
    spec = file_layer.FileLayerSpec(source, DEST, "omi: model file weights.bin", compression.Setting("gzip"))
    first = file_layer.build(store, spec)
    blob = store.blob(first.layer.descriptor.digest)
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as f:
        f.seek(100)
        f.write(b"\xff")
    again = file_layer.build(store, spec)
    assert again == first
    assert file_sha256(blob)[0] == first.layer.descriptor.digest
    assert any("no longer matches its name" in line for line in store.problems)


def test_the_tool_writes_its_answer_and_refuses_a_missing_file(tmp_path, capsys) -> None:
    source = _model(tmp_path, b"w" * 5000)
    spec = {"store": str(tmp_path / "store"),
            "layer": file_layer.FileLayerSpec(source, DEST, "omi: model file weights.bin",
                                              compression.Setting("none")).to_json()}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert write_file_layer.main([str(tmp_path / "spec.json"), str(tmp_path / "out")]) == 0
    answer = json.loads((tmp_path / "out" / write_file_layer.STORED_JSON).read_text())
    assert file_layer.StoredFileLayer.from_json(answer).file_digest == file_sha256(source)[0]
    os.unlink(source)
    assert write_file_layer.main([str(tmp_path / "spec.json"), str(tmp_path / "out")]) == 1
    assert "No such file" in capsys.readouterr().err


def test_probe_leaves_incompressible_weights_uncompressed(tmp_path) -> None:
    source = _model(tmp_path, os.urandom(3 << 20))
    store = BlobStore(str(tmp_path / "store"))
    stored = file_layer.build(store, file_layer.FileLayerSpec(
        source, DEST, "omi: model file weights.bin", compression.Setting("gzip", probe=True)))
    assert compression.algorithm_of(stored.layer.descriptor.media_type) == compression.NONE
    assert sources.known_digest(store, source) is not None
