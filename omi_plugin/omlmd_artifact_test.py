"""The omlmd flavour: layers, subject, reproducibility, and agreement with omlmd's own model (when installed)."""

import json

import pytest

from omi_plugin.oci import media_types
from omi_plugin.oci.descriptor import Descriptor
from omi_plugin.omlmd_artifact import (
    CONFIG,
    METADATA_JSON,
    METADATA_YAML,
    MLMODEL,
    ModelFileBlob,
    OmlmdError,
    build,
    manifest_annotations,
    metadata_from_modelpack,
    metadata_json,
    metadata_yaml,
)

MODELPACK_CONFIG = {"descriptor": {"name": "m", "version": "2", "authors": ["x"], "licenses": ["MIT"]},
                    "config": {"format": "onnx"}, "modelfs": {"type": "layers", "diffIds": []}}
SUBJECT = Descriptor(media_types.MANIFEST, "sha256:" + "a" * 64, 123, artifact_type=media_types.MODELPACK_ARTIFACT)
FILE = ModelFileBlob("weights/model.onnx", "sha256:" + "b" * 64, 50)


def test_layers_config_subject_and_refs():
    artifact = build(MODELPACK_CONFIG, [FILE], SUBJECT, ["run-1-omlmd"])
    manifest = json.loads(artifact.manifest.data)
    assert [l["mediaType"] for l in manifest["layers"]] == [MLMODEL, CONFIG, CONFIG]
    assert [l["annotations"][media_types.ANNOTATION_TITLE] for l in manifest["layers"]] == [
        "model.onnx", METADATA_JSON, METADATA_YAML]
    assert manifest["layers"][0]["digest"] == FILE.digest and manifest["layers"][0]["size"] == FILE.size
    assert manifest["config"]["digest"] == manifest["layers"][1]["digest"]
    assert manifest["subject"]["digest"] == SUBJECT.digest
    assert [b.descriptor.digest for b in artifact.metadata_blobs] == [l["digest"] for l in manifest["layers"][1:]]
    refs = [m["annotations"][media_types.ANNOTATION_REF_NAME] for m in json.loads(artifact.index_json)["manifests"]]
    assert refs == ["run-1-omlmd"]
    assert build(MODELPACK_CONFIG, [FILE], SUBJECT, ["x"]).manifest == artifact.manifest


@pytest.mark.parametrize("files, clash", [
    ([FILE, ModelFileBlob("other/model.onnx", FILE.digest, 1)], "model.onnx"),
    ([ModelFileBlob(METADATA_JSON, FILE.digest, 1)], METADATA_JSON),
])
def test_file_names_that_clash_are_refused_in_one_line(files, clash):
    with pytest.raises(OmlmdError, match=f"{clash} would clash"):
        build(MODELPACK_CONFIG, files, SUBJECT, [])


def test_metadata_matches_omlmd_model():
    model_metadata = pytest.importorskip("omlmd.model_metadata")
    yaml = pytest.importorskip("yaml")
    metadata = metadata_from_modelpack(MODELPACK_CONFIG)
    theirs = model_metadata.ModelMetadata.from_json(metadata_json(metadata).decode())
    assert theirs.to_annotations_dict() == manifest_annotations(metadata)
    assert yaml.safe_load(metadata_yaml(metadata)) == theirs.to_dict()
    assert metadata_json(metadata).decode() == theirs.to_json()
