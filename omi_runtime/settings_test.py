"""Unit tests of environment settings and model-directory selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omi_runtime.errors import ConfigError
from omi_runtime.metadata import find_model_dir, load_metadata, parse_metadata
from omi_runtime.settings import check_declared, settings_from_env


def test_defaults_and_aliases():
    s = settings_from_env({"INTERFACE": "KServe", "PROTOCOL": "v2"})
    assert (s.interface, s.protocol, s.port, s.host, s.models_dir) == ("kfserving", "v2", 8080, "0.0.0.0",
                                                                       Path("/models"))
    assert s.max_message_bytes == 64 * 1024 * 1024 and s.model_name is None
    m = settings_from_env({"INTERFACE": "modzy", "PROTOCOL": "v2"})
    assert m.port == 45000
    assert settings_from_env({"INTERFACE": "modzy", "PROTOCOL": "v2", "PSC_MODEL_PORT": "9000"}).port == 9000
    assert settings_from_env({"INTERFACE": "modzy", "PROTOCOL": "v2", "PSC_MODEL_PORT": "9000",
                              "HTTP_PORT": "7000"}).port == 7000
    # PSC_MODEL_PORT is Modzy's: KServe ignores it.
    assert settings_from_env({"INTERFACE": "kfserving", "PROTOCOL": "v1", "PSC_MODEL_PORT": "9000"}).port == 8080


@pytest.mark.parametrize("env, needle", [
    ({}, "INTERFACE is not set"),
    ({"INTERFACE": "kfserving"}, "PROTOCOL is not set"),
    ({"INTERFACE": "modzy", "PROTOCOL": "v1"}, "not implemented"),
    ({"INTERFACE": "kfserving", "PROTOCOL": "v2", "HTTP_PORT": "70000"}, "HTTP_PORT"),
    ({"INTERFACE": "kfserving", "PROTOCOL": "v2", "OMI_MAX_MESSAGE_BYTES": "-1"}, "OMI_MAX_MESSAGE_BYTES"),
])
def test_bad_env(env, needle):
    with pytest.raises(ConfigError, match=needle):
        settings_from_env(env)


def test_check_declared():
    s = settings_from_env({"INTERFACE": "kfserving", "PROTOCOL": "v1"})
    check_declared(s, ("kfserving.v1",), "m")
    with pytest.raises(ConfigError, match="kfserving.v1 is not declared by model m"):
        check_declared(s, ("modzy.v2",), "m")


def _model(root: Path, name: str, **extra) -> None:
    (root / name).mkdir(parents=True)
    doc = {"name": name, "version": "1", "format": "sklearn", "files": ["m.joblib"],
           "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
           "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1]}], **extra}
    (root / name / "omi-model.json").write_text(json.dumps(doc))


def test_find_model_dir(tmp_path):
    with pytest.raises(ConfigError, match="holds no model"):
        find_model_dir(tmp_path, None)
    _model(tmp_path, "a")
    assert find_model_dir(tmp_path, None) == tmp_path / "a"
    _model(tmp_path, "b")
    with pytest.raises(ConfigError, match="MODEL_NAME is unset"):
        find_model_dir(tmp_path, None)
    assert find_model_dir(tmp_path, "b") == tmp_path / "b"
    with pytest.raises(ConfigError, match="MODEL_NAME=c is not bundled: use one of a, b"):
        find_model_dir(tmp_path, "c")


def test_metadata_defaults_and_errors(tmp_path):
    _model(tmp_path, "a")
    meta = load_metadata(tmp_path / "a")
    assert meta.interfaces == ("kfserving.v1", "kfserving.v2", "modzy.v2")
    assert meta.input_filename() == "input" and meta.output_filename() == "results.json"
    (tmp_path / "a" / "omi-model.json").write_text("{")
    with pytest.raises(ConfigError, match="cannot read JSON"):
        load_metadata(tmp_path / "a")
    with pytest.raises(ConfigError, match=r"inputs\[0\].datatype"):
        parse_metadata({"name": "a", "version": "1", "format": "onnx", "files": [],
                        "inputs": [{"name": "x", "datatype": "F32", "shape": [1]}],
                        "outputs": [{"name": "y", "datatype": "FP32", "shape": [1]}]})
