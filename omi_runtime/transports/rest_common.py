"""What the REST transports share: JSON bodies, `{"error": ...}` responses, the error middleware, the server."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from omi_runtime import codecs
from omi_runtime.errors import BadRequest, ConfigError, InferenceError
from omi_runtime.logs import log
from omi_runtime.settings import Settings


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status=status)


async def json_body(request: web.Request) -> dict[str, Any]:
    body = await request.read()  # raises 413 beyond client_max_size (OMI_MAX_MESSAGE_BYTES)
    doc = codecs.loads_json(body, "request body")
    if not isinstance(doc, dict):
        raise BadRequest("request body must be a JSON object")
    return doc


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure becomes `{"error": "..."}` with the right status; the server keeps serving."""
    try:
        return await handler(request)
    except InferenceError as e:
        log("request_rejected", level="warning", path=request.path, status=e.http_status, error=str(e))
        return error_response(e.http_status, str(e))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        message = e.text if e.text and not e.text.startswith(f"{e.status}:") else e.reason
        if e.status == 413:
            message = f"request body too large: {message} (limit: OMI_MAX_MESSAGE_BYTES)"
        elif e.status == 404:
            message = f"no route for {request.method} {request.path}"
        return error_response(e.status, message)
    except Exception as e:  # a bug: log it, answer 500, keep serving
        log("request_failed", level="error", path=request.path, error=f"{type(e).__name__}: {e}")
        return error_response(500, f"internal error: {type(e).__name__}: {e}")


class RestServer:
    """An aiohttp server started/stopped by omi_runtime.server."""

    def __init__(self, settings: Settings, app: web.Application) -> None:
        self.settings = settings
        self.app = app
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=10.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.settings.host, self.settings.port, reuse_port=False)
        try:
            await site.start()
        except OSError as e:
            await self.runner.cleanup()
            raise ConfigError(f"cannot listen on {self.settings.host}:{self.settings.port} (HTTP_PORT): "
                              f"{e.strerror or e}") from None

    async def stop(self, grace: float) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def make_app(settings: Settings) -> web.Application:
    return web.Application(client_max_size=settings.max_message_bytes, middlewares=[error_middleware])
