"""Server settings from the environment (OMI spec variables plus omi's own), validated before anything starts.

Every problem becomes a ConfigError whose one-line message names the variable and the allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from omi_runtime.errors import ConfigError

# Chassis used `kserve` as well as `kfserving`; both mean the KServe protocols.
INTERFACE_ALIASES = {"kfserving": "kfserving", "kserve": "kfserving", "modzy": "modzy"}
PROTOCOLS = ("v1", "v2")
IMPLEMENTED = ("kfserving.v1", "kfserving.v2", "modzy.v2")
DEFAULT_MODZY_PORT = 45000
DEFAULT_HTTP_PORT = 8080
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    interface: str  # "kfserving" or "modzy" (aliases resolved)
    protocol: str  # "v1" or "v2"
    port: int
    host: str
    model_name: str | None
    models_dir: Path
    max_message_bytes: int
    drain_seconds: float = 10.0

    @property
    def pair(self) -> str:
        return f"{self.interface}.{self.protocol}"


def _port(name: str, value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigError(f"{name}={value!r} is not a valid port: use an integer from 1 to 65535")
    return port


def settings_from_env(env: Mapping[str, str]) -> Settings:
    raw_interface = env.get("INTERFACE", "").strip()
    if not raw_interface:
        raise ConfigError("INTERFACE is not set: use one of kfserving, kserve, modzy")
    interface = INTERFACE_ALIASES.get(raw_interface.lower())
    if interface is None:
        raise ConfigError(f"INTERFACE={raw_interface!r} is not supported: use one of kfserving, kserve, modzy")
    protocol = env.get("PROTOCOL", "").strip().lower()
    if not protocol:
        raise ConfigError("PROTOCOL is not set: use one of v1, v2")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"PROTOCOL={env['PROTOCOL']!r} is not supported: use one of v1, v2")
    if f"{interface}.{protocol}" not in IMPLEMENTED:
        raise ConfigError(f"INTERFACE={raw_interface} with PROTOCOL={protocol} ({interface}.{protocol}) is not "
                          f"implemented: use one of {', '.join(IMPLEMENTED)}")
    if env.get("HTTP_PORT", "").strip():
        port = _port("HTTP_PORT", env["HTTP_PORT"].strip())
    elif interface == "modzy" and env.get("PSC_MODEL_PORT", "").strip():
        port = _port("PSC_MODEL_PORT", env["PSC_MODEL_PORT"].strip())
    else:
        port = DEFAULT_MODZY_PORT if interface == "modzy" else DEFAULT_HTTP_PORT
    max_bytes_raw = env.get("OMI_MAX_MESSAGE_BYTES", "").strip()
    max_bytes = DEFAULT_MAX_MESSAGE_BYTES
    if max_bytes_raw:
        try:
            max_bytes = int(max_bytes_raw)
        except ValueError:
            max_bytes = 0
        if max_bytes <= 0:
            raise ConfigError(f"OMI_MAX_MESSAGE_BYTES={max_bytes_raw!r} is not valid: use a positive integer "
                              f"number of bytes (default {DEFAULT_MAX_MESSAGE_BYTES})")
    drain_raw = env.get("OMI_DRAIN_SECONDS", "").strip()
    drain = 10.0
    if drain_raw:
        try:
            drain = float(drain_raw)
        except ValueError:
            drain = -1.0
        if not 0 <= drain <= 3600:
            raise ConfigError(f"OMI_DRAIN_SECONDS={drain_raw!r} is not valid: use seconds from 0 to 3600 "
                              f"(default 10)")
    return Settings(
        interface=interface,
        protocol=protocol,
        port=port,
        host=env.get("OMI_HOST", "").strip() or "0.0.0.0",
        model_name=env.get("MODEL_NAME", "").strip() or None,
        models_dir=Path(env.get("OMI_MODELS_DIR", "").strip() or "/models"),
        max_message_bytes=max_bytes,
        drain_seconds=drain,
    )


def check_declared(settings: Settings, interfaces: tuple[str, ...], model_name: str) -> None:
    """Serve only pairs the model declares: an undeclared pair is a deployment mistake, not a fallback."""
    if settings.pair not in interfaces:
        raise ConfigError(f"INTERFACE/PROTOCOL {settings.pair} is not declared by model {model_name}: "
                          f"use one of {', '.join(interfaces)} (its `interfaces` in model.yaml)")
