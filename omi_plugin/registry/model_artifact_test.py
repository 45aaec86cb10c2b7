"""Model artifacts others pushed: ModelPack and omlmd manifests read into model files, anything else one line; and a
round trip through a real registry, by digest only."""

from __future__ import annotations

import functools
import io
import os
from typing import Any, Dict, List

import pytest

from omi_plugin.blob_store.store import BlobStore
from omi_plugin.oci import canonical_json, media_types
from omi_plugin.oci.descriptor import Descriptor, sha256_digest
from omi_plugin.registry.client import Registry
from omi_plugin.registry.errors import RegistryError
from omi_plugin.registry.model_artifact import fetch_blob_to_store, fetch_model_artifact, read_model_artifact
from omi_plugin.registry.reference import parse
from omi_testutil.registry import FAST_RETRY, first_n

REF = "registry.example.com/models/digits@sha256:" + "a" * 64
WHERE = "registry.example.com/models/digits"


def _layer(media_type: str, data: bytes, **annotations: str) -> Dict[str, Any]:
    out: Dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if annotations:
        out["annotations"] = annotations
    return out


def _modelpack(layers: List[Dict[str, Any]]) -> Dict[str, Any]:
    config = b'{"descriptor":{},"config":{},"modelfs":{"type":"layers","diffIds":[]}}'
    return {"schemaVersion": 2, "mediaType": media_types.MANIFEST, "artifactType": media_types.MODELPACK_ARTIFACT,
            "config": _layer(media_types.MODELPACK_CONFIG, config), "layers": layers}


FILEPATH = media_types.ANNOTATION_MODEL_FILEPATH
TITLE = media_types.ANNOTATION_TITLE


def test_modelpack_layers_raw_and_tar_are_files_at_their_filepath() -> None:
    manifest = _modelpack([
        _layer("application/vnd.cncf.model.weight.v1.raw", b"weights", **{FILEPATH: "model.onnx"}),
        _layer("application/vnd.cncf.model.weight.config.v1.tar+gzip", b"tgz", **{FILEPATH: "config/labels.json"}),
        _layer("application/vnd.cncf.model.doc.v1.tar+zstd", b"zst", **{FILEPATH: "./README.md"}),
        _layer("application/vnd.cncf.model.code.v1.tar", b"tar", **{TITLE: "handler.py"}),
    ])
    artifact = read_model_artifact(manifest, REF, WHERE)
    assert artifact.kind == "modelpack"
    assert [(f.path, f.packing, f.compression) for f in artifact.files] == [
        ("model.onnx", "raw", ""), ("config/labels.json", "tar", "gzip"), ("README.md", "tar", "zstd"),
        ("handler.py", "tar", "")]
    found = artifact.file("./model.onnx")
    assert found is not None and found.layer.digest == sha256_digest(b"weights")
    assert artifact.file("missing.bin") is None


def test_omlmd_model_and_metadata_files_at_their_titles() -> None:
    metadata = b'{"name":"digits"}'
    manifest = {"schemaVersion": 2, "mediaType": media_types.MANIFEST,
                "config": _layer("application/x-config", metadata),
                "layers": [_layer("application/x-mlmodel", b"pickle", **{TITLE: "model.joblib"}),
                           _layer("application/x-config", metadata, **{TITLE: "model_metadata.omlmd.json"})]}
    artifact = read_model_artifact(manifest, REF, WHERE)
    assert artifact.kind == "omlmd"
    assert [f.path for f in artifact.files] == ["model.joblib", "model_metadata.omlmd.json"]


@pytest.mark.parametrize(("manifest", "line"), [
    ({"schemaVersion": 2, "mediaType": media_types.INDEX, "manifests": []},
     f"{WHERE}: {REF} is an index (application/vnd.oci.image.index.v1+json), not a model artifact"),
    ({"schemaVersion": 2, "mediaType": media_types.MANIFEST, "config": _layer(media_types.CONFIG, b"{}"),
      "layers": [_layer(media_types.LAYER_TAR_GZIP, b"x")]},
     f"{WHERE}: {REF} is a container image (config application/vnd.oci.image.config.v1+json), not a model artifact"),
    ({"schemaVersion": 2, "mediaType": media_types.MANIFEST, "config": _layer(media_types.EMPTY_JSON, b"{}"),
      "layers": [_layer("application/spdx+json", b"{}"), _layer("text/plain", b"x")]},
     f"{WHERE}: {REF} holds no model files omi reads: layers of application/spdx+json, text/plain media types "
     "(config application/vnd.oci.empty.v1+json) (expected ModelPack application/vnd.cncf.model.*.v1.* layers or an "
     "omlmd application/x-mlmodel layer; name the digest of a ModelPack or omlmd model artifact's manifest)"),
])
def test_what_is_not_a_model_artifact_is_one_line_naming_what_was_found(manifest: Dict[str, Any], line: str) -> None:
    with pytest.raises(RegistryError) as caught:
        read_model_artifact(manifest, REF, WHERE)
    assert str(caught.value).startswith(line)


@pytest.mark.parametrize(("annotations", "problem"), [
    ({}, "layers[0] (application/vnd.cncf.model.weight.v1.raw) has no org.cncf.model.filepath annotation"),
    ({FILEPATH: "../../etc/passwd"}, "layers[0]: path '../../etc/passwd' is not inside the model directory"),
    ({FILEPATH: "/abs/model.onnx"}, "layers[0]: path '/abs/model.onnx' is not inside the model directory"),
])
def test_a_layer_omi_cannot_place_is_refused(annotations: Dict[str, str], problem: str) -> None:
    manifest = _modelpack([_layer("application/vnd.cncf.model.weight.v1.raw", b"w", **annotations)])
    with pytest.raises(RegistryError) as caught:
        read_model_artifact(manifest, REF, WHERE)
    assert str(caught.value).startswith(f"{WHERE}: {problem}")


def test_a_path_twice_is_refused() -> None:
    manifest = _modelpack([_layer("application/vnd.cncf.model.weight.v1.raw", b"a", **{FILEPATH: "m.onnx"}),
                           _layer("application/vnd.cncf.model.weight.v1.raw", b"b", **{FILEPATH: "./m.onnx"})])
    with pytest.raises(RegistryError, match=r"layers\[1\]: path 'm.onnx' is also layer sha256:"):
        read_model_artifact(manifest, REF, WHERE)


def _push(client: Registry, repository: str, manifest: Dict[str, Any], blobs: List[bytes]) -> str:
    for data in blobs:
        client.upload_blob(repository, Descriptor("application/octet-stream", sha256_digest(data), len(data)),
                           functools.partial(io.BytesIO, data))
    body = canonical_json.dumps(manifest)
    client.put_manifest(repository, sha256_digest(body), body, media_types.MANIFEST)
    return sha256_digest(body)


def test_a_modelpack_artifact_in_a_registry_by_digest(registry) -> None:
    client = Registry(registry.host, load_docker_config=False, retry=FAST_RETRY)
    weights, config = b"\x08\x08" + b"\x00" * 100, b'{"descriptor":{},"config":{},"modelfs":{}}'
    manifest = {"schemaVersion": 2, "mediaType": media_types.MANIFEST,
                "artifactType": media_types.MODELPACK_ARTIFACT,
                "config": _layer(media_types.MODELPACK_CONFIG, config),
                "layers": [_layer("application/vnd.cncf.model.weight.v1.raw", weights, **{FILEPATH: "model.onnx"})]}
    digest = _push(client, "models/digits", manifest, [config, weights])
    artifact = fetch_model_artifact(f"{registry.host}/models/digits@{digest}", client)
    assert [(f.path, f.layer.digest, f.layer.size) for f in artifact.files] == [
        ("model.onnx", sha256_digest(weights), len(weights))]

    with pytest.raises(RegistryError) as tagged:
        fetch_model_artifact(f"{registry.host}/models/digits:v1", client)
    assert "refusing to pull" in str(tagged.value) and "by tag" in str(tagged.value)
    absent = "sha256:" + "0" * 64
    with pytest.raises(RegistryError) as missing:
        fetch_model_artifact(f"{registry.host}/models/digits@{absent}", client)
    assert str(missing.value) == (f"{registry.host}/models/digits: manifest {absent} not found (check the reference "
                                  "and the repository)")


def _weights_artifact(client: Registry, size: int = 300_000) -> tuple:
    weights = bytes(range(256)) * (size // 256)
    config = b'{"descriptor":{},"config":{},"modelfs":{}}'
    manifest = {"schemaVersion": 2, "mediaType": media_types.MANIFEST,
                "artifactType": media_types.MODELPACK_ARTIFACT,
                "config": _layer(media_types.MODELPACK_CONFIG, config),
                "layers": [_layer("application/vnd.cncf.model.weight.v1.raw", weights, **{FILEPATH: "w.bin"})]}
    return _push(client, "models/big", manifest, [config, weights]), weights


def test_a_layer_goes_into_the_blob_store_once(registry, proxy_factory, tmp_path) -> None:
    digest, weights = _weights_artifact(Registry(registry.host, load_docker_config=False, retry=FAST_RETRY))
    proxy = proxy_factory(registry)
    client = Registry(proxy.host, load_docker_config=False, retry=FAST_RETRY)
    reference = f"{proxy.host}/models/big@{digest}"
    [layer] = fetch_model_artifact(reference, client).files
    store = BlobStore(str(tmp_path / "store"))
    assert fetch_blob_to_store(client, parse(reference), layer.layer, store)
    with open(store.blob(layer.layer.digest), "rb") as f:
        assert f.read() == weights
    gets = len(proxy.methods("GET", "/blobs/"))
    # The next build finds it by digest: the registry is not asked again.
    assert not fetch_blob_to_store(client, parse(reference), layer.layer, BlobStore(str(tmp_path / "store")))
    assert len(proxy.methods("GET", "/blobs/")) == gets == 1


def test_a_download_reset_twice_is_retried(registry, proxy_factory, tmp_path) -> None:
    digest, weights = _weights_artifact(Registry(registry.host, load_docker_config=False, retry=FAST_RETRY))
    proxy = proxy_factory(registry)
    proxy.rule = first_n(2, "reset", lambda method, path: method == "GET" and "/blobs/" in path)
    client = Registry(proxy.host, load_docker_config=False, retry=FAST_RETRY)
    reference = f"{proxy.host}/models/big@{digest}"
    [layer] = fetch_model_artifact(reference, client).files
    store = BlobStore(str(tmp_path / "store"))
    assert fetch_blob_to_store(client, parse(reference), layer.layer, store)
    assert store.has(layer.layer.digest)


def test_bytes_that_do_not_match_their_digest_leave_nothing_in_the_store(registry, tmp_path) -> None:
    client = Registry(registry.host, load_docker_config=False, retry=FAST_RETRY)
    digest, weights = _weights_artifact(client)
    reference = f"{registry.host}/models/big@{digest}"
    [layer] = fetch_model_artifact(reference, client).files
    path = registry.blob_data_path(layer.layer.digest)
    tampered = bytearray(open(path, "rb").read())
    tampered[1000] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(tampered))
    store = BlobStore(str(tmp_path / "store"))
    with pytest.raises(RegistryError) as caught:
        fetch_blob_to_store(client, parse(reference), layer.layer, store)
    assert str(caught.value).startswith(f"{registry.host}/models/big: blob {layer.layer.digest} failed verification: "
                                        "its content hashes to sha256:")
    assert not store.has(layer.layer.digest) and list(store.blobs()) == []
    assert os.listdir(os.path.join(store.root, "tmp")) == []
