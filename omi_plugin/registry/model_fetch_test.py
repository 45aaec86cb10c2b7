"""A model artifact fetched whole into the blob store, through a real registry: raw and gzip tar layers become model
files, the next build finds them with no network, and a download cut half way records nothing."""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import tarfile
from typing import Dict, List, Tuple

import pytest

from omi_plugin.blob_store import file_layer
from omi_plugin.blob_store.file_blob import copy_into
from omi_plugin.blob_store.store import BlobStore, write_json_atomically
from omi_plugin.oci import compression, media_types
from omi_plugin.registry.client import Registry
from omi_plugin.registry.errors import RegistryError
from omi_plugin.registry.model_artifact_test import FILEPATH, _layer, _push
from omi_plugin.registry.model_fetch import _record_path, fetch_to_store, find_stored
from omi_testutil.registry import FAST_RETRY, first_n

CONFIG = b'{"descriptor":{},"config":{},"modelfs":{}}'


def _tar_gz(files: Dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        directory = tarfile.TarInfo("tokenizer")
        directory.type = tarfile.DIRTYPE
        archive.addfile(directory)
    return gzip.compress(raw.getvalue(), mtime=0)


def _artifact(client: Registry, repository: str = "models/text") -> Tuple[str, bytes, List[bytes]]:
    weights = bytes(range(256)) * 1000
    tokenizer = _tar_gz({"tokenizer/vocab.txt": b"[PAD]\n[UNK]\n", "tokenizer/config.json": b"{}"})
    manifest = {"schemaVersion": 2, "mediaType": media_types.MANIFEST,
                "artifactType": media_types.MODELPACK_ARTIFACT,
                "config": _layer(media_types.MODELPACK_CONFIG, CONFIG),
                "layers": [_layer("application/vnd.cncf.model.weight.v1.raw", weights, **{FILEPATH: "model.onnx"}),
                           _layer("application/vnd.cncf.model.weight.config.v1.tar+gzip", tokenizer,
                                  **{FILEPATH: "tokenizer"})]}
    digest = _push(client, repository, manifest, [CONFIG, weights, tokenizer])
    return digest, weights, [CONFIG, weights, tokenizer]


def test_an_artifact_is_fetched_whole_and_found_again_without_the_registry(registry, proxy_factory, tmp_path) -> None:
    digest, weights, _ = _artifact(Registry(registry.host, load_docker_config=False, retry=FAST_RETRY))
    proxy = proxy_factory(registry)
    reference = f"{proxy.host}/models/text@{digest}"
    store = BlobStore(str(tmp_path / "store"))
    assert find_stored(store, reference) is None
    fetched = fetch_to_store(Registry(proxy.host, load_docker_config=False, retry=FAST_RETRY), reference, store,
                             log=lambda _: None)
    assert fetched.kind == "modelpack" and fetched.manifest.digest == digest
    assert fetched.manifest.artifact_type == media_types.MODELPACK_ARTIFACT
    assert {f.path: f.size for f in fetched.files} == {"model.onnx": len(weights), "tokenizer/config.json": 2,
                                                       "tokenizer/vocab.txt": 12}
    for f in fetched.files:
        assert store.has(f.digest)
    with open(store.blob(next(f.digest for f in fetched.files if f.path == "tokenizer/vocab.txt")), "rb") as vocab:
        assert vocab.read() == b"[PAD]\n[UNK]\n"
    assert len(fetched.blobs) == 4 and all(store.has(b) for b in fetched.blobs)

    asked = len(proxy.log)
    again = find_stored(BlobStore(store.root), f"elsewhere.example.com/copy@{digest}")
    assert again is not None and again.files == fetched.files and again.reference.startswith("elsewhere")
    assert len(proxy.log) == asked


def test_a_download_cut_for_good_records_nothing(registry, proxy_factory, tmp_path) -> None:
    digest, _, _ = _artifact(Registry(registry.host, load_docker_config=False, retry=FAST_RETRY))
    proxy = proxy_factory(registry)
    proxy.rule = first_n(100, "reset", lambda method, path: method == "GET" and "/blobs/" in path)
    reference = f"{proxy.host}/models/text@{digest}"
    store = BlobStore(str(tmp_path / "store"))
    with pytest.raises(RegistryError, match=r"blobs/sha256:.* failed: connection reset"):
        fetch_to_store(Registry(proxy.host, load_docker_config=False, retry=FAST_RETRY), reference, store,
                       log=lambda _: None)
    assert find_stored(store, reference) is None
    proxy.rule = None
    assert fetch_to_store(Registry(proxy.host, load_docker_config=False, retry=FAST_RETRY), reference, store,
                          log=lambda _: None).files


def test_a_tar_layer_with_a_link_is_refused(registry, tmp_path) -> None:
    client = Registry(registry.host, load_docker_config=False, retry=FAST_RETRY)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        link = tarfile.TarInfo("model/weights.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    layer = raw.getvalue()
    manifest = {"schemaVersion": 2, "mediaType": media_types.MANIFEST,
                "artifactType": media_types.MODELPACK_ARTIFACT,
                "config": _layer(media_types.MODELPACK_CONFIG, CONFIG),
                "layers": [_layer("application/vnd.cncf.model.weight.v1.tar", layer, **{FILEPATH: "model"})]}
    digest = _push(client, "models/linked", manifest, [CONFIG, layer])
    reference = f"{registry.host}/models/linked@{digest}"
    store = BlobStore(str(tmp_path / "store"))
    with pytest.raises(RegistryError) as caught:
        fetch_to_store(client, reference, store, log=lambda _: None)
    assert str(caught.value).startswith(f"{registry.host}/models/linked: layer sha256:")
    assert "'model/weights.bin' is not a regular file" in str(caught.value)
    assert find_stored(store, reference) is None


def _one_tar_layer(client: Registry, repository: str, layer: bytes, media_type: str) -> str:
    manifest = {"schemaVersion": 2, "mediaType": media_types.MANIFEST,
                "artifactType": media_types.MODELPACK_ARTIFACT,
                "config": _layer(media_types.MODELPACK_CONFIG, CONFIG),
                "layers": [_layer(media_type, layer, **{FILEPATH: "model"})]}
    return _push(client, repository, manifest, [CONFIG, layer])


def _tar(entries: List[Tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@pytest.mark.parametrize("entries, problem", [
    ([("model/a.txt", b"1"), ("./model/a.txt", b"2")], "holds 'model/a.txt' twice"),
    ([(".", b"x")], "'.': empty path"),
    ([("../outside.bin", b"x")], "path escapes the layer root"),
], ids=["twice", "dot", "escape"])
def test_tar_members_that_are_not_model_files_are_refused(registry, tmp_path, entries, problem) -> None:
    client = Registry(registry.host, load_docker_config=False, retry=FAST_RETRY)
    digest = _one_tar_layer(client, "models/bad", _tar(entries), "application/vnd.cncf.model.weight.v1.tar")
    store = BlobStore(str(tmp_path / "store"))
    with pytest.raises(RegistryError) as caught:
        fetch_to_store(client, f"{registry.host}/models/bad@{digest}", store, log=lambda _: None)
    assert problem in str(caught.value)


def test_a_decompression_bomb_is_refused(registry, tmp_path) -> None:
    client = Registry(registry.host, load_docker_config=False, retry=FAST_RETRY)
    bomb = gzip.compress(_tar([("model/zeros.bin", b"\0" * (80 << 20))]), compresslevel=9)
    digest = _one_tar_layer(client, "models/bomb", bomb, "application/vnd.cncf.model.weight.v1.tar+gzip")
    with pytest.raises(RegistryError, match="unpacks to over 100 times its size"):
        fetch_to_store(client, f"{registry.host}/models/bomb@{digest}", BlobStore(str(tmp_path / "store")),
                       log=lambda _: None)


def test_identical_files_are_one_blob_and_a_record_of_another_digest_is_not_trusted(registry, tmp_path) -> None:
    client = Registry(registry.host, load_docker_config=False, retry=FAST_RETRY)
    digest = _one_tar_layer(client, "models/twins", _tar([("model/a/__init__.py", b""), ("model/b/__init__.py", b"")]),
                            "application/vnd.cncf.model.code.v1.tar")
    store = BlobStore(str(tmp_path / "store"))
    fetched = fetch_to_store(client, f"{registry.host}/models/twins@{digest}", store, log=lambda _: None)
    assert [f.path for f in fetched.files] == ["model/a/__init__.py", "model/b/__init__.py"]
    assert len({f.digest for f in fetched.files}) == 1
    # A record filed under one digest that speaks of another is not believed.
    other = "sha256:" + "1" * 64
    write_json_atomically(_record_path(store, other), fetched.to_json())
    assert find_stored(store, f"{registry.host}/models/twins@{other}") is None


def test_with_the_model_directory_a_raw_layer_is_written_once_as_its_image_layer(registry, proxy_factory,
                                                                                tmp_path) -> None:
    digest, weights, _ = _artifact(Registry(registry.host, load_docker_config=False, retry=FAST_RETRY))
    proxy = proxy_factory(registry)
    reference = f"{proxy.host}/models/text@{digest}"
    store = BlobStore(str(tmp_path / "store"))
    fetched = fetch_to_store(Registry(proxy.host, load_docker_config=False, retry=FAST_RETRY), reference, store,
                             log=lambda _: None, model_dir="models/text")
    model = next(f for f in fetched.files if f.path == "model.onnx")
    # The raw bytes are no blob of their own: they are the data of the image layer of models/text/model.onnx ...
    assert model.within and not store.has(model.digest) and model.digest not in fetched.blobs
    with tarfile.open(model.held_in(store)) as layer:
        members = layer.getmembers()
        assert [m.name for m in members] == ["models", "models/text", "models/text/model.onnx"]
        assert members[-1].offset_data == model.offset and members[-1].mode == 0o644
    with model.open(store) as f:
        assert f.read() == weights
        assert f.seek(0, 2) == len(weights)
    # ... which the image's layer step then takes as it is: no write.
    spec = file_layer.FileLayerSpec(model.held_in(store), "models/text/model.onnx", "omi: model file model.onnx",
                                    compression.Setting("none"), model.digest, model.offset, model.size)
    built = file_layer.build(store, spec)
    assert built.layer.descriptor.digest == model.within and built.file_digest == model.digest
    # The tar layer (and the layer step's own write, elsewhere) are the same bytes.
    elsewhere = file_layer.build(store, dataclasses.replace(spec, dest="models/other/model.onnx"))
    with tarfile.open(store.blob(elsewhere.layer.descriptor.digest)) as layer:
        member = layer.getmember("models/other/model.onnx")
        assert layer.extractfile(member).read() == weights  # type: ignore[union-attr]
    # Found again with no network; a process that needs the file gets it as a blob of its own, once.
    asked = len(proxy.log)
    again = find_stored(BlobStore(store.root), reference)
    assert again is not None and again.files == fetched.files and len(proxy.log) == asked
    assert copy_into(store, model.held_in(store), model.digest, model.offset, model.size)
    with open(store.blob(model.digest), "rb") as f:
        assert f.read() == weights


def test_a_raw_layer_that_is_not_its_digest_leaves_no_image_layer(registry, tmp_path) -> None:
    client = Registry(registry.host, load_docker_config=False, retry=FAST_RETRY)
    weights = b"w" * 5000
    config, layer = _layer(media_types.MODELPACK_CONFIG, CONFIG), \
        _layer("application/vnd.cncf.model.weight.v1.raw", weights, **{FILEPATH: "model.bin"})
    manifest = {"schemaVersion": 2, "mediaType": media_types.MANIFEST,
                "artifactType": media_types.MODELPACK_ARTIFACT, "config": config, "layers": [layer]}
    digest = _push(client, "models/lying", manifest, [CONFIG, weights])
    # The registry's copy of the layer is replaced by other bytes of the same size under the same name.
    blob = layer["digest"]
    os.chmod(registry.blob_data_path(blob), 0o644)
    with open(registry.blob_data_path(blob), "wb") as f:
        f.write(b"x" * len(weights))
    store = BlobStore(str(tmp_path / "store"))
    with pytest.raises(RegistryError, match="failed verification"):
        fetch_to_store(client, f"{registry.host}/models/lying@{digest}", store, log=lambda _: None,
                       model_dir="models/lying")
    # Only the manifest and the config are in the store: no layer, no record, nothing half-written.
    assert sorted(d for d, _, _ in store.blobs()) == sorted([digest, config["digest"]])
    assert find_stored(store, f"{registry.host}/models/lying@{digest}") is None
    assert os.listdir(os.path.join(store.root, "tmp")) == []
