"""The XGBoost, LightGBM and MLflow examples under podman: each interface answers a real client."""

from __future__ import annotations

import json
import urllib.request
from typing import Iterator

import numpy as np
import pytest
import tritonclient.grpc as triton
from conftest import Clone, Container, free_port, modzy_run_json, pulled_image, wait_for

EXAMPLES = {"xgboost": ("examples/digits_xgboost", "digits-xgboost"),
            "lightgbm": ("examples/digits_lightgbm", "digits-lightgbm"),
            "mlflow": ("examples/digits_mlflow", "digits-mlflow")}


def _samples(clone: Clone, target: tuple) -> tuple:
    """The first sample of the example's model.yaml: its inputs and its expected labels."""
    import yaml

    doc = yaml.safe_load((clone.root / target[0] / "model.yaml").read_text())
    sample = doc["samples"][0]
    return np.array(sample["inputs"]["input-0"], dtype=np.float32), sample["outputs"]["predict"]


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def served(request, packaged_clone: Clone) -> Iterator[tuple]:
    target = EXAMPLES[request.param]
    with pulled_image(packaged_clone.layout(*target)) as image_id:
        yield image_id, target[1], *_samples(packaged_clone, target)


def test_kfserving_v1_rest(served: tuple) -> None:
    image, model, x, labels = served
    port = free_port()
    container = Container(image, {"INTERFACE": "kfserving", "PROTOCOL": "v1", "HTTP_PORT": port})
    try:
        def predict():
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{model}:predict",
                                             data=json.dumps({"instances": x.tolist()}).encode(), method="POST")
            return json.loads(urllib.request.urlopen(request, timeout=5).read())

        assert wait_for(predict) == {"predictions": labels}  # KServe v1 answers with the first declared output
    finally:
        container.stop()


def test_kfserving_v2_grpc_with_triton_client(served: tuple) -> None:
    image, model, x, labels = served
    port = free_port()
    container = Container(image, {"INTERFACE": "kfserving", "PROTOCOL": "v2", "HTTP_PORT": port})
    try:
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        wait_for(lambda: client.is_model_ready(model))
        tensor = triton.InferInput("input-0", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        result = client.infer(model, [tensor])
        assert result.as_numpy("predict").tolist() == labels
        if model != "digits-mlflow":  # mlflow.pyfunc predicts labels only
            probabilities = result.as_numpy("probabilities")
            assert probabilities.shape == (len(labels), 10) and probabilities.argmax(axis=1).tolist() == labels
        platform = client.get_model_metadata(model).platform
        assert platform == model.split("-")[1]
    finally:
        container.stop()


def test_modzy_v2_grpc(served: tuple) -> None:
    image, model, x, labels = served
    port = free_port()
    container = Container(image, {"INTERFACE": "modzy", "PROTOCOL": "v2", "HTTP_PORT": port})
    try:
        status, results = modzy_run_json(port, x.tolist())
        assert status.status_code == 200
        assert results["predict"] == labels
    finally:
        container.stop()
