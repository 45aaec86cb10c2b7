"""Process lifecycle: read settings, pick the model, start the chosen transport, drain and exit on SIGTERM.

Start-up errors (environment, model directory, undeclared interface, port in use, model load failure for the
KServe interfaces) print ONE line on stderr and exit non-zero (`omi_contract.image.EXIT_*`), without a traceback. Modzy loads the model on
the first Status/Run call instead, as its platform expects. Transport modules are imported only when chosen,
so a REST server never pays for gRPC and vice versa.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from omi_contract.image import EXIT_CONFIG, EXIT_MODEL_LOAD
from omi_contract.record import ModelRecord
from omi_runtime.errors import ConfigError
from omi_runtime.logs import log
from omi_runtime.metadata import find_model_dir, load_metadata
from omi_runtime.settings import Settings, check_declared, settings_from_env

if TYPE_CHECKING:  # transports are imported only when chosen
    from omi_runtime.transports.grpc_server import GrpcServer
    from omi_runtime.transports.rest_common import RestServer

# The one line on stderr: ERROR_PREFIX, then (for a model that does not load) LOAD_FAILED; the smoke test reads it.
ERROR_PREFIX = "omi_runtime: error: "
LOAD_FAILED = "model {name} failed to load: "


class LoadFailed(Exception):
    pass


def _fatal(message: str) -> None:
    log("startup_failed", level="error", error=message)
    sys.stderr.write(f"{ERROR_PREFIX}{message}\n")
    sys.stderr.flush()


def main() -> int:
    started = time.monotonic()
    # gRPC's C core would print its own multi-line diagnostics on stderr (e.g. on a busy port); this server
    # reports such failures itself, in one line. Set GRPC_VERBOSITY to see them anyway.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        settings = settings_from_env(os.environ)
        model_dir = find_model_dir(settings.models_dir, settings.model_name)
        metadata = load_metadata(model_dir)
        check_declared(settings, metadata.interfaces, metadata.name)
    except ConfigError as e:
        _fatal(str(e))
        return EXIT_CONFIG
    try:
        return asyncio.run(serve(settings, metadata, model_dir, started))
    except ConfigError as e:
        _fatal(str(e))
        return EXIT_CONFIG
    except LoadFailed as e:
        _fatal(str(e))
        return EXIT_MODEL_LOAD
    except KeyboardInterrupt:
        return 0


async def serve(settings: Settings, metadata: ModelRecord, model_dir: Path, started: float) -> int:
    from omi_runtime.dataplane import DataPlane, ModelRuntime

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    model = ModelRuntime(metadata, model_dir)
    dataplane = DataPlane([model])
    chosen = settings.served
    if chosen.load_at_start and not await model.load():
        raise LoadFailed(LOAD_FAILED.format(name=metadata.name) + str(model.load_error))

    module = importlib.import_module(f"omi_runtime.transports.{chosen.transport}")
    transport: RestServer | GrpcServer = module.create_transport(settings, dataplane, model, stop)

    await transport.start()
    if hasattr(transport, "set_serving"):
        await transport.set_serving(True)
    log("ready", interface=settings.interface, protocol=settings.protocol, port=settings.port, host=settings.host,
        model=metadata.name, version=metadata.version, model_loaded=model.ready,
        ready_seconds=round(time.monotonic() - started, 3), pid=os.getpid())

    await stop.wait()
    drain = settings.drain_seconds
    log("stopping", drain_seconds=drain)
    try:
        await asyncio.wait_for(transport.stop(drain), drain + 2)
    except asyncio.TimeoutError:
        log("stop_timeout", level="warning")
    model.close()
    log("stopped")
    return 0
