"""The omlmd flavour: metadata, annotations and YAML agree with omlmd's own model (when it is installed)."""

import json

import pytest

from omi_plugin.oci import media_types
from omi_plugin.registry import omlmd
from omi_testutil.registry import make_modelpack

CONFIG = {"descriptor": {"name": "m", "version": "2", "authors": ["x"], "licenses": ["MIT"]},
          "config": {"format": "onnx"}, "modelfs": {"type": "layers", "diffIds": []}}


def test_build_from_modelpack_layout(tmp_path):
    make_modelpack(str(tmp_path / "mp"), ("model.onnx", b"bytes" * 10))
    staging = tmp_path / "staging"
    staging.mkdir()
    first = omlmd.build(str(tmp_path / "mp"), str(staging))
    manifest = json.loads(first.manifest.data)
    assert [l["mediaType"] for l in manifest["layers"]] == [omlmd.MLMODEL, omlmd.CONFIG, omlmd.CONFIG]
    assert [l["annotations"][media_types.ANNOTATION_TITLE] for l in manifest["layers"]] == [
        "model.onnx", omlmd.METADATA_JSON, omlmd.METADATA_YAML]
    assert manifest["config"]["digest"] == manifest["layers"][1]["digest"]
    assert open(first.blobs[0].path, "rb").read() == b"bytes" * 10
    # Reproducible: building again gives the same manifest bytes.
    assert omlmd.build(str(tmp_path / "mp"), str(staging)).manifest.data == first.manifest.data


def test_metadata_matches_omlmd_model():
    model_metadata = pytest.importorskip("omlmd.model_metadata")
    yaml = pytest.importorskip("yaml")
    metadata = omlmd.metadata_from_modelpack(CONFIG)
    theirs = model_metadata.ModelMetadata.from_json(omlmd.metadata_json(metadata).decode())
    assert theirs.to_annotations_dict() == omlmd.manifest_annotations(metadata)
    assert yaml.safe_load(omlmd.metadata_yaml(metadata)) == theirs.to_dict()
    assert omlmd.metadata_json(metadata).decode() == theirs.to_json()
