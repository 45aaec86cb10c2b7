"""End-to-end tests of kfserving.v1 REST and the v2 REST routes on the same server, with plain HTTP."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from omi_runtime.conftest import spawn


@pytest.fixture(scope="module")
def base(request, digits_sklearn):
    models_dir, _ = digits_sklearn
    server = spawn(request, models_dir, INTERFACE="kfserving", PROTOCOL="v1", OMI_MAX_MESSAGE_BYTES=str(1 << 20))
    return f"http://127.0.0.1:{server.port}"


def test_list_and_status(base):
    assert requests.get(f"{base}/v1/models").json() == {"models": ["digits"]}
    assert requests.get(f"{base}/v1/models/digits").json() == {"name": "digits", "ready": True}
    missing = requests.get(f"{base}/v1/models/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


def test_predict(base, digits_sklearn, digits_data):
    _, model = digits_sklearn
    x, _ = digits_data
    reply = requests.post(f"{base}/v1/models/digits:predict", json={"instances": x[:5].tolist()})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"predictions": model.predict(x[:5]).tolist()}
    keyed = requests.post(f"{base}/v1/models/digits:predict", json={"instances": [{"input-0": x[0].tolist()}]})
    assert keyed.json() == {"predictions": model.predict(x[:1]).tolist()}


def test_explain_not_provided_is_501(base, digits_data):
    x, _ = digits_data
    reply = requests.post(f"{base}/v1/models/digits:explain", json={"instances": x[:1].tolist()})
    assert reply.status_code == 501 and "explain" in reply.json()["error"]


@pytest.mark.parametrize("body, status, needle", [
    (b"{not json", 400, "JSON"),
    (b"[1, 2]", 400, "object"),
    (b'{"instances": []}', 400, "instances"),
    (b'{"rows": [[1]]}', 400, "instances"),
    (b'{"instances": [[1, 2, 3]]}', 400, "shape"),
    (b'{"instances": [[1, 2], [3]]}', 400, "input-0"),
    (b'{"instances": [["a", "b"]]}', 400, "input-0"),
])
def test_bad_predict_requests(base, body, status, needle):
    reply = requests.post(f"{base}/v1/models/digits:predict", data=body)
    assert reply.status_code == status, reply.text
    assert needle in reply.json()["error"]
    assert requests.get(f"{base}/v1/models/digits").json()["ready"] is True


DEEP = 100_000  # far past the JSON parser's recursion limit, well under the body size limit


@pytest.mark.parametrize("path, body", [
    ("/v1/models/digits:predict", b'{"instances": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    ("/v1/models/digits:predict", b'{"instances": [' + b'{"a":' * DEEP + b"0" + b"}" * DEEP + b"]}"),
    ("/v1/models/digits:predict", b"[" * DEEP),
    ("/v2/models/digits/infer", b'{"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1], "data": '
                                + b"[" * DEEP + b"]" * DEEP + b"}]}"),
])
def test_body_nested_past_the_parser_is_400(base, path, body):
    reply = requests.post(f"{base}{path}", data=body)
    assert reply.status_code == 400, reply.text
    assert "request body is nested deeper than the JSON parser allows" in reply.json()["error"]
    assert requests.get(f"{base}/v1/models/digits").json()["ready"] is True


def test_unknown_model_and_route(base):
    reply = requests.post(f"{base}/v1/models/nope:predict", json={"instances": [[0] * 64]})
    assert reply.status_code == 404 and "nope" in reply.json()["error"]
    reply = requests.get(f"{base}/v3/whatever")
    assert reply.status_code == 404 and "error" in reply.json()


def test_oversized_body_is_413(base):
    reply = requests.post(f"{base}/v1/models/digits:predict", data=b"[" + b"0," * (1 << 20) + b"0]")
    assert reply.status_code == 413 and "OMI_MAX_MESSAGE_BYTES" in reply.json()["error"]
    assert requests.get(f"{base}/v2/health/live").status_code == 200


def test_v2_rest_health_and_metadata(base):
    assert requests.get(f"{base}/v2/health/live").status_code == 200
    assert requests.get(f"{base}/v2/health/ready").status_code == 200
    assert requests.get(f"{base}/v2/models/digits/ready").status_code == 200
    assert requests.get(f"{base}/v2/models/digits/versions/1.0.0/ready").status_code == 200
    assert requests.get(f"{base}/v2/models/digits/versions/2/ready").status_code == 404
    assert requests.get(f"{base}/v2").json()["name"] == "omi_runtime"
    meta = requests.get(f"{base}/v2/models/digits").json()
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 64]}]
    assert meta["versions"] == ["1.0.0"] and meta["platform"] == "sklearn"


def test_v2_rest_infer(base, digits_sklearn, digits_data):
    _, model = digits_sklearn
    x, _ = digits_data
    body = {"id": "r1", "inputs": [{"name": "input-0", "shape": [3, 64], "datatype": "FP32",
                                     "data": x[:3].ravel().tolist()}],
            "outputs": [{"name": "predict"}]}
    reply = requests.post(f"{base}/v2/models/digits/infer", json=body)
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["id"] == "r1" and doc["model_name"] == "digits"
    assert doc["outputs"] == [{"name": "predict", "shape": [3], "datatype": "INT64",
                               "data": model.predict(x[:3]).tolist()}]
    nested = dict(body, inputs=[dict(body["inputs"][0], data=x[:3].tolist())], outputs=[])
    reply = requests.post(f"{base}/v2/models/digits/versions/1.0.0/infer", json=nested)
    assert [o["name"] for o in reply.json()["outputs"]] == ["predict", "predict_proba"]
    assert reply.json()["outputs"][1]["shape"] == [3, 10]


@pytest.mark.parametrize("patch, needle", [
    ({"datatype": "FP64"}, "datatype"),
    ({"shape": [3, 32]}, "shape"),
    ({"shape": 3}, "shape"),
    ({"name": "x"}, "unknown input"),
    ({"datatype": "FP99"}, "datatype"),
])
def test_v2_rest_bad_infer(base, digits_data, patch, needle):
    x, _ = digits_data
    tensor = {"name": "input-0", "shape": [3, 64], "datatype": "FP32", "data": x[:3].ravel().tolist(), **patch}
    reply = requests.post(f"{base}/v2/models/digits/infer", json={"inputs": [tensor]})
    assert reply.status_code == 400, reply.text
    assert needle in reply.json()["error"]


def test_explain_and_bytes_models(request, custom_models):
    server = spawn(request, custom_models["explaining"], INTERFACE="kfserving", PROTOCOL="v1")
    url = f"http://127.0.0.1:{server.port}/v1/models/explaining"
    reply = requests.post(f"{url}:explain", json={"instances": [[1, 2], [3, 4]]})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"predictions": [[2.0, 4.0], [6.0, 8.0]],
                            "explanations": {"saliency": [[1.0, 1.0], [1.0, 1.0]]}}

    server = spawn(request, custom_models["upper"], INTERFACE="kserve", PROTOCOL="v1")
    url = f"http://127.0.0.1:{server.port}/v1/models/upper"
    b64 = base64.b64encode(b"hello").decode()
    reply = requests.post(f"{url}:predict", json={"instances": [b64, {"b64": base64.b64encode(b"x").decode()}]})
    assert reply.status_code == 200, reply.text
    assert [json.loads(p) for p in reply.json()["predictions"]] == [{"text": "HELLO"}, {"text": "X"}]
    reply = requests.post(f"{url}:predict", json={"instances": ["%%%not base64"]})
    assert reply.status_code == 400 and "base64" in reply.json()["error"]
    reply = requests.post(f"{url}:predict", json={"instances": [base64.b64encode(b"fail").decode()]})
    assert reply.status_code == 400 and "instances[0]" in reply.json()["error"]
    # The same bytes model behind the v2 REST routes: one BYTES element per item.
    reply = requests.post(f"http://127.0.0.1:{server.port}/v2/models/upper/infer",
                          json={"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["abc"]}]})
    assert reply.status_code == 200, reply.text
    assert json.loads(reply.json()["outputs"][0]["data"][0]) == {"text": "ABC"}


def test_bytes_inputs_as_b64(request, custom_models):
    """KServe v1 BYTES inputs of a tensor model: {"b64": ...} elements."""
    server = spawn(request, custom_models["echo-contents"], INTERFACE="kfserving", PROTOCOL="v1")
    url = f"http://127.0.0.1:{server.port}/v1/models/echo-contents:predict"
    # The first input of echo-contents is BOOL; keyed instances feed every input.
    instance = {"bool": True, "uint8": 1, "uint16": 2, "uint32": 3, "uint64": 4, "int8": -1, "int16": -2,
                "int32": -3, "int64": -4, "fp32": 0.5, "fp64": 0.25,
                "bytes": {"b64": base64.b64encode(b"\xff").decode()}}
    reply = requests.post(url, json={"instances": [instance, instance]})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"predictions": [True, True]}


def test_onnx_model_over_v1(request, digits_onnx, digits_data):
    models_dir, model = digits_onnx
    x, _ = digits_data
    server = spawn(request, models_dir, INTERFACE="kfserving", PROTOCOL="v1")
    reply = requests.post(f"http://127.0.0.1:{server.port}/v1/models/digits-onnx:predict",
                          json={"instances": x[:8].tolist()})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"predictions": model.predict(x[:8]).tolist()}
