"""The MLflow package-time check with real Pants (RuleRunner): an agreeing model passes, a disagreeing one is one
line naming target, file and fix; and the image's distributions are read off the packed PEX."""

from __future__ import annotations

import json
from typing import Dict

import pytest
from pants.engine.addresses import Address, Addresses
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.metadata.model_yaml import load_model_yaml
from omi_plugin.util_rules import mlflow_model
from omi_plugin.util_rules.image_layers import wheel_distributions
from omi_plugin.util_rules.mlflow_model import MlflowModelChecked, MlflowModelCheckRequest
from omi_plugin.util_rules.model_inputs import ModelFile, ModelInputs

MODEL_YAML = """name: m
version: "1"
run_id: r1
format: mlflow
files: [model]
inputs: [{name: input-0, datatype: FP32, shape: [-1, 4]}]
outputs: [{name: predict, datatype: INT64, shape: [-1]}]
"""
SIGNATURE = {"inputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]),
             "outputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}])}
DISTRIBUTIONS = (("mlflow_skinny", "2.17.2"), ("scikit_learn", "1.5.2"))


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(rules=[*mlflow_model.rules(), QueryRule(MlflowModelChecked, [MlflowModelCheckRequest])])


def _request(runner: RuleRunner, files: Dict[str, str], yaml: str = MODEL_YAML) -> MlflowModelCheckRequest:
    model_files = []
    for rel, content in sorted(files.items()):
        path = f"m/{rel}"
        model_files.append(ModelFile(rel, runner.make_snapshot({path: content}).digest, path))
    metadata = load_model_yaml(yaml, "m/model.yaml")
    inputs = ModelInputs(Address("m", target_name="m"), metadata, tuple(model_files), Addresses())
    return MlflowModelCheckRequest(inputs, DISTRIBUTIONS, "usr/bin/python3.11")


def _error(runner: RuleRunner, request: MlflowModelCheckRequest) -> str:
    with pytest.raises(ExecutionError) as info:
        runner.request(MlflowModelChecked, [request])
    return str(info.value)


PYFUNC = {"python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.pkl"}}
MLMODEL = json.dumps({"run_id": "r1", "flavors": PYFUNC, "signature": SIGNATURE})


def test_an_agreeing_model_passes(rule_runner: RuleRunner) -> None:
    request = _request(rule_runner, {"model/MLmodel": MLMODEL, "model/requirements.txt": "mlflow==2.17.2\n"
                                     "scikit-learn==1.5.2\n", "model/model.pkl": "x"})
    assert rule_runner.request(MlflowModelChecked, [request]).mlmodel == "m/model/MLmodel"


def test_a_requirement_the_image_lacks_is_one_line(rule_runner: RuleRunner) -> None:
    request = _request(rule_runner, {"model/MLmodel": MLMODEL, "model/requirements.txt": "mlflow==2.17.2\n"
                                     "pandas==3.1.1\n"})
    assert ("m:m: m/model/requirements.txt: line 2: the MLflow model requires pandas==3.1.1, which is not among "
            "the image's Python packages (add `pandas` to the omi_model's `dependencies` (from the lockfile))"
            ) in _error(rule_runner, request)


def test_a_signature_disagreement_names_both_files(rule_runner: RuleRunner) -> None:
    request = _request(rule_runner, {"model/MLmodel": MLMODEL, "model/requirements.txt": "mlflow\n"},
                       MODEL_YAML.replace("FP32", "FP64").replace("INT64", "INT32"))
    error = _error(rule_runner, request)
    assert ("m:m: m/model.yaml: inputs[0].datatype: FP64 differs from the MLflow signature's tensor float32 [-1, 4] "
            "= FP32 (declare what the MLflow signature in m/model/MLmodel says") in error
    assert "[and 1 more]" in error


def test_a_model_pyfunc_cannot_load_is_refused(rule_runner: RuleRunner) -> None:
    mlmodel = json.dumps({"run_id": "r1", "flavors": {"sklearn": {}}, "signature": SIGNATURE})
    assert ("m:m: m/model/MLmodel: flavors: no python_function flavour (found: sklearn): format mlflow serves models "
            "through mlflow.pyfunc") in _error(rule_runner, _request(
                rule_runner, {"model/MLmodel": mlmodel, "model/requirements.txt": "mlflow==2.17.2\n"}))


def test_no_mlmodel_and_no_requirements_are_refused(rule_runner: RuleRunner) -> None:
    assert "m:m: m/model.yaml: files: format mlflow: no MLmodel file among the model files" in _error(
        rule_runner, _request(rule_runner, {"model/model.pkl": "x"}))
    assert "m:m: m/model/requirements.txt: (file): missing next to m/model/MLmodel" in _error(
        rule_runner, _request(rule_runner, {"model/MLmodel": MLMODEL}))


def test_distributions_come_from_the_wheels_of_the_packed_pex() -> None:
    assert wheel_distributions([
        "runtime.pex/.deps/scikit_learn-1.5.2-cp311-cp311-manylinux_2_17_x86_64.whl",
        "runtime.pex/.deps/mlflow_skinny-2.17.2-py3-none-any.whl",
        "runtime.pex/.deps/numpy-2.2.6-cp311-cp311-linux_x86_64.whl/numpy/__init__.py",
        "runtime.pex/omi_runtime/__main__.py",
    ]) == (("mlflow_skinny", "2.17.2"), ("numpy", "2.2.6"), ("scikit_learn", "1.5.2"))
