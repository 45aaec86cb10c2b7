"""MLflow models at package time: the signature against model.yaml, the recorded requirements against the image."""

from __future__ import annotations

import json
from typing import Any, Dict, List

from omi_contract.record import ModelRecord
from omi_plugin.metadata import mlflow_model

ENV = mlflow_model.image_environment("3.11", "x86_64")
IMAGE = {"mlflow_skinny": "2.17.2", "scikit_learn": "1.5.2", "pandas": "3.1.1", "cloudpickle": "3.1.3"}


def _mlmodel(inputs: List[Dict[str, Any]], outputs: List[Dict[str, Any]]) -> bytes:
    signature = {"inputs": json.dumps(inputs), "outputs": json.dumps(outputs), "params": None}
    return json.dumps({"run_id": "r1", "flavors": {}, "signature": signature}).encode()


def _tensor(dtype: str, shape: List[int], name: str = "") -> Dict[str, Any]:
    return {"type": "tensor", "tensor-spec": {"dtype": dtype, "shape": shape}, **({"name": name} if name else {})}


def _record(inputs: List[Dict[str, Any]], outputs: List[Dict[str, Any]]) -> ModelRecord:
    return ModelRecord.from_json({"name": "m", "version": "1", "format": "mlflow", "files": ["model"],
                                  "inputs": inputs, "outputs": outputs}, "m/model.yaml")


def _problems(record: ModelRecord, mlmodel: bytes) -> List[str]:
    return [str(p) for p in mlflow_model.signature_problems(record, "m/model.yaml", mlmodel, "m/model/MLmodel")]


X = {"name": "input-0", "datatype": "FP32", "shape": [-1, 64]}
Y = {"name": "predict", "datatype": "INT64", "shape": [-1]}


def test_an_agreeing_tensor_signature_has_no_problems() -> None:
    assert _problems(_record([X], [Y]), _mlmodel([_tensor("float32", [-1, 64])], [_tensor("int64", [-1])])) == []


def test_a_model_logged_without_signature_is_not_judged() -> None:
    assert _problems(_record([X], [Y]), json.dumps({"run_id": "r1"}).encode()) == []


def test_each_disagreement_names_both_files() -> None:
    mlmodel = _mlmodel([_tensor("float64", [-1, 32])], [_tensor("int64", [-1]), _tensor("float32", [-1, 10])])
    assert _problems(_record([X], [Y]), mlmodel) == [
        "m/model.yaml: inputs[0].datatype: FP32 differs from the MLflow signature's tensor float64 [-1, 32] = FP64 "
        "(declare what the MLflow signature in m/model/MLmodel says, or log the model again with the signature you "
        "want)",
        "m/model.yaml: inputs[0].shape: [-1, 64] differs from the MLflow signature's tensor float64 [-1, 32] "
        "(declare what the MLflow signature in m/model/MLmodel says, or log the model again with the signature you "
        "want)",
        "m/model.yaml: outputs: 1 declared, the MLflow signature in m/model/MLmodel has 2 (tensor int64 [-1], tensor "
        "float32 [-1, 10]) (declare what the MLflow signature in m/model/MLmodel says, or log the model again with "
        "the signature you want)",
    ]


def test_columns_map_by_name_or_take_one_matrix() -> None:
    columns = [{"type": "double", "name": n} for n in ("a", "b", "c")]
    out = [_tensor("int64", [-1])]
    by_name = [{"name": n, "datatype": "FP64", "shape": [-1]} for n in ("c", "a", "b")]
    assert _problems(_record(by_name, [Y]), _mlmodel(columns, out)) == []
    matrix = {"name": "features", "datatype": "FP64", "shape": [-1, 3]}
    assert _problems(_record([matrix], [Y]), _mlmodel(columns, out)) == []
    narrow = {"name": "features", "datatype": "FP64", "shape": [-1, 2]}
    assert _problems(_record([narrow], [Y]), _mlmodel(columns, out)) == [
        "m/model.yaml: inputs[0].shape: [-1, 2] does not hold the MLflow signature's 3 columns (use [-1, 3])"]
    wrong = [{"name": n, "datatype": "FP32", "shape": [-1]} for n in ("a", "b", "c")]
    assert _problems(_record(wrong, [Y]), _mlmodel(columns, out))[0].startswith(
        "m/model.yaml: inputs[0].datatype: FP32 differs from the MLflow signature's column 'a' of type double = FP64")


def test_a_column_type_omi_cannot_carry_is_refused() -> None:
    columns = [{"type": "datetime", "name": "when"}]
    when = {"name": "when", "datatype": "BYTES", "shape": [-1]}
    assert _problems(_record([when], [Y]), _mlmodel(columns, [_tensor("int64", [-1])])) == [
        "m/model.yaml: inputs[0]: the MLflow signature's column 'when' of type datetime has no OMI datatype (log the "
        "model with numeric, boolean or string fields)"]


def _requirements(text: str) -> List[str]:
    return [str(p) for p in mlflow_model.requirement_problems(text.encode(), "m/model/requirements.txt", IMAGE, ENV)]


def test_requirements_the_image_meets() -> None:
    # `mlflow` is met by mlflow-skinny; names compare canonically; options and comments are skipped.
    assert _requirements("# logged\n-r extra.txt\nmlflow==2.17.2\ncloudpickle==3.1.3\nScikit_Learn>=1.5\n"
                         "pandas  # any\npywin32; sys_platform == 'win32'\n") == []


def test_a_missing_or_other_version_is_one_line_each() -> None:
    assert _requirements("scikit-learn==1.4.0\nxgboost==2.1.0\nnot a requirement!\n") == [
        "m/model/requirements.txt: line 1: the MLflow model requires scikit-learn==1.4.0, the lockfile gives "
        "scikit-learn 1.5.2 (log the model again with scikit-learn 1.5.2 installed, or change the lockfile's pin)",
        "m/model/requirements.txt: line 2: the MLflow model requires xgboost==2.1.0, which is not among the image's "
        "Python packages (add `xgboost` to the omi_model's `dependencies` (from the lockfile))",
        "m/model/requirements.txt: line 3: 'not a requirement!' is not a requirement (Expected end or semicolon "
        "(after name and no valid version specifier)\n    not a requirement!\n        ^) (write it as `name==version`)",
    ]


def test_the_mlmodel_directory_is_the_one_holding_mlmodel() -> None:
    assert mlflow_model.mlmodel_directory(["model/MLmodel", "model/model.pkl"]) == "model"
    assert mlflow_model.mlmodel_directory(["MLmodel"]) == ""
    assert str(mlflow_model.mlmodel_problem(["model/model.pkl"], "m/model.yaml")).startswith(
        "m/model.yaml: files: format mlflow: no MLmodel file among the model files (list the MLflow model directory")
    assert mlflow_model.mlmodel_problem(["model/MLmodel"], "m/model.yaml") is None
    two = mlflow_model.mlmodel_problem(["a/MLmodel", "b/MLmodel"], "m/model.yaml")
    assert two is not None and "2 MLmodel files" in str(two)


def test_a_model_without_the_python_function_flavour_is_refused() -> None:
    mlmodel = json.dumps({"run_id": "r1", "flavors": {"sklearn": {"pickled_model": "model.pkl"}}}).encode()
    problem = mlflow_model.flavour_problem(mlmodel, "m/model/MLmodel")
    assert str(problem) == (
        "m/model/MLmodel: flavors: no python_function flavour (found: sklearn): format mlflow serves models through "
        "mlflow.pyfunc (log the model with a flavour that adds python_function (mlflow.sklearn.log_model, "
        "mlflow.pyfunc.log_model, ...), or serve it with a custom handler)")
    assert "found: none" in str(mlflow_model.flavour_problem(b"run_id: r1\n", "MLmodel"))
    with_pyfunc = json.dumps({"flavors": {"python_function": {"loader_module": "mlflow.sklearn"}}}).encode()
    assert mlflow_model.flavour_problem(with_pyfunc, "MLmodel") is None
