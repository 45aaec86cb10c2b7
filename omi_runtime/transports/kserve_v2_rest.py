"""KServe v2 / Open Inference Protocol over REST: health, metadata and infer routes under /v2.

Not an OMI interface string of its own; served beside KServe v1 on the same HTTP server for debugging and for
KServe's v2 REST clients. `data` may be nested or flat (row-major); errors are 4xx with `{"error": "..."}`.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from omi_runtime import codecs
from omi_runtime.dataplane import DataPlane
from omi_runtime.errors import BadRequest
from omi_runtime.tensors import InferRequest, Tensor
from omi_runtime.transports.rest_common import json_body, json_response


def decode_infer(doc: dict[str, Any], name: str, version: str) -> InferRequest:
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise BadRequest('body needs "inputs": [{"name", "shape", "datatype", "data"}, ...]')
    inputs = []
    for index, item in enumerate(raw_inputs):
        if not isinstance(item, dict):
            raise BadRequest(f"inputs[{index}] must be an object")
        tname, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
        if not isinstance(tname, str) or not tname:
            raise BadRequest(f"inputs[{index}].name must be a non-empty string")
        if not isinstance(datatype, str):
            raise BadRequest(f"input {tname!r}: datatype must be a string")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise BadRequest(f"input {tname!r}: shape must be a list of integers")
        if "data" not in item:
            raise BadRequest(f"input {tname!r}: data is missing")
        data = codecs.decode_json(item["data"], datatype, shape, tname)
        inputs.append(Tensor(tname, datatype, shape, data, dict(item.get("parameters") or {})))
    outputs = doc.get("outputs") or []
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise BadRequest('"outputs" must be a list of {"name": ...}')
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest('"parameters" must be an object')
    request_id = doc.get("id")
    return InferRequest(
        inputs=inputs,
        model_name=name,
        model_version=version,
        id=str(request_id) if request_id is not None else str(uuid.uuid4()),
        parameters=parameters,
        outputs=[o["name"] for o in outputs],
    )


def add_routes(app: web.Application, dataplane: DataPlane) -> None:
    async def live(request: web.Request) -> web.Response:
        return json_response({"live": dataplane.live()})

    async def ready(request: web.Request) -> web.Response:
        is_ready = dataplane.ready()
        return json_response({"ready": is_ready}, status=200 if is_ready else 503)

    async def model_ready(request: web.Request) -> web.Response:
        info = request.match_info
        is_ready = dataplane.model_ready(info["name"], info.get("version", ""))
        return json_response({"name": info["name"], "ready": is_ready}, status=200 if is_ready else 503)

    async def server_metadata(request: web.Request) -> web.Response:
        return json_response(dataplane.server_metadata())

    async def model_metadata(request: web.Request) -> web.Response:
        info = request.match_info
        return json_response(dataplane.model_metadata(info["name"], info.get("version", "")))

    async def infer(request: web.Request) -> web.Response:
        info = request.match_info
        dataplane.get_model(info["name"], info.get("version", ""))  # 404 before parsing the body
        infer_request = decode_infer(await json_body(request), info["name"], info.get("version", ""))
        response = await dataplane.infer(infer_request)
        body: dict[str, Any] = {
            "model_name": response.model_name,
            "model_version": response.model_version,
            "id": response.id,
            "outputs": [
                {"name": t.name, "shape": list(t.shape), "datatype": t.datatype,
                 "data": codecs.encode_json(t.data, t.datatype)}
                for t in response.outputs
            ],
        }
        if response.parameters:
            body["parameters"] = response.parameters
        return json_response(body)

    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/v2", server_metadata)
    app.router.add_get("/v2/models/{name}", model_metadata)
    app.router.add_get("/v2/models/{name}/versions/{version}", model_metadata)
    app.router.add_get("/v2/models/{name}/ready", model_ready)
    app.router.add_get("/v2/models/{name}/versions/{version}/ready", model_ready)
    app.router.add_post("/v2/models/{name}/infer", infer)
    app.router.add_post("/v2/models/{name}/versions/{version}/infer", infer)
