"""End-to-end tests of kfserving.v2 (gRPC) with real clients: Triton's tritonclient, grpc health, reflection."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from omi_runtime.conftest import ALL_DATATYPES, CONTENTS_TYPES, spawn


@pytest.fixture(scope="module")
def server(request, digits_sklearn):
    models_dir, _ = digits_sklearn
    return spawn(request, models_dir, INTERFACE="kfserving", PROTOCOL="v2", OMI_MAX_MESSAGE_BYTES=str(1 << 20))


@pytest.fixture(scope="module")
def client(server):
    c = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    yield c
    c.close()


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield service_pb2_grpc.GRPCInferenceServiceStub(channel)
    channel.close()


def _fp32_input(x: np.ndarray) -> triton.InferInput:
    tensor = triton.InferInput("input-0", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x.astype(np.float32))
    return tensor


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("digits")
    assert client.is_model_ready("digits", "1.0.0")
    server_meta = client.get_server_metadata()
    assert server_meta.name == "omi_runtime"
    meta = client.get_model_metadata("digits")
    assert meta.name == "digits" and list(meta.versions) == ["1.0.0"] and meta.platform == "sklearn"
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("input-0", "FP32", [-1, 64])]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("predict", "INT64", [-1]), ("predict_proba", "FP32", [-1, 10])]


def test_infer_raw_matches_sklearn(client, digits_sklearn, digits_data):
    _, model = digits_sklearn
    x, _ = digits_data
    result = client.infer("digits", [_fp32_input(x[:20])], request_id="req-7", parameters={"trace": "yes"})
    np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(x[:20]))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(x[:20]), rtol=1e-5, atol=1e-6)
    response = result.get_response()
    assert response.id == "req-7"
    assert response.model_name == "digits" and response.model_version == "1.0.0"
    assert response.parameters["trace"].string_param == "yes"


def test_output_selection(client, digits_data):
    x, _ = digits_data
    result = client.infer("digits", [_fp32_input(x[:3])], outputs=[triton.InferRequestedOutput("predict_proba")])
    assert [o.name for o in result.get_response().outputs] == ["predict_proba"]
    assert result.as_numpy("predict_proba").shape == (3, 10)


def test_infer_contents(stub, digits_sklearn, digits_data):
    _, model = digits_sklearn
    x, _ = digits_data
    request = service_pb2.ModelInferRequest(model_name="digits", id="c1")
    tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[2, 64])
    tensor.contents.fp32_contents.extend(x[:2].ravel().tolist())
    response = stub.ModelInfer(request)
    assert response.id == "c1"
    result = triton.InferResult(response)
    np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(x[:2]))


def test_concurrent_requests_are_each_answered(client, digits_sklearn, digits_data):
    """Concurrent requests get coalesced by the batcher; each must still get its own rows back."""
    _, model = digits_sklearn
    x, _ = digits_data
    expected = model.predict(x[:40])
    futures = []
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(16) as pool:
        for i in range(40):
            futures.append(pool.submit(lambda i=i: client.infer("digits", [_fp32_input(x[i:i + 1])])))
        got = [f.result().as_numpy("predict")[0] for f in futures]
    np.testing.assert_array_equal(got, expected)


def _status(excinfo) -> str:
    return str(excinfo.value.status())


def test_unknown_model_is_not_found(client, digits_data):
    x, _ = digits_data
    with pytest.raises(InferenceServerException) as e:
        client.infer("nope", [_fp32_input(x[:1])])
    assert _status(e) == "StatusCode.NOT_FOUND" and "nope" in e.value.message()
    with pytest.raises(InferenceServerException) as e:
        client.get_model_metadata("nope")
    assert _status(e) == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException) as e:
        client.get_model_metadata("digits", "9.9")
    assert _status(e) == "StatusCode.NOT_FOUND"


@pytest.mark.parametrize("case", ["shape", "datatype", "name", "raw_length", "raw_count", "output", "fp16_contents"])
def test_bad_requests_are_invalid_argument(stub, client, case):
    request = service_pb2.ModelInferRequest(model_name="digits")
    tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[1, 64])
    raw = np.zeros((1, 64), np.float32).tobytes()
    if case == "shape":
        tensor.shape[:] = [1, 32]
        raw = raw[: 32 * 4]
    elif case == "datatype":
        tensor.datatype = "FP64"
        raw = np.zeros((1, 64)).tobytes()
    elif case == "name":
        tensor.name = "wrong"
    elif case == "raw_length":
        raw = raw[:-3]
    elif case == "output":
        request.outputs.add(name="nonexistent")
    elif case == "fp16_contents":
        tensor.datatype = "FP16"
        raw = None
    if case == "raw_count":
        request.raw_input_contents.extend([raw, raw])
    elif raw is not None:
        request.raw_input_contents.append(raw)
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(request)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert e.value.details()
    assert client.is_server_ready()  # still serving


def _refused(stub, client, request) -> str:
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(request)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert client.is_server_ready()  # still serving
    return str(e.value.details())


# Each rule below quotes the KServe v2 / Open Inference Protocol gRPC text (grpc_predict_v2.proto's documentation).

def test_raw_input_contents_excludes_typed_contents(stub, client):
    """raw_input_contents: "If this field is specified then InferInputTensor::contents must not be specified for
    any input tensor." InferInputTensor.contents: "This field must not be specified if tensor contents are being
    specified in ModelInferRequest.raw_input_contents"."""
    x = np.zeros((1, 64), np.float32)
    request = service_pb2.ModelInferRequest(model_name="digits")
    tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[1, 64])
    tensor.contents.fp32_contents.extend(x.ravel().tolist())
    request.raw_input_contents.append(x.tobytes())
    assert _refused(stub, client, request) == (
        "tensor 'input-0': has contents, but the request carries raw_input_contents: give each input's data in one "
        "of the two forms, not both")


def test_raw_input_contents_has_one_entry_per_input_in_order(stub, client):
    """"'raw_input_contents' must be initialized with data for each tensor in the same order as 'inputs'"."""
    request = service_pb2.ModelInferRequest(model_name="digits")
    request.inputs.add(name="input-0", datatype="FP32", shape=[1, 64])
    request.raw_input_contents.extend([b"\0" * 256] * 2)
    assert "raw_input_contents has 2 entries for 1 inputs" in _refused(stub, client, request)


def test_raw_size_matches_shape_and_datatype(stub, client):
    """"For each tensor, the size of this content must match what is expected by the tensor's shape and data type"."""
    request = service_pb2.ModelInferRequest(model_name="digits")
    request.inputs.add(name="input-0", datatype="FP32", shape=[1, 64])
    request.raw_input_contents.append(b"\0" * 255)
    assert "raw contents are 255 bytes" in _refused(stub, client, request)


def test_typed_contents_size_matches_shape(stub, client):
    """fp32_contents: "The size must match what is expected by the tensor's shape"."""
    request = service_pb2.ModelInferRequest(model_name="digits")
    request.inputs.add(name="input-0", datatype="FP32", shape=[1, 64]).contents.fp32_contents.extend([0.0] * 63)
    assert "contents hold 63 elements, shape [1, 64] needs 64" in _refused(stub, client, request)


def test_typed_contents_are_in_the_datatype_representation(stub, client):
    """fp32_contents: "Representation for FP32 data type"; int64_contents: "Representation for INT64 data types"."""
    request = service_pb2.ModelInferRequest(model_name="digits")
    tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[1, 64])
    tensor.contents.fp32_contents.extend([0.0] * 64)
    tensor.contents.int64_contents.extend([1] * 64)
    assert _refused(stub, client, request) == (
        "tensor 'input-0': FP32 data goes in contents.fp32_contents, but contents.int64_contents holds 64 values")


@pytest.mark.parametrize("datatype", ["FP16", "BF16"])
def test_16_bit_floats_travel_as_raw_contents(stub, client, datatype):
    """"Note that the FP16 and BF16 data types must be represented as raw content"."""
    request = service_pb2.ModelInferRequest(model_name="digits")
    request.inputs.add(name="input-0", datatype=datatype, shape=[1, 64]).contents.fp32_contents.extend([0.0] * 64)
    assert f"{datatype} data travels only as raw_input_contents" in _refused(stub, client, request)


def test_the_response_uses_raw_output_contents_alone(client, digits_data):
    """raw_output_contents: "If this field is specified then InferOutputTensor::contents must not be specified for
    any output tensor"."""
    x, _ = digits_data
    response = client.infer("digits", [_fp32_input(x[:2])]).get_response()
    assert len(response.raw_output_contents) == len(response.outputs) == 2
    assert not any(o.HasField("contents") for o in response.outputs)


def test_oversized_message_is_resource_exhausted(stub, client):
    request = service_pb2.ModelInferRequest(model_name="digits")
    request.inputs.add(name="input-0", datatype="FP32", shape=[5000, 64])
    request.raw_input_contents.append(np.zeros((5000, 64), np.float32).tobytes())  # 1.28 MB > 1 MiB limit
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(request)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert client.is_server_live()


def test_health_service(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_inference_service(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= names


def test_onnx_model(request, digits_onnx, digits_data):
    models_dir, model = digits_onnx
    x, _ = digits_data
    server = spawn(request, models_dir, INTERFACE="kserve", PROTOCOL="v2")
    with triton.InferenceServerClient(url=f"127.0.0.1:{server.port}") as client:
        assert client.get_model_metadata("digits-onnx").platform == "onnxruntime_onnx"
        result = client.infer("digits-onnx", [_fp32_input(x[:10])])
        np.testing.assert_array_equal(result.as_numpy("label"), model.predict(x[:10]))
        np.testing.assert_allclose(result.as_numpy("probabilities"), model.predict_proba(x[:10]), atol=1e-4)


def _sample(datatype: str) -> np.ndarray:
    if datatype == "BOOL":
        return np.array([True, False, True])
    if datatype == "BYTES":
        return np.array([b"a", b"\x00\xffbin", "héllo".encode()], dtype=object)
    if datatype in ("FP16", "FP32", "FP64", "BF16"):
        return np.array([1.5, -2.25, 1024.0], dtype=np.float32 if datatype == "BF16" else
                        {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}[datatype])
    info = np.iinfo(getattr(np, datatype.lower()))
    return np.array([info.min, 0, info.max], dtype=getattr(np, datatype.lower()))


def test_every_datatype_round_trips_raw_and_contents(request, custom_models):
    """The echo handler returns its inputs: raw in -> raw out, typed contents in -> raw out, per datatype."""
    server = spawn(request, custom_models["echo"], INTERFACE="kfserving", PROTOCOL="v2")
    with triton.InferenceServerClient(url=f"127.0.0.1:{server.port}") as client:
        inputs = []
        for dt in ALL_DATATYPES:
            tensor = triton.InferInput(dt.lower(), [3], dt)
            tensor.set_data_from_numpy(_sample(dt))
            inputs.append(tensor)
        result = client.infer("echo", inputs)
        for dt in ALL_DATATYPES:
            got = result.as_numpy("out_" + dt.lower())
            if dt == "BYTES":
                assert list(got) == list(_sample(dt))
            else:
                np.testing.assert_array_equal(got.astype(_sample(dt).dtype), _sample(dt), err_msg=dt)

    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        req = service_pb2.ModelInferRequest(model_name="echo")
        for dt in ALL_DATATYPES:
            tensor = req.inputs.add(name=dt.lower(), datatype=dt, shape=[3])
            if dt in ("FP16", "BF16"):
                continue
            field = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
                     "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
                     "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
                     "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}[dt]
            getattr(tensor.contents, field).extend(_sample(dt).tolist())
        # FP16/BF16 have no contents field: a request mixing them is invalid unless everything is raw.
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "raw" in e.value.details()
        del req.inputs[ALL_DATATYPES.index("BF16")]
        del req.inputs[ALL_DATATYPES.index("FP16")]
        # Now the model misses two inputs: still a clean INVALID_ARGUMENT naming one.
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "missing input" in e.value.details()


def test_typed_contents_for_every_contents_datatype(request, custom_models):
    server = spawn(request, custom_models["echo-contents"], INTERFACE="kfserving", PROTOCOL="v2")
    fields = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
              "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
              "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
              "FP64": "fp64_contents", "BYTES": "bytes_contents"}
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        req = service_pb2.ModelInferRequest(model_name="echo-contents")
        for dt in CONTENTS_TYPES:
            tensor = req.inputs.add(name=dt.lower(), datatype=dt, shape=[3])
            getattr(tensor.contents, fields[dt]).extend(_sample(dt).tolist())
        result = triton.InferResult(stub.ModelInfer(req))
        for dt in CONTENTS_TYPES:
            got = result.as_numpy("out_" + dt.lower())
            if dt == "BYTES":
                assert list(got) == list(_sample(dt))
            else:
                np.testing.assert_array_equal(got, _sample(dt), err_msg=dt)
                assert got.dtype == _sample(dt).dtype, dt
        # A value out of range for the declared type is a bad request, not a silent wrap-around.
        req.inputs[CONTENTS_TYPES.index("INT8")].contents.int_contents[0] = 300
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "int8" in e.value.details().lower()
