"""Server settings from the environment (OMI spec variables plus omi's own), validated before anything starts.

Every problem becomes a ConfigError whose one-line message names the variable and the allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from omi_contract import image as contract
from omi_contract.interfaces import INTERFACE_ALIASES, PROTOCOLS, SERVED, Interface, served
from omi_runtime.errors import ConfigError

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

    @property
    def served(self) -> Interface:
        """The interface table's row for the chosen pair."""
        return served(self.pair)


def _port(name: str, value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigError(f"{name}={value!r} is not a valid port: use an integer from 1 to 65535")
    return port


def settings_from_env(env: Mapping[str, str]) -> Settings:
    aliases, protocols = ", ".join(INTERFACE_ALIASES), ", ".join(PROTOCOLS)
    raw_interface = env.get(contract.ENV_INTERFACE, "").strip()
    if not raw_interface:
        raise ConfigError(f"{contract.ENV_INTERFACE} is not set: use one of {aliases}")
    interface = INTERFACE_ALIASES.get(raw_interface.lower())
    if interface is None:
        raise ConfigError(f"{contract.ENV_INTERFACE}={raw_interface!r} is not supported: use one of {aliases}")
    protocol = env.get(contract.ENV_PROTOCOL, "").strip().lower()
    if not protocol:
        raise ConfigError(f"{contract.ENV_PROTOCOL} is not set: use one of {protocols}")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{contract.ENV_PROTOCOL}={env[contract.ENV_PROTOCOL]!r} is not supported: use one of "
                          f"{protocols}")
    pair = f"{interface}.{protocol}"
    if pair not in SERVED:
        raise ConfigError(f"{contract.ENV_INTERFACE}={raw_interface} with {contract.ENV_PROTOCOL}={protocol} ({pair}) "
                          f"is not implemented: use one of {', '.join(SERVED)}")
    row = served(pair)
    if env.get(contract.ENV_HTTP_PORT, "").strip():
        port = _port(contract.ENV_HTTP_PORT, env[contract.ENV_HTTP_PORT].strip())
    elif row.port_env and env.get(row.port_env, "").strip():
        port = _port(row.port_env, env[row.port_env].strip())
    else:
        port = row.default_port
    max_bytes_raw = env.get(contract.ENV_MAX_MESSAGE_BYTES, "").strip()
    max_bytes = DEFAULT_MAX_MESSAGE_BYTES
    if max_bytes_raw:
        try:
            max_bytes = int(max_bytes_raw)
        except ValueError:
            max_bytes = 0
        if max_bytes <= 0:
            raise ConfigError(f"{contract.ENV_MAX_MESSAGE_BYTES}={max_bytes_raw!r} is not valid: use a positive integer "
                              f"number of bytes (default {DEFAULT_MAX_MESSAGE_BYTES})")
    drain_raw = env.get(contract.ENV_DRAIN_SECONDS, "").strip()
    drain = 10.0
    if drain_raw:
        try:
            drain = float(drain_raw)
        except ValueError:
            drain = -1.0
        if not 0 <= drain <= 3600:
            raise ConfigError(f"{contract.ENV_DRAIN_SECONDS}={drain_raw!r} is not valid: use seconds from 0 to 3600 "
                              f"(default 10)")
    return Settings(
        interface=interface,
        protocol=protocol,
        port=port,
        host=env.get(contract.ENV_HOST, "").strip() or "0.0.0.0",
        model_name=env.get(contract.ENV_MODEL_NAME, "").strip() or None,
        models_dir=Path(env.get(contract.ENV_MODELS_DIR, "").strip() or contract.MODELS_DIR),
        max_message_bytes=max_bytes,
        drain_seconds=drain,
    )


def check_declared(settings: Settings, interfaces: tuple[str, ...], model_name: str) -> None:
    """Serve only pairs the model declares: an undeclared pair is a deployment mistake, not a fallback."""
    if settings.pair not in interfaces:
        raise ConfigError(f"INTERFACE/PROTOCOL {settings.pair} is not declared by model {model_name}: "
                          f"use one of {', '.join(interfaces)} (its `interfaces` in model.yaml)")
