import pytest

from omi_plugin.metadata.model_yaml import ModelYamlError, load_model_yaml

GOOD = """
name: digits
version: "1.0"
run_id: abc123
format: sklearn
files: [model.joblib]
inputs: [{name: x, datatype: FP32, shape: [-1, 64]}]
outputs: [{name: y, datatype: INT64, shape: [-1]}]
"""


def _error(text: str, **kwargs) -> str:
    with pytest.raises(ModelYamlError) as info:
        load_model_yaml(text, "ex/model.yaml", **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_file_gets_defaults() -> None:
    metadata = load_model_yaml(GOOD, "ex/model.yaml")
    assert metadata.run_id == "abc123"
    assert metadata.interfaces == ["kfserving.v1", "kfserving.v2", "modzy.v2"]
    assert metadata.model_dir == "ex"
    assert metadata.record_json() == load_model_yaml(GOOD, "ex/model.yaml").record_json()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: [", "ex/model.yaml: line 1, column 8: malformed YAML"),
        ("- a\n- b\n", "ex/model.yaml: (top level): expected a mapping"),
        (GOOD.replace("format: sklearn\n", ""), "ex/model.yaml: format: is required (add `format:`"),
        (GOOD.replace("run_id: abc123", "run_id: latest"), "ex/model.yaml: run_id: 'latest' is not allowed"),
        (GOOD.replace("run_id: abc123", "run_id: 'bad tag!'"), "ex/model.yaml: run_id: 'bad tag!' is not a valid OCI tag"),
        (GOOD.replace("run_id: abc123\n", ""), "ex/model.yaml: run_id: is required"),
        (GOOD + "interfaces: [grpc.v9]\n", "ex/model.yaml: interfaces[0]: 'grpc.v9' is not allowed"),
        (GOOD + "interfaces: [modzy.v1]\n", "ex/model.yaml: interfaces[0]: 'modzy.v1' is an OMI interface omi_runtime does not serve"),
        (GOOD + "colour: red\n", "ex/model.yaml: colour: unknown field"),
        (GOOD.replace("FP32", "FP33"), "ex/model.yaml: inputs[0].datatype: 'FP33' is not allowed"),
        (GOOD.replace("[model.joblib]", "[../secret]"), "ex/model.yaml: files[0]: '../secret' points outside"),
        (GOOD.replace("format: sklearn", "format: custom"), "ex/model.yaml: handler: is required when format is custom"),
        (GOOD.replace('version: "1.0"', "version: 1.0"), "ex/model.yaml: version: expected string, got float"),
        (GOOD.replace("outputs: [{name: y, datatype: INT64, shape: [-1]}]",
                      "outputs: [{name: y, datatype: INT64, shape: [-1]}, {name: y, datatype: FP32, shape: [-1]}]"),
         "ex/model.yaml: outputs[1].name: 'y' is declared twice"),
        (GOOD + "samples: [{name: s, inputs: {x: [[0]]}, outputs: {z: [1]}}]\n",
         "ex/model.yaml: samples[0].outputs.z: is not a declared output (use one of: y)"),
    ],
)
def test_errors_name_file_field_and_fix(text: str, expected: str) -> None:
    assert _error(text).startswith(expected)


def test_run_id_from_mlmodel() -> None:
    text = GOOD.replace("run_id: abc123", "run_id_from: MLmodel")
    assert load_model_yaml(text, "ex/model.yaml", mlmodel_text="run_id: 0f9e8d\nflavors: {}\n").run_id == "0f9e8d"
    assert "run_id_from: MLmodel was not found" in _error(text)
    assert "ex/MLmodel: run_id: missing" in _error(text, mlmodel_text="flavors: {}\n")


def test_a_files_entry_may_name_a_directory() -> None:
    from omi_plugin.metadata.model_yaml import expand_files

    available = ["mlflow/MLmodel", "mlflow/model.pkl", "mlflow/env/python_env.yaml", "model.joblib", "mlflowx/y"]
    mlflow = ("mlflow/MLmodel", "mlflow/env/python_env.yaml", "mlflow/model.pkl")
    expanded = expand_files(["mlflow", "model.joblib", "mlflow/MLmodel", "./model.joblib", "missing/", 7], available)
    assert [(e.index, e.entry, e.names, e.new, e.is_file) for e in expanded] == [
        (0, "mlflow", mlflow, mlflow, False),
        (1, "model.joblib", ("model.joblib",), ("model.joblib",), True),
        (2, "mlflow/MLmodel", ("mlflow/MLmodel",), (), True),  # named before: present, but no second layer
        (3, "./model.joblib", ("model.joblib",), (), True),
        (4, "missing/", (), (), False),
    ]
    assert expand_files(["mlflow/"], available)[0].names[0] == "mlflow/MLmodel"
