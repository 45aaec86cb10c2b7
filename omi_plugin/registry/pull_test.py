"""Pull by digest: round trip, platform choice from an index, Docker schema 2, tampering, tag refusal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from omi_plugin.oci import canonical_json, media_types
from omi_plugin.oci.descriptor import Blob, Descriptor
from omi_plugin.oci.layout import Layout
from omi_plugin.registry.client import DOCKER_MANIFEST, Registry
from omi_plugin.registry.errors import RegistryError
from omi_plugin.registry.pull import pull
from omi_plugin.registry.push import push
from omi_testutil.registry import FAST_RETRY, make_image, put_raw_blob, write_layout


def client(host: str) -> Registry:
    return Registry(host, load_docker_config=False, retry=FAST_RETRY)


def quiet(_: str) -> None:
    pass


def _pushed(registry, tmp_path, repository="base"):
    img = make_image(str(tmp_path / "img"), [{"etc/os-release": b"ID=test\n"}, {"usr/bin/x": os.urandom(70_000)}])
    push(img.root, registry=registry.host, repository=repository, tags=["v1"], client=client(registry.host),
         log=quiet)
    return img


def test_pull_by_digest_round_trip(registry, tmp_path):
    img = _pushed(registry, tmp_path)
    digest = img.manifest.descriptor.digest
    out = tmp_path / "out"
    result = pull(f"{registry.host}/base@{digest}", str(out), client=client(registry.host), log=quiet,
                  ref_name="base")
    assert result.manifest_digest == digest and result.index_digest is None
    assert sorted(os.listdir(out / "blobs" / "sha256")) == sorted(os.listdir(os.path.join(img.root, "blobs", "sha256")))
    [(descriptor, ref)] = Layout(str(out)).manifests()
    assert (descriptor.digest, ref) == (digest, "base")
    # Pulling again reuses the verified blobs.
    again = pull(f"{registry.host}/base@{digest}", str(out), client=client(registry.host), log=quiet)
    assert again.downloaded_bytes == 0 and again.reused_bytes == result.downloaded_bytes
    if shutil.which("skopeo"):
        inspect = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{out}"], check=True,
                                            stdout=subprocess.PIPE).stdout)
        assert inspect["Digest"] == digest


def test_tag_only_reference_is_refused(registry, tmp_path):
    with pytest.raises(RegistryError) as caught:
        pull(f"{registry.host}/base:v1", str(tmp_path / "out"), client=client(registry.host), log=quiet)
    assert str(caught.value) == (f"{registry.host}/base: refusing to pull '{registry.host}/base:v1' by tag "
                                 f"(pin the base by digest: {registry.host}/base@sha256:...)")
    assert not (tmp_path / "out").exists()


def test_tampered_blob_in_registry_storage_is_rejected(registry, tmp_path):
    img = _pushed(registry, tmp_path)
    layer = img.layers[1].descriptor.digest
    path = registry.blob_data_path(layer)
    with open(path, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    out = tmp_path / "out"
    with pytest.raises(RegistryError) as caught:
        pull(f"{registry.host}/base@{img.manifest.descriptor.digest}", str(out), client=client(registry.host),
             log=quiet)
    assert f"blob {layer} failed verification" in str(caught.value)
    assert not (out / "blobs" / "sha256" / layer.split(":")[1]).exists()
    assert not (out / "index.json").exists()


def test_unknown_digest_is_a_clear_error(registry, tmp_path):
    _pushed(registry, tmp_path)
    with pytest.raises(RegistryError, match="manifest sha256:0+ not found"):
        pull(f"{registry.host}/base@sha256:{'0' * 64}", str(tmp_path / "out"), client=client(registry.host),
             log=quiet)


def test_index_picks_linux_amd64(registry, tmp_path):
    root = str(tmp_path / "multi")
    amd = make_image(root, [{"arch": b"amd64"}], architecture="amd64")
    arm = make_image(root, [{"arch": b"arm64"}], architecture="arm64")
    entries = []
    for image, arch in ((arm, "arm64"), (amd, "amd64")):
        d = image.manifest.descriptor
        entries.append(Descriptor(d.media_type, d.digest, d.size, platform={"os": "linux", "architecture": arch}))
    index = Blob.of_json(media_types.INDEX, {"schemaVersion": 2, "mediaType": media_types.INDEX,
                                             "manifests": [e.to_json() for e in entries]})
    put_raw_blob(root, index.data)
    write_layout(root, [(index.descriptor, ["multi"])])
    push(root, registry=registry.host, repository="multi", client=client(registry.host), log=quiet)
    result = pull(f"{registry.host}/multi@{index.descriptor.digest}", str(tmp_path / "out"),
                  client=client(registry.host), log=quiet)
    assert result.index_digest == index.descriptor.digest
    assert result.manifest_digest == amd.manifest.descriptor.digest
    with pytest.raises(RegistryError, match="no linux/s390x manifest.*linux/arm64, linux/amd64"):
        pull(f"{registry.host}/multi@{index.descriptor.digest}", str(tmp_path / "out2"), platform=("linux", "s390x"),
             client=client(registry.host), log=quiet)


def test_docker_schema2_manifest(registry, tmp_path):
    root = str(tmp_path / "docker")
    img = make_image(root, [{"a": b"a" * 3000}])
    manifest = json.loads(img.manifest.data)
    manifest["mediaType"] = DOCKER_MANIFEST
    manifest["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
    for layer in manifest["layers"]:
        layer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar"
    manifest.pop("annotations")
    data = canonical_json.dumps(manifest)
    blob = Blob.of_json(DOCKER_MANIFEST, manifest)
    put_raw_blob(root, data)
    write_layout(root, [(blob.descriptor, ["docker"])])
    push(root, registry=registry.host, repository="docker", client=client(registry.host), log=quiet)
    result = pull(f"{registry.host}/docker@{blob.descriptor.digest}", str(tmp_path / "out"),
                  client=client(registry.host), log=quiet)
    assert result.media_type == DOCKER_MANIFEST and result.manifest_digest == blob.descriptor.digest
