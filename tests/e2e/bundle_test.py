"""A multi-model image (`bundled_models`) under podman: each model answers by `MODEL_NAME` on every interface."""

from __future__ import annotations

import json
import tarfile
import urllib.request
from typing import Iterator

import numpy as np
import pytest
import tritonclient.grpc as triton
import yaml
from conftest import Clone, Container, free_port, modzy_run_json, pulled_image, wait_for

BUNDLE = ("examples/digits", "digits-bundle")
MODELS = {"digits": "examples/digits", "digits-onnx": "examples/digits_onnx", "digits-xgboost": "examples/digits_xgboost"}


@pytest.fixture(scope="module")
def bundle_image(packaged_clone: Clone) -> Iterator[str]:
    with pulled_image(packaged_clone.layout(*BUNDLE)) as image_id:
        yield image_id


def _sample(clone: Clone, model: str) -> tuple:
    sample = yaml.safe_load((clone.root / MODELS[model] / "model.yaml").read_text())["samples"][0]
    return np.array(sample["inputs"]["input-0"], dtype=np.float32), sample["outputs"]["predict"]


def test_the_record_and_layers_hold_every_model(packaged_clone: Clone) -> None:
    record = packaged_clone.record(*BUNDLE)
    assert record["model"]["name"] == "digits" and record["tags"][0] == record["model"]["run_id"]
    assert [m["name"] for m in record["bundled_models"]] == ["digits-onnx", "digits-xgboost"]
    onnx_record = packaged_clone.record("examples/digits_onnx", "digits-onnx")
    assert record["bundled_models"][0]["run_id"] == onnx_record["model"]["run_id"]
    files = {"omi: model file model.onnx": "models/digits-onnx/model.onnx",
             "omi: model file model.json": "models/digits-xgboost/model.json"}
    blobs = packaged_clone.layout(*BUNDLE) / "blobs" / "sha256"
    for layer in record["layers"]:
        if layer["created_by"] in files:
            with tarfile.open(blobs / layer["digest"].split(":")[1]) as tar:
                assert files.pop(layer["created_by"]) in tar.getnames()
    assert files == {}
    # The ModelPack artifact is the image's own model only.
    modelpack = json.loads((packaged_clone.root / "dist" / "examples.digits" / "digits-bundle.modelpack.oci" /
                            "index.json").read_text())
    assert len(modelpack["manifests"]) == 1


@pytest.mark.parametrize("model", sorted(MODELS))
def test_each_model_answers_on_every_interface(packaged_clone: Clone, bundle_image: str, model: str) -> None:
    x, labels = _sample(packaged_clone, model)
    for interface, protocol in (("kfserving", "v1"), ("kfserving", "v2"), ("modzy", "v2")):
        port = free_port()
        env = {"INTERFACE": interface, "PROTOCOL": protocol, "HTTP_PORT": port}
        if model != "digits":  # the default is the image's own model
            env["MODEL_NAME"] = model
        container = Container(bundle_image, env)
        try:
            if (interface, protocol) == ("kfserving", "v1"):
                def predict():
                    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{model}:predict",
                                                     data=json.dumps({"instances": x.tolist()}).encode(),
                                                     method="POST")
                    return json.loads(urllib.request.urlopen(request, timeout=5).read())

                assert wait_for(predict) == {"predictions": labels}
            elif interface == "kfserving":
                client = triton.InferenceServerClient(f"127.0.0.1:{port}")
                wait_for(lambda: client.is_model_ready(model))
                tensor = triton.InferInput("input-0", list(x.shape), "FP32")
                tensor.set_data_from_numpy(x)
                assert client.infer(model, [tensor]).as_numpy("predict").tolist() == labels
                assert client.get_model_metadata(model).name == model
            else:
                status, results = modzy_run_json(port, x.tolist())
                assert status.status_code == 200 and status.model_info.model_name == model
                assert results["predict"] == labels
        finally:
            container.stop()
