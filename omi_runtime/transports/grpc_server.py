"""Shared gRPC server setup: message-size limits, standard health service, server reflection, error mapping."""

from __future__ import annotations

from typing import Any, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from omi_runtime.errors import ConfigError, InferenceError
from omi_runtime.logs import log
from omi_runtime.settings import Settings


class GrpcServer:
    """A grpc.aio server with health + reflection, started/stopped by omi_runtime.server."""

    def __init__(self, settings: Settings, add_services: Callable[[grpc.aio.Server], list[str]]) -> None:
        limit = settings.max_message_bytes
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),  # a port already in use must fail loudly, not be shared
            ],
            maximum_concurrent_rpcs=None,
        )
        service_names = add_services(self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names = service_names
        reflection.enable_server_reflection(
            [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        address = f"{settings.host}:{settings.port}"
        try:
            bound = self.server.add_insecure_port(address)
        except RuntimeError:
            raise ConfigError(f"cannot listen on {address} (HTTP_PORT): address in use or not permitted") from None
        if not bound:
            raise ConfigError(f"cannot listen on {address} (HTTP_PORT): port in use or not permitted")

    async def set_serving(self, serving: bool) -> None:
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    async def start(self) -> None:
        await self.server.start()

    async def stop(self, grace: float) -> None:
        await self.set_serving(False)
        await self.server.stop(grace)


async def abort(context: grpc.aio.ServicerContext, error: InferenceError) -> Any:
    """End an RPC with the status code the error carries (INVALID_ARGUMENT, NOT_FOUND, ...)."""
    log("request_rejected", level="warning", code=error.grpc_code, error=str(error))
    await context.abort(getattr(grpc.StatusCode, error.grpc_code), str(error))
