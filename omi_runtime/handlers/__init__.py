"""Handlers: what turns request tensors (or bytes) into predictions for one model.

`create_handler` picks the class: the model's `handler: "pkg.mod:Class"` when set, else the built-in one for its
`format` (sklearn, onnx). Built-ins import their heavy libraries only in `load`, so start-up stays fast. Each
built-in is its own Pants target (`omi_runtime:sklearn`, `omi_runtime:onnx`): an image carries only its format's.
The handler API itself is documented in `omi_runtime.handlers.base`.
"""

from __future__ import annotations

from pathlib import Path

from omi_runtime.errors import ConfigError
from omi_runtime.handlers.base import Handler, ModelContext
from omi_runtime.metadata import ModelMetadata

__all__ = ["Handler", "ModelContext", "create_handler"]


def create_handler(metadata: ModelMetadata, model_dir: Path) -> object:
    """Instantiate (not load) the handler for a model."""
    if metadata.handler:
        from omi_runtime.handlers.custom import import_handler

        return import_handler(metadata.handler, model_dir)()
    if metadata.format == "sklearn":
        from omi_runtime.handlers.sklearn import SklearnHandler  # pants: no-infer-dep

        return SklearnHandler()
    if metadata.format == "onnx":
        from omi_runtime.handlers.onnx import OnnxHandler  # pants: no-infer-dep

        return OnnxHandler()
    raise ConfigError(f"model {metadata.name}: format {metadata.format!r} needs `handler: \"package.module:Class\"`")
