"""KServe v1 REST (kfserving.v1): list, readiness, `:predict` and `:explain`; the v2 REST routes ride along.

Tensor models: `instances` (or `inputs`) become the first declared input (or, when every instance is an object
keyed by input names, one tensor per input); `predictions` is the first declared output as nested lists. BYTES
elements use KServe's `{"b64": "..."}` (plain strings are taken as UTF-8).
Bytes-only (Chassis-style) handlers: each instance is one item: a base64 string or `{"b64": ...}` (Chassis's
convention), any other JSON value is passed as its JSON text; each prediction is the item's first output
decoded as UTF-8 (or `{"b64": ...}` when it is not text).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any, Sequence

import numpy as np
from aiohttp import web

from omi_contract.record import ModelRecord
from omi_runtime import codecs
from omi_runtime.dataplane import DataPlane, ModelRuntime
from omi_runtime.errors import BadRequest, InferenceError
from omi_runtime.settings import Settings
from omi_runtime.transports import kserve_v2_rest
from omi_runtime.transports.rest_common import RestServer, json_body, json_response, make_app


def instances_to_inputs(meta: ModelRecord, instances: list[Any]) -> dict[str, np.ndarray]:
    names = {t.name for t in meta.inputs}
    keyed = bool(instances) and all(isinstance(i, dict) and i and set(i) <= names for i in instances)
    if keyed:
        return {
            spec.name: codecs.decode_json([i.get(spec.name) for i in instances], spec.datatype, None, spec.name)
            for spec in meta.inputs
            if any(spec.name in i for i in instances)
        }
    first = meta.inputs[0]
    return {first.name: codecs.decode_json(instances, first.datatype, None, first.name)}


def instance_bytes(instance: Any, index: int) -> bytes:
    if isinstance(instance, dict) and set(instance) == {"b64"} or isinstance(instance, str):
        encoded = instance["b64"] if isinstance(instance, dict) else instance
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise BadRequest(f"instances[{index}]: not valid base64 (bytes-oriented models take base64 "
                             f"strings or {{\"b64\": ...}})") from None
    return json.dumps(instance).encode()


def _instances(doc: dict[str, Any]) -> list[Any]:
    instances = doc.get("instances", doc.get("inputs"))
    if not isinstance(instances, list) or not instances:
        raise BadRequest('body needs "instances": [...] (a non-empty list)')
    return instances


async def _predict_bytes(dataplane: DataPlane, model: ModelRuntime, instances: Sequence[Any]) -> list[Any]:
    meta = model.metadata
    key, out_key = meta.input_filename(), meta.output_filename()
    items = [{key: instance_bytes(x, i)} for i, x in enumerate(instances)]
    predictions = []
    for index, result in enumerate(await dataplane.process(meta.name, items)):
        if isinstance(result, Exception):
            status = result if isinstance(result, InferenceError) else BadRequest(str(result))
            raise type(status)(f"instances[{index}]: {status}")
        value = result.get(out_key, next(iter(result.values()), b"")) if result else b""
        predictions.append(codecs.bytes_to_json(value))
    return predictions


def build_app(settings: Settings, dataplane: DataPlane) -> web.Application:
    app = make_app(settings)

    async def list_models(request: web.Request) -> web.Response:
        return json_response({"models": list(dataplane.models)})

    async def model_status(request: web.Request) -> web.Response:
        model = dataplane.get_model(request.match_info["name"])
        return json_response({"name": model.metadata.name, "ready": model.ready})

    async def predict(request: web.Request) -> web.Response:
        model = dataplane.get_model(request.match_info["name"])
        instances = _instances(await json_body(request))
        meta = model.metadata
        if model.ready and not model.can_predict and model.can_process:
            return json_response({"predictions": await _predict_bytes(dataplane, model, instances)})
        outputs = await dataplane.predict(meta.name, instances_to_inputs(meta, instances))
        first = meta.outputs[0]
        return json_response({"predictions": codecs.nested_json(outputs[first.name], first.datatype)})

    async def explain(request: web.Request) -> web.Response:
        model = dataplane.get_model(request.match_info["name"])
        if model.ready and not model.can_explain:
            return json_response({"error": f"model {model.metadata.name} does not provide explanations (its "
                                           f"handler has no explain method)"}, status=501)
        meta = model.metadata
        inputs = instances_to_inputs(meta, _instances(await json_body(request)))
        explanations = await dataplane.explain(meta.name, inputs)
        outputs = await dataplane.predict(meta.name, inputs)
        first = meta.outputs[0]
        return json_response({"predictions": codecs.nested_json(outputs[first.name], first.datatype),
                              "explanations": _jsonable(explanations)})

    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{name:[^/:]+}", model_status)
    app.router.add_post("/v1/models/{name:[^/:]+}:predict", predict)
    app.router.add_post("/v1/models/{name:[^/:]+}:explain", explain)
    kserve_v2_rest.add_routes(app, dataplane)
    return app


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return codecs.nested_json(value, codecs.datatype_of(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return codecs.bytes_to_json(value)
    return value


def create_server(settings: Settings, dataplane: DataPlane) -> RestServer:
    return RestServer(settings, build_app(settings, dataplane))


def create_transport(settings: Settings, dataplane: DataPlane, model: ModelRuntime, stop: asyncio.Event) -> RestServer:
    """The server `omi_runtime.server` starts for kfserving.v1 (see omi_contract.interfaces)."""
    return create_server(settings, dataplane)
