import json

import pytest

from omi_contract import image as contract
from omi_plugin.metadata.model_yaml import load_model_yaml
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.descriptor import Descriptor, sha256_digest
from omi_plugin.oci.image import Layer, RuntimeConfig
from omi_plugin.oci.platforms import AMD64, ARM64
from omi_plugin.omi_image import BaseImageConfig, assemble, assemble_index

METADATA = load_model_yaml(
    "name: digits\nversion: '1'\nrun_id: run-7\nformat: sklearn\nfiles: [model.joblib]\n"
    "interfaces: [kfserving.v2, modzy.v2]\nlicenses: [MIT]\n",
    "ex/model.yaml",
)
BASE = BaseImageConfig("base", sha256_digest(b"base-manifest"), RuntimeConfig(env=(("PATH", "/usr/bin"),)),
                       "/usr/bin/python3.11")


def _layer(name: str) -> Layer:
    digest = sha256_digest(name.encode())
    return Layer(Descriptor(mt.LAYER_TAR, digest, len(name)), digest, name)


def _assemble(spec: str = "1.0", extra_tags=()):
    return assemble(METADATA, BASE, [_layer("base")], runtime_layers=[_layer("deps"), _layer("app")],
                    model_layers=[("model.joblib", _layer("model"))], record_layer=_layer("record"),
                    http_port="9000", spec_version=spec, extra_tags=extra_tags)


def test_image_carries_omi_contract() -> None:
    image = _assemble(extra_tags=["v1", "run-7"])
    manifest = json.loads(image.manifest.data)
    config = json.loads(image.config.data)
    assert manifest["annotations"][contract.LABEL_INTERFACES] == '["kfserving.v2","modzy.v2"]'
    assert config["config"]["Labels"][contract.LABEL_INTERFACES] == '["kfserving.v2","modzy.v2"]'
    env = dict(e.split("=", 1) for e in config["config"]["Env"])
    assert env["INTERFACE"] == "kfserving" and env["PROTOCOL"] == "v2" and env["HTTP_PORT"] == "9000"
    assert env["MODEL_NAME"] == "digits" and env["PATH"] == "/usr/bin"
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["ExposedPorts"] == {"9000/tcp": {}}
    assert manifest["annotations"][mt.ANNOTATION_BASE_DIGEST] == BASE.manifest_digest
    assert [l["digest"] for l in manifest["layers"]] == [_layer(n).descriptor.digest
                                                         for n in ("base", "deps", "model", "record", "app")]
    assert image.tags == ("run-7", "v1")


def test_tags_do_not_change_digests() -> None:
    assert _assemble().manifest.descriptor == _assemble(extra_tags=["other"]).manifest.descriptor


def test_modelpack_shares_model_blobs() -> None:
    image = _assemble()
    manifest = json.loads(image.modelpack_manifest.data)
    assert manifest["artifactType"] == mt.MODELPACK_ARTIFACT
    assert manifest["config"]["mediaType"] == mt.MODELPACK_CONFIG
    assert [l["digest"] for l in manifest["layers"]] == [_layer("model").descriptor.digest,
                                                         _layer("record").descriptor.digest]
    assert manifest["layers"][0]["annotations"][mt.ANNOTATION_MODEL_FILEPATH] == "models/digits/model.joblib"
    config = json.loads(image.modelpack_config.data)
    assert config["modelfs"]["diffIds"] == [l["digest"] for l in manifest["layers"]]
    assert config["descriptor"]["revision"] == "run-7"


def test_omi_1_1_labels() -> None:
    labels = json.loads(_assemble("1.1").config.data)["config"]["Labels"]
    assert labels[contract.LABEL_INTERFACES] == '["kfserving","modzy"]'
    assert labels[contract.LABEL_PROTOCOLS] == '[["v2"],["v2"]]'
    assert labels[contract.LABEL_PORT] == "9000" and labels[contract.LABEL_MODEL_NAME] == "digits"


def test_the_run_id_has_its_own_annotation_and_revision_is_only_the_stamped_commit() -> None:
    image = _assemble()
    for manifest in (json.loads(image.manifest.data), json.loads(image.modelpack_manifest.data)):
        assert manifest["annotations"][contract.ANNOTATION_RUN_ID] == "run-7"
        assert mt.ANNOTATION_REVISION not in manifest["annotations"]
    stamped = assemble(METADATA, BASE, [_layer("base")], runtime_layers=[_layer("deps"), _layer("app")],
                       model_layers=[("model.joblib", _layer("model"))], record_layer=_layer("record"),
                       http_port="9000", spec_version="1.0", extra_tags=(), vcs_revision="0123abc")
    assert json.loads(stamped.manifest.data)["annotations"][mt.ANNOTATION_REVISION] == "0123abc"
    assert stamped.manifest.descriptor.digest != image.manifest.descriptor.digest
    assert stamped.modelpack_manifest.descriptor.digest == image.modelpack_manifest.descriptor.digest


def test_the_image_names_its_model_artifact_as_subject_and_the_artifact_names_nothing() -> None:
    image = _assemble(extra_tags=["v1"])
    subject = json.loads(image.manifest.data)["subject"]
    assert subject == {"mediaType": mt.MANIFEST, "digest": image.modelpack_manifest.descriptor.digest,
                       "size": len(image.modelpack_manifest.data), "artifactType": mt.MODELPACK_ARTIFACT}
    assert "subject" not in json.loads(image.modelpack_manifest.data)
    refs = [m["annotations"][mt.ANNOTATION_REF_NAME] for m in json.loads(image.modelpack_index_json)["manifests"]]
    assert refs == ["run-7-model", "v1-model"]


def test_an_index_lists_each_platforms_image_under_the_run_id() -> None:
    arm64_base = BaseImageConfig("base", sha256_digest(b"arm64-base-manifest"), BASE.runtime, BASE.python,
                                 platform=ARM64)
    arm64 = assemble(METADATA, arm64_base, [_layer("arm64 base")], runtime_layers=[_layer("arm64 deps"), _layer("app")],
                     model_layers=[("model.joblib", _layer("model"))], record_layer=_layer("record"),
                     http_port="9000", spec_version="1.0", extra_tags=["v1"])
    amd64 = _assemble(extra_tags=["v1"])
    index = assemble_index([(AMD64, amd64), (ARM64, arm64)])
    value = json.loads(index.index.data)
    assert value["mediaType"] == mt.INDEX
    assert [(m["digest"], m["platform"]) for m in value["manifests"]] == [
        (amd64.manifest.descriptor.digest, {"architecture": "amd64", "os": "linux"}),
        (arm64.manifest.descriptor.digest, {"architecture": "arm64", "os": "linux", "variant": "v8"})]
    assert value["subject"]["digest"] == amd64.modelpack_manifest.descriptor.digest
    # The annotations the images share; the base digests differ and stay with each image.
    assert value["annotations"][contract.ANNOTATION_RUN_ID] == "run-7"
    assert mt.ANNOTATION_BASE_DIGEST not in value["annotations"]
    layout = json.loads(index.index_json)
    assert [(m["digest"], m["mediaType"], m["annotations"][mt.ANNOTATION_REF_NAME]) for m in layout["manifests"]] == [
        (index.index.descriptor.digest, mt.INDEX, "run-7"), (index.index.descriptor.digest, mt.INDEX, "v1")]
    with pytest.raises(ValueError, match="another model artifact or tags"):
        assemble_index([(AMD64, amd64), (ARM64, _assemble())])
