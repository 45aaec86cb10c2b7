"""What the smoke test asks a running server, per OMI interface: readiness, reflection, samples, outputs.

Each probe talks to one server already started by `runner` and adds violations to a Collector; none raises
for a protocol problem. kfserving.v1 uses plain HTTP (urllib), kfserving.v2 and modzy.v2 the project's generated
gRPC stubs plus standard server reflection.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import grpc

from omi_contract import interfaces
from omi_contract.record import DEFAULT_INPUT_FILENAME, DEFAULT_OUTPUT_FILENAME, is_raw_file
from omi_contract.violation import Collector
from omi_runtime.smoke.tensors import decode_raw, encode_raw, json_shape, judge_output

KSERVE_METHODS = ("ModelReady", "ModelMetadata", "ModelInfer")
_V1_MODELS = interfaces.served("kfserving.v1").service  # the REST path root
MODZY_METHODS = ("Status", "Run", "Shutdown")
LOAD_FIX = "fix the model file or model.yaml, then package again"  # for a model that does not load
GRPC_OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]


@dataclass
class Probe:
    """One running server: the model it serves, where it listens, and how much time is left."""

    model: Mapping[str, Any]  # omi-model.json
    port: int
    deadline: float  # time.monotonic() after which nothing more is attempted
    call_timeout: float
    out: Collector
    exited: Callable[[float], bool] = lambda timeout: False  # whether the server process ended within `timeout`
    load_failed: bool = False  # the server said the model does not load (reported once, by the probe that saw it)

    @property
    def name(self) -> str:
        return str(self.model["name"])

    def timeout(self) -> float:
        return max(0.1, min(self.call_timeout, self.deadline - time.monotonic()))

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def samples(self) -> List[Mapping[str, Any]]:
        return [s for s in self.model.get("samples") or [] if isinstance(s, dict) and isinstance(s.get("inputs"), dict)]

    def outputs(self) -> List[Mapping[str, Any]]:
        return list(self.model.get("outputs") or [])

    def inputs(self) -> List[Mapping[str, Any]]:
        return list(self.model.get("inputs") or [])

    def judge(self, field: str, name: str, datatype: Optional[str], shape: Sequence[int], value: Any,
              sample: Mapping[str, Any]) -> None:
        declared = next((o for o in self.outputs() if o.get("name") == name), None)
        if declared is None:
            return
        expected = (sample.get("outputs") or {}).get(name)
        for rule, suffix, problem, fix in judge_output(name, datatype, shape, value, declared, expected,
                                                       sample.get("tolerance")):
            self.out.add(rule, f"{field}.{suffix}", problem, fix)


# --- kfserving.v1 (REST) ----------------------------------------------------------------------------------------

def _http(probe: Probe, method: str, path: str, body: Optional[Any] = None) -> Tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{probe.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=probe.timeout()) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")[:200]


def http_ready(port: int, name: str, timeout: float) -> bool:
    """One readiness poll for kfserving.v1: GET /v1/models/<name> answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{_V1_MODELS}/{name}", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _instances(probe: Probe, sample: Mapping[str, Any]) -> List[Any]:
    """KServe v1 instances: the first input's rows, or per-row objects keyed by input name."""
    inputs = sample["inputs"]
    if len(inputs) == 1:
        value = next(iter(inputs.values()))
        return value if isinstance(value, list) else [value]
    rows = max(len(v) if isinstance(v, list) else 1 for v in inputs.values())
    return [{k: (v[i] if isinstance(v, list) else v) for k, v in inputs.items()} for i in range(rows)]


def probe_kfserving_v1(probe: Probe) -> None:
    name = probe.name
    path = f"{_V1_MODELS}/{name}"
    try:
        status, body = _http(probe, "GET", path)
    except OSError as e:
        probe.out.add("OMI402", f"GET {path}", f"failed: {e}", "make the server answer readiness requests")
        return
    if status != 200 or not isinstance(body, dict) or body.get("ready") is not True:
        probe.out.add("OMI402", f"GET {path}", f"answered {status} {_short(body)}, not ready",
                      'answer 200 {"name": ..., "ready": true} once the model is loaded')
    first = probe.outputs()[0] if probe.outputs() else None
    for i, sample in enumerate(probe.samples()):
        if probe.expired():
            return
        field = f"POST {path}:predict samples[{i}]"
        try:
            status, body = _http(probe, "POST", f"{path}:predict", {"instances": _instances(probe, sample)})
        except OSError as e:
            probe.out.add("OMI403", field, f"failed: {e}", "make the server answer :predict")
            continue
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("predictions"), list):
            probe.out.add("OMI403", field, f"answered {status} {_short(body)}",
                          'answer 200 {"predictions": [...]} for the sample')
            continue
        if first is not None:
            predictions = body["predictions"]
            probe.judge(f"{field} predictions", first["name"], None, json_shape(predictions), predictions, sample)


# --- gRPC common -----------------------------------------------------------------------------------------------

def grpc_ready(port: int, timeout: float) -> bool:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


def _reflect(channel: grpc.Channel, timeout: float, **request: Any) -> Any:
    """One request on the standard ServerReflectionInfo stream."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=timeout)
    return next(iter(responses))


def _reflected_methods(channel: grpc.Channel, service: str, timeout: float) -> Tuple[List[str], Optional[List[str]]]:
    """(services listed by reflection, methods of `service` or None when it is not described)."""
    from google.protobuf import descriptor_pb2

    listed = _reflect(channel, timeout, list_services="")
    services = [s.name for s in listed.list_services_response.service]
    if service not in services:
        return services, None
    answer = _reflect(channel, timeout, file_containing_symbol=service)
    for raw in answer.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        for described in proto.service:
            # Full names: "<package>.<Service>", or the bare name for a proto without a package (ModzyModel).
            if (f"{proto.package}.{described.name}" if proto.package else described.name) == service:
                return services, [m.name for m in described.method]
    return services, []


def check_reflection(probe: Probe, channel: grpc.Channel, service: str, methods: Sequence[str]) -> None:
    field = f"reflection {service}"
    try:
        services, found = _reflected_methods(channel, service, probe.timeout())
    except (grpc.RpcError, StopIteration, ValueError) as e:
        probe.out.add("OMI406", "reflection", f"server reflection failed: {_rpc_error(e)}",
                      "enable gRPC server reflection (grpcio-reflection)")
        return
    if found is None:
        probe.out.add("OMI406", field, f"is not listed (services: {', '.join(sorted(services)) or 'none'})",
                      f"register {service} with server reflection")
        return
    missing = [m for m in methods if m not in found]
    if missing:
        probe.out.add("OMI406", field, f"lacks {', '.join(missing)}", f"implement {', '.join(methods)}")


def _rpc_error(e: BaseException) -> str:
    if isinstance(e, grpc.RpcError) and hasattr(e, "code"):
        return f"{e.code().name}: {e.details()}"  # type: ignore[attr-defined]
    return f"{type(e).__name__}: {e}"


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# --- kfserving.v2 (gRPC) ----------------------------------------------------------------------------------------

def probe_kfserving_v2(probe: Probe) -> None:
    from omi_runtime.grpc_stubs import grpc_predict_v2_pb2 as pb
    from omi_runtime.grpc_stubs import grpc_predict_v2_pb2_grpc as pb_grpc

    with grpc.insecure_channel(f"127.0.0.1:{probe.port}", options=GRPC_OPTIONS) as channel:
        check_reflection(probe, channel, interfaces.served("kfserving.v2").service, KSERVE_METHODS)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for rpc, request, attribute in (("ServerLive", pb.ServerLiveRequest(), "live"),
                                        ("ServerReady", pb.ServerReadyRequest(), "ready"),
                                        ("ModelReady", pb.ModelReadyRequest(name=probe.name), "ready")):
            try:
                answer = getattr(stub, rpc)(request, timeout=probe.timeout())
                if not getattr(answer, attribute):
                    probe.out.add("OMI402", rpc, f"answered {attribute}=false", "report ready once the model is loaded")
            except grpc.RpcError as e:
                probe.out.add("OMI402", rpc, f"failed: {_rpc_error(e)}", f"implement {rpc}")
        try:
            metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name=probe.name), timeout=probe.timeout())
            served = {t.name: t.datatype for t in metadata.outputs}
            for output in probe.outputs():
                if served.get(output["name"]) != output["datatype"]:
                    probe.out.add("OMI404", f"ModelMetadata outputs.{output['name']}",
                                  f"is {served.get(output['name'], 'missing')}, declared {output['datatype']}",
                                  "serve the outputs model.yaml declares")
        except grpc.RpcError as e:
            probe.out.add("OMI402", "ModelMetadata", f"failed: {_rpc_error(e)}", "implement ModelMetadata")
        declared_inputs = {t["name"]: t for t in probe.inputs()}
        for i, sample in enumerate(probe.samples()):
            if probe.expired():
                return
            field = f"ModelInfer samples[{i}]"
            request = pb.ModelInferRequest(model_name=probe.name, id=f"omi-smoke-{i}")
            for name, value in sample["inputs"].items():
                datatype = declared_inputs.get(name, {}).get("datatype", "BYTES")
                raw, shape = encode_raw(value, datatype)
                request.inputs.add(name=name, datatype=datatype, shape=shape)
                request.raw_input_contents.append(raw)
            try:
                response = stub.ModelInfer(request, timeout=probe.timeout())
            except grpc.RpcError as e:
                probe.out.add("OMI403", field, f"failed: {_rpc_error(e)}", "make the model accept the sample")
                continue
            _judge_infer(probe, field, response, sample)


def _judge_infer(probe: Probe, field: str, response: Any, sample: Mapping[str, Any]) -> None:
    answered = {t.name: (index, t) for index, t in enumerate(response.outputs)}
    for output in probe.outputs():
        if output["name"] not in answered:
            probe.out.add("OMI404", f"{field} outputs.{output['name']}", "is missing from the response",
                          "return every declared output")
            continue
        index, tensor = answered[output["name"]]
        shape = list(tensor.shape)
        try:
            if index < len(response.raw_output_contents):
                value = decode_raw(response.raw_output_contents[index], tensor.datatype, shape)
            else:
                value = _contents_value(tensor, shape)
        except ValueError as e:
            probe.out.add("OMI404", f"{field} outputs.{output['name']}", f"cannot be decoded: {e}",
                          "send raw_output_contents matching datatype and shape")
            continue
        probe.judge(f"{field} outputs.{output['name']}", output["name"], tensor.datatype, shape, value, sample)


def _contents_value(tensor: Any, shape: List[int]) -> Any:
    import numpy as np

    field = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
             "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
             "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
             "FP64": "fp64_contents", "BYTES": "bytes_contents"}.get(tensor.datatype)
    if field is None:
        raise ValueError(f"{tensor.datatype} travels only as raw_output_contents")
    values = list(getattr(tensor.contents, field))
    if tensor.datatype == "BYTES":
        values = [v.decode("utf-8", "replace") for v in values]
    return np.array(values, dtype=object).reshape(shape).tolist()


# --- modzy.v2 (gRPC) --------------------------------------------------------------------------------------------

def _filename(tensors: Sequence[Mapping[str, Any]], index: int, default: str) -> str:
    return str(tensors[index].get("filename") or default) if index < len(tensors) else default


def probe_modzy_v2(probe: Probe) -> None:
    """Status, then Run with every sample, then Shutdown, after which the process must end."""
    from omi_runtime.grpc_stubs import modzy_model_v2_pb2 as pb
    from omi_runtime.grpc_stubs import modzy_model_v2_pb2_grpc as pb_grpc
    from omi_runtime.transports import modzy_v2_grpc as modzy

    with grpc.insecure_channel(f"127.0.0.1:{probe.port}", options=GRPC_OPTIONS) as channel:
        check_reflection(probe, channel, interfaces.served("modzy.v2").service, MODZY_METHODS)
        stub = pb_grpc.ModzyModelStub(channel)
        try:
            status = stub.Status(pb.StatusRequest(), timeout=probe.timeout())
            if status.status_code == 500 and status.message.startswith(modzy.FAILED):
                # The model does not load: said once, as for the interfaces that load it at start (Run would only
                # repeat it, once per sample).
                probe.out.add("OMI401", "load", status.message[len(modzy.FAILED):].strip() or "(no reason given)",
                              LOAD_FIX, where=f"model {probe.name}")
                probe.load_failed = True
            elif status.status_code != 200:
                probe.out.add("OMI407", "Status", f"answered {status.status_code} {status.message!r}",
                              "load the model on Status and answer 200")
        except grpc.RpcError as e:
            probe.out.add("OMI407", "Status", f"failed: {_rpc_error(e)}", "implement ModzyModel/Status")
        if not probe.load_failed:
            _modzy_run(probe, pb, stub)
        try:
            shutdown = stub.Shutdown(pb.ShutdownRequest(), timeout=probe.timeout())
            if shutdown.status_code != 200:
                probe.out.add("OMI407", "Shutdown", f"answered {shutdown.status_code} {shutdown.message!r}",
                              "answer 200 and exit")
        except grpc.RpcError as e:
            probe.out.add("OMI407", "Shutdown", f"failed: {_rpc_error(e)}", "implement ModzyModel/Shutdown")
            return
    if not probe.exited(probe.timeout()):
        probe.out.add("OMI407", "Shutdown", "the process did not exit after Shutdown",
                      "stop the server after answering Shutdown")


def _rows(sample: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    """A sample of several rows as samples of one row each: what a model whose Modzy item is one raw element needs
    (an expected output without a row for it is not judged)."""
    name, rows = next(iter(sample["inputs"].items()))
    expected = sample.get("outputs") or {}
    return [{**sample, "inputs": {name: [row]},
             "outputs": {k: [v[i]] for k, v in expected.items() if isinstance(v, list) and i < len(v)}}
            for i, row in enumerate(rows if isinstance(rows, list) else [rows])]


def _element_bytes(value: Any) -> bytes:
    """A sample's BYTES element as KServe writes it: text, or {"b64": ...} for binary."""
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(str(value["b64"]))
    return str(value).encode("utf-8")


def _modzy_run(probe: Probe, pb: Any, stub: Any) -> None:
    samples = probe.samples()
    if not samples:
        return
    input_file = _filename(probe.inputs(), 0, DEFAULT_INPUT_FILENAME)
    declared = probe.inputs()[0] if probe.inputs() else {}
    raw = len(probe.inputs()) == 1 and is_raw_file(declared.get("datatype"), declared.get("media_types") or [])
    if raw:
        samples = [row for sample in samples for row in _rows(sample)]
    request = pb.RunRequest()
    for sample in samples:
        inputs = sample["inputs"]
        if raw:
            request.inputs.add().input[input_file] = _element_bytes(next(iter(inputs.values()))[0])
            continue
        document = next(iter(inputs.values())) if len(inputs) == 1 else dict(inputs)
        request.inputs.add().input[input_file] = json.dumps(document).encode()
    try:
        response = stub.Run(request, timeout=probe.timeout())
    except grpc.RpcError as e:
        probe.out.add("OMI407", "Run", f"failed: {_rpc_error(e)}", "implement ModzyModel/Run")
        return
    if response.status_code != 200:
        probe.out.add("OMI407", "Run", f"answered {response.status_code} {response.message!r}",
                      "answer 200 with one output item per input item")
        return
    if len(response.outputs) != len(samples):
        probe.out.add("OMI407", "Run", f"answered {len(response.outputs)} output items for {len(samples)} inputs",
                      "answer one output item per input item, in order")
    by_file: Dict[str, List[Mapping[str, Any]]] = {}
    for index, output in enumerate(probe.outputs()):
        by_file.setdefault(_filename(probe.outputs(), index, DEFAULT_OUTPUT_FILENAME), []).append(output)
    for i, (sample, item) in enumerate(zip(samples, response.outputs)):
        field = f"Run samples[{i}]"
        if not item.success:
            error = item.output["error"].decode("utf-8", "replace") if "error" in item.output else ""
            probe.out.add("OMI403", field, f"failed: {error or 'success=false'}", "make the model accept the sample")
            continue
        for filename, outputs in by_file.items():
            if filename not in item.output:
                probe.out.add("OMI404", f"{field} {filename}", "is missing from the output item",
                              "write every declared output file")
                continue
            try:
                document = json.loads(item.output[filename])
            except ValueError:
                probe.out.add("OMI404", f"{field} {filename}", "is not JSON", "write results as JSON")
                continue
            for output in outputs:
                if not isinstance(document, dict) or output["name"] not in document:
                    probe.out.add("OMI404", f"{field} {filename}.{output['name']}", "is missing",
                                  "write every declared output by name")
                    continue
                value = document[output["name"]]
                probe.judge(f"{field} {filename}.{output['name']}", output["name"], None, json_shape(value), value,
                            sample)
