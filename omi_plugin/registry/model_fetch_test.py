"""A model artifact fetched whole into the blob store, through a real registry: raw and gzip tar layers become model
files, the next build finds them with no network, and a download cut half way records nothing."""

from __future__ import annotations

import gzip
import io
import tarfile
from typing import Dict, List, Tuple

import pytest

from omi_plugin.blob_store.store import BlobStore
from omi_plugin.oci import media_types
from omi_plugin.registry.client import Registry
from omi_plugin.registry.errors import RegistryError
from omi_plugin.registry.model_artifact_test import FILEPATH, _layer, _push
from omi_plugin.registry.model_fetch import fetch_to_store, find_stored
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
