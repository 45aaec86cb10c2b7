"""The text embedding example (format: huggingface) under podman, read-only root: every interface answers a real
client with the embeddings the torch reference gave (its model.yaml sample), and bad texts are per-request errors."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Iterator

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
import tritonclient.http as triton_http
from conftest import PODMAN, RUN_FLAGS, Clone, Container, free_port, pulled_image, run, wait_for

from omi_runtime.grpc_stubs import modzy_model_v2_pb2 as modzy_pb2
from omi_runtime.grpc_stubs import modzy_model_v2_pb2_grpc as modzy_grpc

TARGET = ("examples/text_embedding", "minilm")
NAME = "minilm"


@pytest.fixture(scope="module")
def sample(packaged_clone: Clone) -> dict:
    import yaml

    doc = yaml.safe_load((packaged_clone.root / TARGET[0] / "model.yaml").read_text(encoding="utf-8"))
    return doc["samples"][0]


@pytest.fixture(scope="module")
def image(packaged_clone: Clone) -> Iterator[str]:
    with pulled_image(packaged_clone.layout(*TARGET)) as image_id:
        yield image_id


@contextlib.contextmanager
def _served(image: str, interface: str, protocol: str) -> Iterator[int]:
    """A container of the image serving one interface on a free port, stopped afterwards."""
    port = free_port()
    container = Container(image, {"INTERFACE": interface, "PROTOCOL": protocol, "HTTP_PORT": port})
    try:
        yield port
    finally:
        container.stop()


def _assert_reference(got: np.ndarray, sample: dict) -> None:
    expected = np.array(sample["outputs"]["embedding"], dtype=np.float32)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= sample["tolerance"]
    assert (1 - (got * expected).sum(axis=1)).max() < 1e-3  # cosine distance: the int8 weights' share


def test_the_image_holds_no_torch_and_no_transformers(image: str) -> None:
    listing = run([*PODMAN, "run", *RUN_FLAGS, "--entrypoint", "/usr/bin/python3.11", image, "-c",
                   "import importlib.util as u; print([m for m in ('torch', 'transformers', 'tokenizers', "
                   "'onnxruntime') if u.find_spec(m)])"]).stdout.strip()
    assert listing == "['tokenizers', 'onnxruntime']"


def test_kserve_v1_and_v2_rest(image: str, sample: dict) -> None:
    texts = sample["inputs"]["text"]
    with _served(image, "kfserving", "v1") as port:
        def predict(body: dict) -> dict:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{NAME}:predict",
                                             data=json.dumps(body).encode(), method="POST")
            return json.loads(urllib.request.urlopen(request, timeout=30).read())

        answer = wait_for(lambda: predict({"instances": texts}))
        _assert_reference(np.array(answer["predictions"], dtype=np.float32), sample)

        client = triton_http.InferenceServerClient(f"127.0.0.1:{port}")
        tensor = triton_http.InferInput("text", [len(texts)], "BYTES")
        tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object), binary_data=False)
        _assert_reference(client.infer(NAME, [tensor]).as_numpy("embedding"), sample)

        with pytest.raises(urllib.error.HTTPError) as refused:
            predict({"instances": [{"b64": "//4="}]})  # the bytes ff fe: not UTF-8
        assert refused.value.code == 400 and "is not UTF-8 text" in refused.value.read().decode()


def test_kserve_v2_grpc_with_triton_client(image: str, sample: dict) -> None:
    texts = sample["inputs"]["text"]
    with _served(image, "kfserving", "v2") as port:
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        wait_for(lambda: client.is_model_ready(NAME))

        def infer(items: list) -> np.ndarray:
            tensor = triton.InferInput("text", [len(items)], "BYTES")
            tensor.set_data_from_numpy(np.array(items, dtype=object))
            return client.infer(NAME, [tensor]).as_numpy("embedding")

        _assert_reference(infer([t.encode() for t in texts]), sample)
        # Empty and over-long texts are answered (the long one truncated at 256 tokens), one by one as in a batch.
        odd = [b"", ("word " * 5000).encode()]
        assert np.array_equal(infer(odd), np.concatenate([infer([t]) for t in odd]))
        with pytest.raises(triton.InferenceServerException) as refused:
            infer([b"fine", b"\xff\xfe"])
        assert refused.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert "input 'text'[1] is not UTF-8 text" in refused.value.message()
        assert client.get_model_metadata(NAME).platform == "huggingface_onnx"


def test_modzy_v2_items_are_text_files(image: str, sample: dict) -> None:
    texts = sample["inputs"]["text"]
    with _served(image, "modzy", "v2") as port:
        stub = modzy_grpc.ModzyModelStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        status = wait_for(lambda: stub.Status(modzy_pb2.StatusRequest(), timeout=5))
        assert status.status_code == 200 and status.inputs[0].accepted_media_types == ["text/plain"]
        items = [modzy_pb2.InputItem(input={"input.txt": t.encode()}) for t in texts]
        items.append(modzy_pb2.InputItem(input={"input.txt": b"\xff\xfe"}))
        response = stub.Run(modzy_pb2.RunRequest(inputs=items), timeout=60)
        assert response.status_code == 200 and [o.success for o in response.outputs] == [True, True, False]
        got = np.concatenate([json.loads(o.output["results.json"])["embedding"] for o in response.outputs[:2]])
        _assert_reference(got.astype(np.float32), sample)
        assert b"is not UTF-8 text" in response.outputs[2].output["error"]


CLASSIFIER = ("examples/text_classification", "topics")


@pytest.fixture(scope="module")
def classifier(packaged_clone: Clone) -> Iterator[tuple]:
    import yaml

    doc = yaml.safe_load((packaged_clone.root / CLASSIFIER[0] / "model.yaml").read_text(encoding="utf-8"))
    with pulled_image(packaged_clone.layout(*CLASSIFIER)) as image_id:
        yield image_id, doc["samples"][0]


def test_classifier_over_kserve_v1_and_v2_grpc(classifier: tuple) -> None:
    image, sample = classifier
    texts, labels = sample["inputs"]["text"], sample["outputs"]["label"]
    expected = np.array(sample["outputs"]["probabilities"], dtype=np.float32)
    for protocol in ("v1", "v2"):
        with _served(image, "kfserving", protocol) as port:
            if protocol == "v1":  # KServe v1 answers with the first declared output: the labels
                request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/topics:predict",
                                                 data=json.dumps({"instances": texts}).encode(), method="POST")
                assert wait_for(lambda: json.loads(urllib.request.urlopen(request, timeout=30).read())) == {
                    "predictions": labels}
                continue
            client = triton.InferenceServerClient(f"127.0.0.1:{port}")
            wait_for(lambda: client.is_model_ready("topics"))
            tensor = triton.InferInput("text", [len(texts)], "BYTES")
            tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
            result = client.infer("topics", [tensor])
            assert [label.decode() for label in result.as_numpy("label")] == labels
            assert np.abs(result.as_numpy("probabilities") - expected).max() <= sample["tolerance"]


def test_classifier_over_modzy_v2(classifier: tuple) -> None:
    image, sample = classifier
    with _served(image, "modzy", "v2") as port:
        stub = modzy_grpc.ModzyModelStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        wait_for(lambda: stub.Status(modzy_pb2.StatusRequest(), timeout=5))
        items = [modzy_pb2.InputItem(input={"input.txt": t.encode()}) for t in sample["inputs"]["text"]]
        response = stub.Run(modzy_pb2.RunRequest(inputs=items), timeout=60)
        answers = [json.loads(o.output["results.json"]) for o in response.outputs]
        assert [a["label"] for a in answers] == [[label] for label in sample["outputs"]["label"]]


@pytest.fixture(scope="module")
def fp32(packaged_clone: Clone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """The example's model with its fp32 weights (export_fp32.py: 87 MB of ONNX external data), packaged and checked
    as a target of its own with the sample's tolerance at 1e-4."""
    import sys

    import yaml

    scripts = packaged_clone.root / "examples/text_embedding"
    root = packaged_clone.root / "textfp32"
    sys.path.insert(0, str(scripts))  # export_fp32 and the fetch_model it imports
    try:
        from export_fp32 import export

        export(root / "model", tmp_path_factory.mktemp("fp32-download"), scripts / "model")
    finally:
        sys.path.remove(str(scripts))
    doc = yaml.safe_load((scripts / "model.yaml").read_text(encoding="utf-8"))
    doc.update(name="minilm-fp32", run_id="all-minilm-l6-v2-fp32")
    doc["samples"][0]["tolerance"] = 1e-4
    (root / "model.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    (root / "BUILD").write_text('omi_model(name="minilm-fp32", model_files=["model/**"], repository="text/fp32")\n')
    packaged_clone.pants("package", "textfp32:minilm-fp32")
    checked = packaged_clone.pants("check", "textfp32:minilm-fp32")
    assert "omi smoke: OK, 0 violations" in checked.output
    with pulled_image(packaged_clone.layout("textfp32", "minilm-fp32")) as image_id:
        yield image_id, doc["samples"][0], packaged_clone.record("textfp32", "minilm-fp32")


def test_fp32_weights_as_external_data_equal_the_torch_reference(fp32: tuple) -> None:
    image, sample, record = fp32
    weights = [layer for layer in record["layers"] if layer["created_by"].endswith("model/model.onnx_data")]
    assert len(weights) == 1 and weights[0]["size"] > 80_000_000
    with _served(image, "kfserving", "v2") as port:
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        wait_for(lambda: client.is_model_ready("minilm-fp32"))
        texts = sample["inputs"]["text"]
        tensor = triton.InferInput("text", [len(texts)], "BYTES")
        tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
        got = client.infer("minilm-fp32", [tensor]).as_numpy("embedding")
    expected = np.array(sample["outputs"]["embedding"], dtype=np.float32)
    cosine_distance = 1 - (got * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine_distance.max() < 1e-4
