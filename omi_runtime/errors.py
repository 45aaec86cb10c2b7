"""Error types shared by the dataplane and the transports.

Each request error carries its meaning once; every transport maps it to its own status (HTTP code, gRPC code,
Modzy per-item failure), so a bad request reads the same whatever the protocol.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A start-up problem (environment, model directory, omi-model.json): reported as one line, exit non-zero."""


class ModelFileError(ConfigError):
    """A model file its format's library cannot load: one line naming the file, the format and what it is."""


class InferenceError(Exception):
    """A request that cannot be answered. `http_status` and `grpc_code` (a grpc.StatusCode name) say why."""

    http_status = 500
    grpc_code = "INTERNAL"


class BadRequest(InferenceError):
    """The request is malformed or does not match the model's declared inputs."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


class ModelNotFound(InferenceError):
    """The request names a model (or version) this server does not serve."""

    http_status = 404
    grpc_code = "NOT_FOUND"


class ModelNotReady(InferenceError):
    """The model exists but is not loaded (or failed to load)."""

    http_status = 503
    grpc_code = "UNAVAILABLE"


class NotSupported(InferenceError):
    """The model's handler does not provide the requested operation (e.g. explain)."""

    http_status = 501
    grpc_code = "UNIMPLEMENTED"


class ModelError(InferenceError):
    """The handler failed on a well-formed request."""

    http_status = 500
    grpc_code = "INTERNAL"
