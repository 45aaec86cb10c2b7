"""Custom handlers: import `handler: "package.module:Class"` from the model's code.

The module is looked up on PYTHONPATH first (first-party code in the image), then in the model directory, so a
handler file bundled among the model's `files` works too.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from omi_runtime.errors import ConfigError


def import_handler(spec: str, model_dir: Path) -> type:
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ConfigError(f"handler {spec!r}: expected 'package.module:Class'")
    if str(model_dir) not in sys.path:
        sys.path.append(str(model_dir))  # appended: never shadows installed packages
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"handler {spec!r}: cannot import {module_name}: {e}") from None
    except Exception as e:  # the module's own import-time failure
        raise ConfigError(f"handler {spec!r}: importing {module_name} failed: {type(e).__name__}: {e}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ConfigError(f"handler {spec!r}: {module_name} has no class {class_name}")
    if not any(callable(getattr(cls, m, None)) for m in ("predict", "process")):
        raise ConfigError(f"handler {spec!r}: {class_name} defines neither predict() nor process()")
    return cls
