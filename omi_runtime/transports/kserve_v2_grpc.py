"""KServe v2 / Open Inference Protocol over gRPC (kfserving.v2): `inference.GRPCInferenceService`.

Translates protobuf messages to dataplane calls and back. Inputs may use typed `contents` or
`raw_input_contents`; outputs always travel as `raw_output_contents` (what Triton does, and the only form that
carries FP16/BF16; Triton's and KServe's clients read it). Request id and parameters are echoed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from omi_runtime import codecs
from omi_runtime.dataplane import DataPlane, ModelRuntime
from omi_runtime.errors import BadRequest, InferenceError, ModelError
from omi_runtime.grpc_stubs import grpc_predict_v2_pb2 as pb
from omi_runtime.grpc_stubs import grpc_predict_v2_pb2_grpc as pb_grpc
from omi_runtime.logs import log
from omi_runtime.settings import Settings
from omi_runtime.tensors import InferRequest, InferResponse, Tensor
from omi_runtime.transports.grpc_server import GrpcServer, abort

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


def parameter_value(parameter: pb.InferParameter) -> Any:
    choice = parameter.WhichOneof("parameter_choice")
    return getattr(parameter, choice) if choice else None


def set_parameter(target: Any, key: str, value: Any) -> None:
    """Fill map<string, InferParameter> entry `key` from a Python value."""
    entry = target[key]
    if isinstance(value, bool):
        entry.bool_param = value
    elif isinstance(value, int):
        if value >= 2**63:
            entry.uint64_param = value
        else:
            entry.int64_param = value
    elif isinstance(value, float):
        entry.double_param = value
    elif value is not None:
        entry.string_param = str(value)


def decode_request(message: pb.ModelInferRequest) -> InferRequest:
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise BadRequest(f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs: give one "
                         f"per input, in order")
    inputs = []
    for index, tensor in enumerate(message.inputs):
        shape = list(tensor.shape)
        if raw:
            # "If this field is specified then InferInputTensor::contents must not be specified for any input tensor."
            if tensor.HasField("contents"):
                raise BadRequest(f"tensor {tensor.name!r}: has contents, but the request carries raw_input_contents: "
                                 "give each input's data in one of the two forms, not both")
            data = codecs.decode_raw(raw[index], tensor.datatype, shape, tensor.name)
        else:
            codecs.check_datatype(tensor.datatype, tensor.name)
            field = codecs.CONTENTS_FIELDS.get(tensor.datatype)
            if field is None:
                raise BadRequest(f"tensor {tensor.name!r}: {tensor.datatype} data travels only as "
                                 f"raw_input_contents")
            _check_contents_field(tensor, field)
            data = codecs.decode_contents(getattr(tensor.contents, field), tensor.datatype, shape, tensor.name)
        inputs.append(Tensor(tensor.name, tensor.datatype, shape, data))
    return InferRequest(
        inputs=inputs,
        model_name=message.model_name,
        model_version=message.model_version,
        id=message.id,
        parameters={k: parameter_value(v) for k, v in message.parameters.items()},
        outputs=[o.name for o in message.outputs],
    )


def _check_contents_field(tensor: pb.ModelInferRequest.InferInputTensor, field: str) -> None:
    """Each InferTensorContents field is the "representation for" its datatypes: data of a tensor in another
    field than its datatype's would be silently dropped, so it is refused."""
    for descriptor, values in tensor.contents.ListFields():
        if descriptor.name != field:
            raise BadRequest(f"tensor {tensor.name!r}: {tensor.datatype} data goes in contents.{field}, but "
                             f"contents.{descriptor.name} holds {len(values)} values")


def encode_response(response: InferResponse) -> pb.ModelInferResponse:
    message = pb.ModelInferResponse(model_name=response.model_name, model_version=response.model_version,
                                    id=response.id)
    for key, value in response.parameters.items():
        set_parameter(message.parameters, key, value)
    raw = message.raw_output_contents
    for tensor in response.outputs:
        out = message.outputs.add()
        out.name = tensor.name
        out.datatype = tensor.datatype
        out.shape.extend(tensor.shape)
        raw.append(codecs.encode_raw(tensor.data, tensor.datatype))
    return message


class KServeV2Servicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane

    async def ServerLive(self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext):
        return pb.ServerLiveResponse(live=self.dataplane.live())

    async def ServerReady(self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext):
        return pb.ServerReadyResponse(ready=self.dataplane.ready())

    async def ModelReady(self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext):
        try:
            return pb.ModelReadyResponse(ready=self.dataplane.model_ready(request.name, request.version))
        except InferenceError as e:
            await abort(context, e)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext):
        return pb.ServerMetadataResponse(**self.dataplane.server_metadata())

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext):
        try:
            meta = self.dataplane.model_metadata(request.name, request.version)
        except InferenceError as e:
            await abort(context, e)
            return
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensor(**t) for t in meta["inputs"]],
            outputs=[tensor(**t) for t in meta["outputs"]],
        )

    async def ModelInfer(self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext):
        try:
            response = await self.dataplane.infer(decode_request(request))
            return encode_response(response)
        except InferenceError as e:
            await abort(context, e)
        except Exception as e:  # a bug, not a bad request: keep serving, say what happened
            log("infer_failed", level="error", error=f"{type(e).__name__}: {e}")
            await abort(context, ModelError(f"internal error: {type(e).__name__}: {e}"))


def add_services(dataplane: DataPlane):
    """For GrpcServer: registers the servicer and returns the service names for health/reflection."""

    def add(server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(KServeV2Servicer(dataplane), server)
        return [SERVICE_NAME]

    return add


def create_transport(settings: Settings, dataplane: DataPlane, model: ModelRuntime, stop: asyncio.Event) -> GrpcServer:
    """The server `omi_runtime.server` starts for kfserving.v2 (see omi_contract.interfaces)."""
    return GrpcServer(settings, add_services(dataplane))
