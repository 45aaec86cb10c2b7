"""End-to-end tests of modzy.v2 with the generated ModzyModel stub, gRPC reflection and health checking."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from omi_runtime.conftest import spawn
from omi_runtime.grpc_stubs import modzy_model_v2_pb2 as pb
from omi_runtime.grpc_stubs import modzy_model_v2_pb2_grpc as pb_grpc


def _stub(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    return channel, pb_grpc.ModzyModelStub(channel)


@pytest.fixture(scope="module")
def server(request, digits_sklearn):
    models_dir, _ = digits_sklearn
    return spawn(request, models_dir, INTERFACE="modzy", PROTOCOL="v2", OMI_MAX_MESSAGE_BYTES=str(1 << 20))


@pytest.fixture(scope="module")
def stub(server):
    channel, stub = _stub(server)
    yield stub
    channel.close()


def _item(doc) -> pb.InputItem:
    return pb.InputItem(input={"input": json.dumps(doc).encode()})


def test_run_before_status_then_status(server, stub, digits_sklearn, digits_data):
    """Run works before Status (Chassis returned nothing there); Status then reports the loaded model."""
    _, model = digits_sklearn
    x, _ = digits_data
    reply = stub.Run(pb.RunRequest(inputs=[_item(x[:2].tolist()), _item({"input-0": x[2:3].tolist()})]))
    assert reply.status_code == 200
    assert [o.success for o in reply.outputs] == [True, True]
    first = json.loads(reply.outputs[0].output["results.json"])
    assert first["predict"] == model.predict(x[:2]).tolist()
    np.testing.assert_allclose(first["predict_proba"], model.predict_proba(x[:2]), atol=1e-5)
    second = json.loads(reply.outputs[1].output["results.json"])
    assert second["predict"] == model.predict(x[2:3]).tolist()

    status = stub.Status(pb.StatusRequest())
    assert (status.status_code, status.message) == (200, "Model Initialized Successfully.")
    assert status.model_info.model_name == "digits" and status.model_info.model_version == "1.0.0"
    assert status.model_info.model_author == "omi tests"
    assert status.description.summary == "Digits classifier"
    assert [i.filename for i in status.inputs] == ["input"]
    assert [o.filename for o in status.outputs] == ["results.json", "results.json"]
    assert status.features.batch_size == 64
    again = stub.Status(pb.StatusRequest())
    assert (again.status_code, again.message) == (200, "Model Already Initialized.")


def test_bad_items_fail_alone(stub, digits_data):
    x, _ = digits_data
    items = [
        _item(x[:1].tolist()),
        pb.InputItem(input={"input": b"{not json"}),
        _item([[1.0, 2.0]]),  # wrong shape
        pb.InputItem(input={"other": b"[]"}),  # wrong file name
        _item({"nope": [[0.0] * 64]}),  # unknown input
        _item([["a"] * 64]),  # not numbers
        _item(x[1:2].tolist()),
    ]
    reply = stub.Run(pb.RunRequest(inputs=items))
    assert reply.status_code == 200
    assert [o.success for o in reply.outputs] == [True, False, False, False, False, False, True]
    for out in reply.outputs[1:-1]:
        assert set(out.output) == {"error"} and out.output["error"]
    assert b"JSON" in reply.outputs[1].output["error"]
    assert b"shape" in reply.outputs[2].output["error"]
    assert b"'input'" in reply.outputs[3].output["error"]


def test_single_instance_items_are_batches_of_one(stub, digits_sklearn, digits_data):
    """One row per item, without the batch dimension of the declared [-1, 64], as a user sending one image sends it."""
    _, model = digits_sklearn
    x, _ = digits_data
    reply = stub.Run(pb.RunRequest(inputs=[_item(x[0].tolist()), _item({"input-0": x[1].tolist()}),
                                           _item(x[2:4].tolist()), _item(x[0].tolist()[:63])]))
    assert [o.success for o in reply.outputs] == [True, True, True, False]
    for out, rows in zip(reply.outputs, (x[0:1], x[1:2], x[2:4])):
        assert json.loads(out.output["results.json"])["predict"] == model.predict(rows).tolist()
    assert b"shape [63] does not match the declared [-1, 64]" in reply.outputs[3].output["error"]


def test_item_nested_past_the_parser_fails_alone(stub, digits_data):
    x, _ = digits_data
    deep = pb.InputItem(input={"input": b"[" * 100_000 + b"]" * 100_000})
    reply = stub.Run(pb.RunRequest(inputs=[deep, _item(x[0].tolist())]))
    assert [o.success for o in reply.outputs] == [False, True]
    assert b"file 'input' is nested deeper than the JSON parser allows" in reply.outputs[0].output["error"]


def test_empty_run_and_oversized(stub):
    assert len(stub.Run(pb.RunRequest()).outputs) == 0
    with pytest.raises(grpc.RpcError) as e:
        stub.Run(pb.RunRequest(inputs=[pb.InputItem(input={"input": b"0" * (2 << 20)})]))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.Status(pb.StatusRequest()).status_code == 200


def test_reflection_lists_modzy_methods(server):
    """What the Chassis compliance checker did: reflection must show ModzyModel with Status, Run, Shutdown."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol="ModzyModel")]
        replies = list(stub.ServerReflectionInfo(iter(requests)))
    services = {s.name for s in replies[0].list_services_response.service}
    assert {"ModzyModel", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= services
    methods = set()
    for raw in replies[1].file_descriptor_response.file_descriptor_proto:
        fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
        for service in fd.service:
            if service.name == "ModzyModel":
                methods |= {m.name for m in service.method}
    assert methods == {"Status", "Run", "Shutdown"}


def test_health(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "ModzyModel"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == \
                health_pb2.HealthCheckResponse.SERVING


def test_bytes_handler_and_shutdown(request, custom_models):
    server = spawn(request, custom_models["upper"], INTERFACE="modzy", PROTOCOL="v2")
    channel, stub = _stub(server)
    with channel:
        assert stub.Status(pb.StatusRequest()).message == "Model Initialized Successfully."
        reply = stub.Run(pb.RunRequest(inputs=[pb.InputItem(input={"input": b"abc"}),
                                               pb.InputItem(input={"input": b"please fail"}),
                                               pb.InputItem(input={"input": b"xyz"})]))
        assert [o.success for o in reply.outputs] == [True, False, True]
        assert json.loads(reply.outputs[0].output["results.json"]) == {"text": "ABC"}
        assert json.loads(reply.outputs[2].output["results.json"]) == {"text": "XYZ"}
        assert b"asked to fail" in reply.outputs[1].output["error"]
        bye = stub.Shutdown(pb.ShutdownRequest())
        assert (bye.status_code, bye.message) == (200, "Model Shutdown Successfully.")
    assert server.proc.wait(15) == 0


def test_failed_load_reports_500(request, custom_models):
    server = spawn(request, custom_models["broken"], INTERFACE="modzy", PROTOCOL="v2")
    channel, stub = _stub(server)
    with channel:
        status = stub.Status(pb.StatusRequest())
        assert status.status_code == 500 and status.message.startswith("Model Failed to Initialize.")
        assert "weights are corrupt" in status.message
        run = stub.Run(pb.RunRequest(inputs=[pb.InputItem(input={"input": b"[1]"})]))
        assert run.status_code == 500


def test_psc_model_port(request, digits_sklearn):
    """Modzy's platform sets PSC_MODEL_PORT when HTTP_PORT is unset."""
    from omi_runtime.conftest import ServerProcess, free_port

    models_dir, _ = digits_sklearn
    port = free_port()
    server = ServerProcess({"OMI_MODELS_DIR": str(models_dir), "INTERFACE": "modzy", "PROTOCOL": "v2",
                            "PSC_MODEL_PORT": str(port), "HTTP_PORT": ""})
    request.addfinalizer(server.kill)
    server.wait_ready()
    assert server.event("ready")["port"] == port
    server.port = port
    channel, stub = _stub(server)
    with channel:
        assert stub.Status(pb.StatusRequest()).status_code == 200


def test_onnx_model_over_modzy(request, digits_onnx, digits_data):
    models_dir, model = digits_onnx
    x, _ = digits_data
    server = spawn(request, models_dir, INTERFACE="modzy", PROTOCOL="v2")
    channel, stub = _stub(server)
    with channel:
        reply = stub.Run(pb.RunRequest(inputs=[_item(x[:4].tolist())]))
    result = json.loads(reply.outputs[0].output["results.json"])
    assert result["label"] == model.predict(x[:4]).tolist()
    np.testing.assert_allclose(result["probabilities"], model.predict_proba(x[:4]), atol=1e-4)
