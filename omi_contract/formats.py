"""The model format table: model.yaml `format` values and what serves each.

Adding a format is a handler module under `omi_runtime/handlers/`, a `python_sources` target for it (with its
libraries) in `omi_runtime/BUILD`, and one row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class Format:
    """One model format."""

    name: str  # model.yaml `format`
    handler: str = ""  # built-in handler as "module:Class"; empty when model.yaml must name one (`custom`)
    target: str = ""  # default `[omi].builtin_handlers` target: the handler and its libraries, nothing else
    platform: str = ""  # what KServe v2 model metadata reports as `platform`

    @property
    def handler_module(self) -> str:
        return self.handler.split(":", 1)[0]


MLFLOW = "mlflow"  # whose models the plugin also checks against their MLmodel at package time

FORMATS: Tuple[Format, ...] = (
    Format("sklearn", handler="omi_runtime.handlers.sklearn:SklearnHandler", target="omi_runtime:sklearn",
           platform="sklearn"),
    Format("onnx", handler="omi_runtime.handlers.onnx:OnnxHandler", target="omi_runtime:onnx",
           platform="onnxruntime_onnx"),
    Format("xgboost", handler="omi_runtime.handlers.xgboost:XGBoostHandler", target="omi_runtime:xgboost",
           platform="xgboost"),
    Format("lightgbm", handler="omi_runtime.handlers.lightgbm:LightGBMHandler", target="omi_runtime:lightgbm",
           platform="lightgbm"),
    Format(MLFLOW, handler="omi_runtime.handlers.mlflow:MlflowHandler", target="omi_runtime:mlflow",
           platform="mlflow"),
    Format("custom", platform="custom"),
)

NAMES: Tuple[str, ...] = tuple(f.name for f in FORMATS)
BUILTIN_HANDLER_TARGETS: Dict[str, str] = {f.name: f.target for f in FORMATS if f.target}

_BY_NAME: Dict[str, Format] = {f.name: f for f in FORMATS}


def lookup(name: str) -> Optional[Format]:
    return _BY_NAME.get(name)
