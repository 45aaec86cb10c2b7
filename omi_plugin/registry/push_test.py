"""Push against a real Distribution registry: digests, idempotence, incremental uploads, artifacts, referrers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import List

import pytest

from omi_plugin.oci import media_types
from omi_plugin.oci.descriptor import Blob, Descriptor, sha256_digest
from omi_plugin.oci.image import build_manifest
from omi_plugin.oci.layout import LayoutError
from omi_plugin.omi_image import model_subject
from omi_plugin.registry.client import Registry
from omi_plugin.registry.push import push
from omi_testutil.registry import (
    FAST_RETRY,
    make_attestations,
    make_image,
    make_modelpack,
    make_omlmd,
    write_layout,
)

SKOPEO = shutil.which("skopeo")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(REPO_ROOT, "dist", "examples.digits")


def client(host: str, **kwargs) -> Registry:
    return Registry(host, load_docker_config=False, retry=FAST_RETRY, **kwargs)


def files(n: int, salt: str = "") -> List[dict]:
    return [{f"layer{i}/file.txt": f"content {i}{salt}\n".encode() * 100} for i in range(n)]


def test_push_then_skopeo_sees_same_digest_and_copies_identical_blobs(registry, tmp_path):
    image = make_image(str(tmp_path / "img"), files(3))
    lines: List[str] = []
    result = push(image.root, registry=registry.host, repository="team/app", tags=["v1", "stable"],
                  client=client(registry.host), log=lines.append)
    assert result.image_digest == image.manifest.descriptor.digest
    assert sorted(registry.tags("team/app")) == ["stable", "v1"]
    assert result.blobs.uploaded == 4 and result.blobs.skipped == 0
    assert any("uploaded" in line for line in lines)
    if SKOPEO is None:
        pytest.skip("skopeo is not installed")
    inspect = json.loads(subprocess.run([SKOPEO, "inspect", "--tls-verify=false", f"docker://{registry.host}/team/app:v1"],
                                        check=True, stdout=subprocess.PIPE).stdout)
    assert inspect["Digest"] == image.manifest.descriptor.digest
    copy = tmp_path / "copy"
    subprocess.run([SKOPEO, "copy", "--preserve-digests", "--src-tls-verify=false", f"docker://{registry.host}/team/app:v1",
                    f"oci:{copy}:v1"], check=True, stdout=subprocess.DEVNULL)
    original = sorted(os.listdir(os.path.join(image.root, "blobs", "sha256")))
    copied = sorted(os.listdir(copy / "blobs" / "sha256"))
    assert copied == original
    for name in original:
        with open(os.path.join(image.root, "blobs", "sha256", name), "rb") as a, open(copy / "blobs" / "sha256" / name, "rb") as b:
            assert a.read() == b.read()


def test_republish_uploads_zero_bytes(registry, tmp_path):
    image = make_image(str(tmp_path / "img"), files(2))
    first = push(image.root, registry=registry.host, repository="app", tags=["v1"], client=client(registry.host),
                 log=lambda _: None)
    again = push(image.root, registry=registry.host, repository="app", tags=["v1"], client=client(registry.host),
                 log=lambda _: None)
    assert first.blobs.uploaded_bytes > 0
    assert again.blobs.uploaded == 0 and again.blobs.uploaded_bytes == 0
    assert again.blobs.skipped_bytes == first.blobs.uploaded_bytes
    assert again.manifests_pushed == 0


def test_changing_one_layer_uploads_only_that_layer_and_config(registry, tmp_path):
    layers = files(3)
    first = make_image(str(tmp_path / "a"), layers)
    push(first.root, registry=registry.host, repository="app", tags=["v1"], client=client(registry.host),
         log=lambda _: None)
    layers[1] = {"layer1/file.txt": b"retrained\n"}
    second = make_image(str(tmp_path / "b"), layers, tag="v2")
    lines: List[str] = []
    result = push(second.root, registry=registry.host, repository="app", tags=["v2"], client=client(registry.host),
                  log=lines.append)
    uploaded = {line.split()[2] for line in lines if line.endswith("uploaded")}
    # The layer changed, so its diff_id in the config changed too: exactly those two blobs travel.
    assert uploaded == {second.layers[1].descriptor.digest[:19], second.config.descriptor.digest[:19]}
    assert result.blobs.uploaded_bytes == second.layers[1].descriptor.size + second.config.descriptor.size
    assert result.blobs.skipped == 2


def test_the_image_names_its_model_artifact_and_the_model_lists_its_images_by_fallback_tag(registry, tmp_path):
    model = make_modelpack(str(tmp_path / "mp"), ("model.onnx", b"weights" * 1000), tag="run-1-model")
    image = make_image(str(tmp_path / "img"), files(2), subject=model_subject(model))
    c = client(registry.host)
    result = push(image.root, registry=registry.host, repository="models/m", tags=["run-1"],
                  modelpack_layout=str(tmp_path / "mp"), client=c, log=lambda _: None)
    # Pushed as built: every digest is the layout's.
    assert result.image_digest == image.manifest.descriptor.digest
    assert result.model_digest == model.descriptor.digest
    pushed_model, pushed_image = c.get_manifest("models/m", "run-1-model"), c.get_manifest("models/m", "run-1")
    assert pushed_model is not None and pushed_model.data == model.data
    assert pushed_image is not None and pushed_image.data == image.manifest.data
    assert json.loads(pushed_image.data)["subject"]["digest"] == model.descriptor.digest
    # Distribution 2.8 has no referrers API: the tag schema fallback names an index of the model's referrers.
    assert result.referrers == [{"subject": model.descriptor.digest, "referrers": [image.manifest.descriptor.digest],
                                 "api": False, "fallback_tag": "sha256-" + model.descriptor.digest.split(":")[1]}]
    fallback = result.referrers[0]["fallback_tag"]
    index = json.loads(c.get_manifest("models/m", fallback).data)
    assert index["mediaType"] == media_types.INDEX
    assert [(m["digest"], m["artifactType"]) for m in index["manifests"]] == [
        (image.manifest.descriptor.digest, media_types.CONFIG)]
    # Re-publishing leaves the fallback index as it was.
    again = push(image.root, registry=registry.host, repository="models/m", tags=["run-1"],
                 modelpack_layout=str(tmp_path / "mp"), client=client(registry.host), log=lambda _: None)
    assert again.blobs.uploaded == 0 and again.manifests_pushed == 0
    assert c.get_manifest("models/m", fallback).data == json.dumps(index, sort_keys=True,
                                                                    separators=(",", ":")).encode()


def test_layouts_of_different_builds_are_refused_before_any_upload(registry, tmp_path):
    from omi_plugin.oci.layout import LayoutError

    make_modelpack(str(tmp_path / "mp"), ("model.onnx", b"new weights"))
    old_model = make_modelpack(str(tmp_path / "old"), ("model.onnx", b"old weights"))
    image = make_image(str(tmp_path / "img"), files(1), subject=model_subject(old_model))
    with pytest.raises(LayoutError, match="is not in .*different builds"):
        push(image.root, registry=registry.host, repository="models/m", tags=["run-1"],
             modelpack_layout=str(tmp_path / "mp"), client=client(registry.host), log=lambda _: None)
    assert registry.tags("models/m") == []


def test_attestations_are_pushed_untagged_and_listed_as_referrers_of_their_subjects(registry, tmp_path):
    model = make_modelpack(str(tmp_path / "mp"), ("model.onnx", b"weights"), tag="run-1-model")
    image = make_image(str(tmp_path / "img"), files(1), subject=model_subject(model))
    image_descriptor = image.manifest.descriptor
    sbom, model_provenance = make_attestations(str(tmp_path / "att"), [image_descriptor, model.descriptor])
    c = client(registry.host)
    result = push(image.root, registry=registry.host, repository="models/m", tags=["run-1"],
                  modelpack_layout=str(tmp_path / "mp"), attestations_layout=str(tmp_path / "att"), client=c,
                  log=lambda _: None)
    assert result.attestation_digests == [sbom.descriptor.digest, model_provenance.descriptor.digest]
    assert sorted(registry.tags("models/m")) == sorted(
        ["run-1", "run-1-model", f"sha256-{image_descriptor.digest.split(':')[1]}",
         f"sha256-{model.descriptor.digest.split(':')[1]}"])
    for subject, expected in ((image_descriptor, [sbom.descriptor.digest]),
                              (model.descriptor, [image_descriptor.digest, model_provenance.descriptor.digest])):
        index = json.loads(c.get_manifest("models/m", f"sha256-{subject.digest.split(':')[1]}").data)
        assert [m["digest"] for m in index["manifests"]] == expected
        assert c.get_manifest("models/m", expected[-1]) is not None  # pushed by digest


def test_an_attestation_about_something_else_is_refused_before_any_upload(registry, tmp_path):
    from omi_plugin.oci.layout import LayoutError

    model = make_modelpack(str(tmp_path / "mp"), ("model.onnx", b"weights"))
    image = make_image(str(tmp_path / "img"), files(1), subject=model_subject(model))
    other = make_image(str(tmp_path / "other"), files(1, salt="x"))
    make_attestations(str(tmp_path / "att"), [other.manifest.descriptor])
    with pytest.raises(LayoutError, match="attestation manifest's subject .* is not in"):
        push(image.root, registry=registry.host, repository="models/m", tags=["run-1"],
             modelpack_layout=str(tmp_path / "mp"), attestations_layout=str(tmp_path / "att"),
             client=client(registry.host), log=lambda _: None)
    assert registry.tags("models/m") == []


def test_omlmd_flavour_is_readable_by_omlmd(registry, tmp_path):
    pytest.importorskip("omlmd")
    from omlmd.helpers import Helper
    from omlmd.provider import OMLMDRegistry

    model = make_modelpack(str(tmp_path / "mp"), ("model.onnx", b"onnx-bytes" * 500), tag="run-1-model")
    flavour = make_omlmd(str(tmp_path / "omlmd"), str(tmp_path / "mp"), ("model.onnx", b"onnx-bytes" * 500))
    image = make_image(str(tmp_path / "img"), files(1), subject=model_subject(model))
    result = push(image.root, registry=registry.host, repository="models/m", tags=["run-1"],
                  modelpack_layout=str(tmp_path / "mp"), omlmd_layout=str(tmp_path / "omlmd"),
                  client=client(registry.host), log=lambda _: None)
    assert result.omlmd_tags == ["run-1-omlmd"] and result.omlmd_digest == flavour.descriptor.digest
    out = tmp_path / "pulled"
    out.mkdir()
    helper = Helper(OMLMDRegistry(insecure=True))
    helper.pull(f"{registry.host}/models/m:run-1-omlmd", str(out))
    assert (out / "model.onnx").read_bytes() == b"onnx-bytes" * 500
    assert sorted(os.listdir(out)) == ["model.onnx", "model_metadata.omlmd.json", "model_metadata.omlmd.yaml"]
    config = json.loads(helper.get_config(f"{registry.host}/models/m:run-1-omlmd"))["config"]
    assert config["name"] == "m" and config["author"] == "a, b" and config["model_format_name"] == "onnx"
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load((out / "model_metadata.omlmd.yaml").read_text()) == config
    # The image and the flavour are both referrers of the model artifact.
    fallback = Registry(registry.host, load_docker_config=False).get_manifest(
        "models/m", "sha256-" + result.model_digest.split(":")[1])
    assert {m["digest"] for m in json.loads(fallback.data)["manifests"]} == {result.image_digest,
                                                                             result.omlmd_digest}


def test_chunked_upload_in_several_patches(registry, proxy_factory, tmp_path):
    proxy = proxy_factory(registry)
    image = make_image(str(tmp_path / "img"), [{"big.bin": os.urandom(300_000)}])
    c = client(proxy.host, chunk_size=64 * 1024)
    result = push(image.root, registry=proxy.host, repository="app", tags=["v1"], client=c, log=lambda _: None)
    assert result.image_digest == image.manifest.descriptor.digest
    assert len(proxy.methods("PATCH")) >= 5
    assert registry.tags("app") == ["v1"]


def test_monolithic_fallback_when_patch_is_rejected(registry, proxy_factory, tmp_path):
    proxy = proxy_factory(registry)
    proxy.rule = lambda method, path: 405 if method == "PATCH" else None
    image = make_image(str(tmp_path / "img"), [{"big.bin": os.urandom(200_000)}, {"b": os.urandom(150_000)}])
    c = client(proxy.host, chunk_size=64 * 1024)
    result = push(image.root, registry=proxy.host, repository="app", tags=["v1"], client=c, log=lambda _: None)
    assert result.blobs.uploaded == 3
    assert len(proxy.methods("PATCH")) == 1  # rejected once, then every blob goes in a single PUT
    assert c.chunked is False
    assert registry.tags("app") == ["v1"]


def test_cross_repository_mount(registry, tmp_path):
    base = make_image(str(tmp_path / "base"), files(2))
    push(base.root, registry=registry.host, repository="base", tags=["b1"], client=client(registry.host),
         log=lambda _: None)
    layers = files(2) + [{"app/main.py": b"print('hi')\n"}]
    app = make_image(str(tmp_path / "app"), layers)
    result = push(app.root, registry=registry.host, repository="app", tags=["v1"], mount_from=["base"],
                  client=client(registry.host), log=lambda _: None)
    assert result.blobs.mounted == 2
    assert result.blobs.uploaded == 2  # the new layer and the config
    assert registry.tags("app") == ["v1"]


def test_expect_digest_mismatch_is_refused_before_any_upload(registry, tmp_path):
    from omi_plugin.oci.layout import LayoutError

    image = make_image(str(tmp_path / "img"), files(1))
    with pytest.raises(LayoutError, match="not the expected"):
        push(image.root, registry=registry.host, repository="app", tags=["v1"], expect_digest="sha256:" + "0" * 64,
             client=client(registry.host), log=lambda _: None)
    assert registry.tags("app") == []


@pytest.mark.skipif(not os.path.isdir(os.path.join(DIGITS, "digits.oci")), reason="dist/examples.digits not built")
def test_push_packaged_digits_example(registry, tmp_path):
    work = tmp_path / "digits"
    shutil.copytree(DIGITS, work)  # never touch dist/
    with open(work / "digits.omi.json") as f:
        record = json.load(f)
    tag = record["tags"][0]
    c = client(registry.host)
    layouts = dict(modelpack_layout=str(work / "digits.modelpack.oci"),
                   omlmd_layout=str(work / "digits.omlmd.oci") if record.get("omlmd_layout") else None,
                   attestations_layout=str(work / "digits.attestations.oci") if record.get("attestations") else None)
    first = push(str(work / "digits.oci"), registry=registry.host, repository=record["repository"], tags=[tag],
                 expect_digest=record["image_digest"], expect_model_digest=record["model_digest"], client=c,
                 log=lambda _: None, **layouts)
    assert first.image_digest == record["image_digest"] and first.model_digest == record["model_digest"]
    # The model blobs are the image's own layers: the artifact adds only its config (and the omlmd files).
    image_bytes = sum(layer["size"] for layer in record["layers"])
    assert first.blobs.uploaded_bytes < image_bytes * (2 if record.get("omlmd_layout") else 1) + 64 * 1024
    again = push(str(work / "digits.oci"), registry=registry.host, repository=record["repository"], tags=[tag],
                 client=c, log=lambda _: None, **layouts)
    assert again.blobs.uploaded_bytes == 0 and again.manifests_pushed == 0
    flavour = [f"{tag}-omlmd"] if record.get("omlmd_layout") else []
    attested = ["sha256-" + record["image_digest"].split(":")[1]] if record.get("attestations") else []
    assert sorted(registry.tags(record["repository"])) == sorted(
        [tag, f"{tag}-model", *flavour, *attested, "sha256-" + record["model_digest"].split(":")[1]])
    print(f"digits: first push uploaded {first.blobs.uploaded_bytes} bytes, re-push {again.blobs.uploaded_bytes}")


def test_a_raw_model_layer_left_out_of_the_artifact_copy_is_sent_from_the_image_layer_holding_it(registry, tmp_path):
    weights = os.urandom(300_000)
    raw = Descriptor(media_types.MODELPACK_WEIGHT_RAW, sha256_digest(weights), len(weights),
                     {media_types.ANNOTATION_MODEL_FILEPATH: "model.bin"})
    # The same bytes at a second path of the artifact, which the image does not carry: one blob, sent once.
    twin = Descriptor(raw.media_type, raw.digest, raw.size, {media_types.ANNOTATION_MODEL_FILEPATH: "copy/model.bin"})
    config = Blob.of_json(media_types.MODELPACK_CONFIG, {"descriptor": {"name": "m"}, "config": {},
                                                        "modelfs": {"type": "layers", "diffIds": [raw.digest]}})
    manifest = build_manifest(config.descriptor, [twin, raw], artifact_type=media_types.MODELPACK_ARTIFACT)
    mp = str(tmp_path / "mp")
    write_layout(mp, [(manifest.descriptor, ["run-1-model"])])
    for blob in (config, manifest):  # the raw layer's own blob is not in the copy
        with open(os.path.join(mp, "blobs", "sha256", blob.descriptor.digest.split(":")[1]), "wb") as f:
            f.write(blob.data)
    image = make_image(str(tmp_path / "img"), [{"app/x.py": b"print()"}, {"models/m/model.bin": weights}],
                       subject=model_subject(manifest))
    c = client(registry.host)
    result = push(image.root, registry=registry.host, repository="models/m", tags=["run-1"], modelpack_layout=mp,
                  client=c, log=lambda _: None)
    assert result.model_digest == manifest.descriptor.digest
    sent = c.open_blob("models/m", raw.digest)  # the registry checked the digest of what it was sent
    assert b"".join(sent.chunks()) == weights
    sent.close()
    assert result.blobs.uploaded == 5  # the image's config and two layers, the artifact's config, the weights once
    # Without an image layer holding the file, the copy is incomplete: one line, before any upload.
    other = make_image(str(tmp_path / "other"), [{"models/m/other.bin": weights}], subject=model_subject(manifest))
    with pytest.raises(LayoutError, match=f"missing blob {raw.digest}"):
        push(other.root, registry=registry.host, repository="models/n", tags=["run-1"], modelpack_layout=mp,
             client=client(registry.host), log=lambda _: None)
    assert client(registry.host).blob_size("models/n", other.layers[0].descriptor.digest) is None
