"""Handlers: what turns request tensors (or bytes) into predictions for one model.

`create_handler` picks the class: the model's `handler: "pkg.mod:Class"` when set, else the built-in one for its
`format` (the format table, `omi_contract.formats`). Built-ins import their heavy libraries only in `load`, so
start-up stays fast, and each lives in its own module: an image carries only its format's handler and libraries,
found in the model's resolve by the plugin, so they are imported by name rather than inferred.
The handler API itself is documented in `omi_runtime.handlers.base`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from omi_contract import formats
from omi_contract.record import ModelRecord
from omi_runtime.errors import ConfigError
from omi_runtime.handlers.base import Handler, ModelContext

__all__ = ["Handler", "ModelContext", "create_handler"]


def create_handler(metadata: ModelRecord, model_dir: Path) -> object:
    """Instantiate (not load) the handler for a model."""
    if metadata.handler:
        from omi_runtime.handlers.custom import import_handler

        return import_handler(metadata.handler, model_dir)()
    builtin = formats.lookup(metadata.format)
    if builtin is None or not builtin.handler:
        raise ConfigError(f"model {metadata.name}: format {metadata.format!r} needs "
                          f"`handler: \"package.module:Class\"`")
    module_name, class_name = builtin.handler.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ConfigError(f"model {metadata.name}: the built-in {metadata.format} handler ({module_name}) is not in "
                          f"this image ({e}): lock {', '.join(d for _, d in builtin.libraries) or 'omi-runtime'} in the model's resolve "
                          "and package it again") from None
    return getattr(module, class_name)()
