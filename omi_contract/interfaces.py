"""The OMI interface table: every `interface.protocol` string the OMI spec defines, and how omi serves each.

Adding a protocol is a transport module under `omi_runtime/transports/` (with `create_transport`), a probe in
`omi_runtime/smoke/probes.py`, and one row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from omi_contract.image import ENV_PSC_MODEL_PORT

DEFAULT_HTTP_PORT = 8080
DEFAULT_MODZY_PORT = 45000


@dataclass(frozen=True)
class Interface:
    """One OMI `interface.protocol` pair."""

    name: str  # the OMI string, e.g. "kfserving.v2": model.yaml `interfaces`, the ml.openmodel labels
    served: bool  # omi_runtime implements it
    transport: str = ""  # module under omi_runtime.transports with `create_transport(settings, dataplane, model, stop)`
    probe: str = ""  # function of omi_runtime.smoke.probes that talks to it like a platform would
    readiness: str = ""  # how the smoke test waits for it: "http" (GET the model's path) or "grpc" (channel ready)
    default_port: int = DEFAULT_HTTP_PORT  # when neither HTTP_PORT nor `port_env` sets one
    port_env: str = ""  # the platform's own port variable, read when HTTP_PORT is unset
    service: str = ""  # the gRPC service, or the REST path root, that platforms call
    omi_minimum: bool = False  # OMI 1.0 requires every compliant image to implement it
    load_at_start: bool = True  # load the model before listening (Modzy's platform asks for it with Status)

    @property
    def interface(self) -> str:
        """The `INTERFACE` value."""
        return self.name.split(".", 1)[0]

    @property
    def protocol(self) -> str:
        """The `PROTOCOL` value."""
        return self.name.split(".", 1)[1]


INTERFACES: Tuple[Interface, ...] = (
    Interface("kfserving.v1", served=True, transport="kserve_v1_rest", probe="probe_kfserving_v1",
              readiness="http", service="/v1/models"),
    Interface("kfserving.v2", served=True, transport="kserve_v2_grpc", probe="probe_kfserving_v2",
              readiness="grpc", service="inference.GRPCInferenceService", omi_minimum=True),
    Interface("modzy.v1", served=False, default_port=DEFAULT_MODZY_PORT, port_env=ENV_PSC_MODEL_PORT),
    Interface("modzy.v2", served=True, transport="modzy_v2_grpc", probe="probe_modzy_v2",
              readiness="grpc", default_port=DEFAULT_MODZY_PORT, port_env=ENV_PSC_MODEL_PORT, service="ModzyModel",
              omi_minimum=True,
              load_at_start=False),
)

OMI_NAMES: Tuple[str, ...] = tuple(i.name for i in INTERFACES)
SERVED: Tuple[str, ...] = tuple(i.name for i in INTERFACES if i.served)
OMI_MINIMUM: Tuple[str, ...] = tuple(i.name for i in INTERFACES if i.omi_minimum)
# What a model.yaml without `interfaces` declares: everything omi serves.
DEFAULT_INTERFACES: Tuple[str, ...] = SERVED
# The image's default INTERFACE/PROTOCOL: the first of these the model declares.
DEFAULT_PREFERENCE: Tuple[str, ...] = ("kfserving.v2", "kfserving.v1", "modzy.v2")
PROTOCOLS: Tuple[str, ...] = tuple(sorted({i.protocol for i in INTERFACES}))
# `INTERFACE` values accepted at start-up; Chassis wrote `kserve` as well as `kfserving`.
INTERFACE_ALIASES: Dict[str, str] = {"kfserving": "kfserving", "kserve": "kfserving", "modzy": "modzy"}

_BY_NAME: Dict[str, Interface] = {i.name: i for i in INTERFACES}


def lookup(name: str) -> Optional[Interface]:
    """The row for an OMI string, or None when OMI does not define it."""
    return _BY_NAME.get(name)


def served(name: str) -> Interface:
    """The row of a pair omi serves; KeyError for any other."""
    row = _BY_NAME.get(name)
    if row is None or not row.served:
        raise KeyError(name)
    return row


def default_pair(declared: Tuple[str, ...]) -> Interface:
    """The pair the image starts with when the deployment sets no INTERFACE/PROTOCOL."""
    for name in DEFAULT_PREFERENCE:
        if name in declared:
            return _BY_NAME[name]
    return _BY_NAME[declared[0]]
