"""omi_runtime: the in-image model server of omi.

One process serves one bundled model over the OMI interface chosen at start-up by environment variables
(`INTERFACE`, `PROTOCOL`, `HTTP_PORT`, `MODEL_NAME`): KServe v1 REST (plus v2 REST), KServe v2 gRPC, or Modzy v2
gRPC. Layout: `settings` (environment), `metadata` (omi-model.json), `dataplane` (what a request means),
`codecs` (tensors <-> numpy), `handlers/` (sklearn, ONNX, custom), `transports/` (wire protocols), `server`
(process lifecycle).
"""

from omi_contract.version import OMI_VERSION

__version__ = OMI_VERSION
