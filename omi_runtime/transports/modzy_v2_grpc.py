"""Modzy v2 gRPC (modzy.v2): the `ModzyModel` service (no proto package: /ModzyModel/Status|Run|Shutdown).

- Status loads the model on first call (200 "Model Initialized Successfully." / 500 "Model Failed to
  Initialize."), then answers 200 "Model Already Initialized.", with the model's description from metadata.
- Run also loads lazily, so it works before Status (unlike Chassis). One OutputItem per InputItem, in order;
  a failing item gets success=false and output["error"], the others still succeed.
- Shutdown answers 200 "Model Shutdown Successfully." and then asks the process to stop (exit 0).

Items of bytes handlers go to `process()` as they are. For tensor handlers, each item's file under the first
input's filename (default `input`) is JSON: a list of rows for the first input, or an object of tensors by input
name (inputs declaring their own filename may also come in their own file); a single row of an input declared
`[-1, ...]` (one image, one instance) is served as a batch of one. A BYTES input declaring only media types other
than JSON (`text/plain`) takes its file as it is: one element, a batch of one. Results: for each output filename
(default `results.json`), a JSON object of that file's outputs by name.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, Mapping, Sequence

import grpc
import numpy as np

from omi_contract.record import ModelRecord
from omi_runtime import codecs
from omi_runtime.dataplane import DataPlane, ModelRuntime, handler_failure
from omi_runtime.errors import BadRequest, InferenceError
from omi_runtime.grpc_stubs import modzy_model_v2_pb2 as pb
from omi_runtime.grpc_stubs import modzy_model_v2_pb2_grpc as pb_grpc
from omi_runtime.logs import log
from omi_runtime.settings import Settings
from omi_runtime.transports.grpc_server import GrpcServer

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ModzyModel"].full_name
INITIALIZED = "Model Initialized Successfully."
ALREADY_INITIALIZED = "Model Already Initialized."
FAILED = "Model Failed to Initialize."
SHUTDOWN = "Model Shutdown Successfully."


def item_to_inputs(meta: ModelRecord, item: Mapping[str, bytes]) -> dict[str, np.ndarray]:
    """Decode one Modzy input item of a tensor model into arrays of the declared datatypes."""
    key = meta.input_filename(0)
    if key not in item:
        raise BadRequest(f"input item has no file {key!r} (got {', '.join(map(repr, item)) or 'none'})")
    if meta.inputs[0].raw_file:
        if len(meta.inputs) > 1:
            raise BadRequest(f"file {key!r} is one {meta.inputs[0].media_types[0]} element; the model declares "
                             f"{len(meta.inputs)} inputs")
        return {meta.inputs[0].name: np.array([item[key]], dtype=object)}
    doc = _load_json(item[key], key)
    inputs: dict[str, np.ndarray] = {}
    names = [t.name for t in meta.inputs]
    if isinstance(doc, dict):
        unknown = set(doc) - set(names)
        if unknown:
            raise BadRequest(f"file {key!r}: unknown input {sorted(unknown)[0]!r}; inputs are {', '.join(names)}")
        for spec in meta.inputs:
            if spec.name in doc:
                inputs[spec.name] = codecs.decode_json(doc[spec.name], spec.datatype, None, spec.name)
    elif isinstance(doc, list):
        first = meta.inputs[0]
        inputs[first.name] = codecs.decode_json(doc, first.datatype, None, first.name)
    else:
        raise BadRequest(f"file {key!r}: expected a JSON list of rows or an object of tensors by input name")
    for index, spec in enumerate(meta.inputs):
        own = meta.input_filename(index)
        if spec.name not in inputs and own != key and own in item:
            inputs[spec.name] = codecs.decode_json(_load_json(item[own], own), spec.datatype, None, spec.name)
    # A Modzy item is naturally one instance (one image, one row): serve it as a batch of one.
    specs = {spec.name: spec for spec in meta.inputs}
    return {name: codecs.as_batch(array, specs[name].shape) for name, array in inputs.items()}


def _load_json(data: bytes, filename: str) -> Any:
    return codecs.loads_json(data, f"file {filename!r}")


def outputs_to_item(meta: ModelRecord, outputs: Mapping[str, np.ndarray]) -> dict[str, bytes]:
    files: dict[str, dict[str, Any]] = {}
    for index, spec in enumerate(meta.outputs):
        files.setdefault(meta.output_filename(index), {})[spec.name] = codecs.nested_json(outputs[spec.name],
                                                                                           spec.datatype)
    return {name: json.dumps(doc, separators=(",", ":")).encode() for name, doc in files.items()}


def _item_bytes(result: Mapping[str, Any]) -> dict[str, bytes]:
    return {str(k): (v if isinstance(v, bytes) else str(v).encode("utf-8")) for k, v in result.items()}


class ModzyServicer(pb_grpc.ModzyModelServicer):
    def __init__(self, dataplane: DataPlane, model: ModelRuntime, on_shutdown: Callable[[], None]) -> None:
        self.dataplane = dataplane
        self.model = model
        self.on_shutdown = on_shutdown
        self._status_answered = False

    def _status(self, code: int, message: str) -> pb.StatusResponse:
        meta = self.model.metadata
        resources, timeout = meta.resources, meta.timeout
        return pb.StatusResponse(
            status_code=code,
            status="OK" if code == 200 else "Internal Server Error",
            message=message,
            model_info=pb.ModelInfo(model_name=meta.name, model_version=meta.version,
                                    model_author=", ".join(meta.authors), model_type=meta.format,
                                    source=meta.source),
            description=pb.ModelDescription(summary=meta.description),
            inputs=[pb.ModelInput(filename=meta.input_filename(i), accepted_media_types=list(t.media_types),
                                  max_size=t.max_size, description=t.description)
                    for i, t in enumerate(meta.inputs)],
            outputs=[pb.ModelOutput(filename=meta.output_filename(i),
                                    media_type=(t.media_types[0] if t.media_types else "application/json"),
                                    max_size=t.max_size, description=t.description)
                     for i, t in enumerate(meta.outputs)],
            resources=pb.ModelResources(required_ram=str(resources.get("ram", "")),
                                        num_cpus=float(resources.get("cpus", 0) or 0),
                                        num_gpus=int(resources.get("gpus", 0) or 0)),
            timeout=pb.ModelTimeout(status=str(timeout.get("status", "")), run=str(timeout.get("run", ""))),
            features=pb.ModelFeatures(batch_size=meta.max_batch_size or 1, results_format="json"),
        )

    async def Status(self, request: pb.StatusRequest, context: grpc.aio.ServicerContext) -> pb.StatusResponse:
        if not await self.model.load():
            return self._status(500, f"{FAILED} {self.model.load_error or ''}".strip())
        message = ALREADY_INITIALIZED if self._status_answered else INITIALIZED
        self._status_answered = True
        return self._status(200, message)

    async def Run(self, request: pb.RunRequest, context: grpc.aio.ServicerContext) -> pb.RunResponse:
        if not await self.model.load():
            return pb.RunResponse(status_code=500, status="Internal Server Error",
                                  message=f"{FAILED} {self.model.load_error or ''}".strip())
        items = [dict(item.input) for item in request.inputs]
        results: Sequence[Any]  # per item: its output files, or the exception that failed it alone
        try:
            if self.model.can_process:
                results = await self.dataplane.process(self.model.metadata.name, items)
            else:
                # Concurrent submission lets the batcher coalesce the items into few predict calls.
                results = await asyncio.gather(*(self._run_tensor_item(i) for i in items), return_exceptions=True)
        except InferenceError as e:
            return pb.RunResponse(status_code=500, status="Internal Server Error", message=str(e))
        response = pb.RunResponse(status_code=200, status="OK", message="Inference executed")
        for result in results:
            out = response.outputs.add()
            if isinstance(result, BaseException):
                out.success = False
                out.output["error"] = str(handler_failure(result)).encode("utf-8")
            else:
                out.success = True
                for key, value in _item_bytes(result).items():
                    out.output[key] = value
        return response

    async def _run_tensor_item(self, item: Mapping[str, bytes]) -> dict[str, bytes]:
        meta = self.model.metadata
        outputs = await self.dataplane.predict(meta.name, item_to_inputs(meta, item))
        return outputs_to_item(meta, outputs)

    async def Shutdown(self, request: pb.ShutdownRequest, context: grpc.aio.ServicerContext) -> pb.ShutdownResponse:
        log("shutdown_requested", via="ModzyModel/Shutdown")
        # Stop shortly after answering, so the response reaches the caller first.
        asyncio.get_running_loop().call_later(0.05, self.on_shutdown)
        return pb.ShutdownResponse(status_code=200, status="OK", message=SHUTDOWN)


def add_services(dataplane: DataPlane, model: ModelRuntime, on_shutdown: Callable[[], None]):
    def add(server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_ModzyModelServicer_to_server(ModzyServicer(dataplane, model, on_shutdown), server)
        return [SERVICE_NAME]

    return add


def create_transport(settings: Settings, dataplane: DataPlane, model: ModelRuntime, stop: asyncio.Event) -> GrpcServer:
    """The server `omi_runtime.server` starts for modzy.v2 (see omi_contract.interfaces); Shutdown stops it."""
    return GrpcServer(settings, add_services(dataplane, model, stop.set))
