"""The model format table: model.yaml `format` values and what serves each.

Adding a format is a handler module under `omi_runtime/handlers/`, a `python_sources` target for it (with its
libraries) in `omi_runtime/BUILD`, and one row here naming the modules it imports and their distributions: the plugin
finds each in the model's resolve, so an image carries only its own format's libraries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class Format:
    """One model format."""

    name: str  # model.yaml `format`
    handler: str = ""  # built-in handler as "module:Class"; empty when model.yaml must name one (`custom`)
    # (module, distribution) the handler imports besides the server's own: looked up in the model's resolve
    libraries: Tuple[Tuple[str, str], ...] = ()
    platform: str = ""  # what KServe v2 model metadata reports as `platform`

    @property
    def handler_module(self) -> str:
        return self.handler.split(":", 1)[0]


MLFLOW = "mlflow"  # whose models the plugin also checks against their MLmodel at package time

FORMATS: Tuple[Format, ...] = (
    Format("sklearn", handler="omi_runtime.handlers.sklearn:SklearnHandler", platform="sklearn",
           libraries=(("sklearn", "scikit-learn"), ("joblib", "joblib"))),
    Format("onnx", handler="omi_runtime.handlers.onnx:OnnxHandler", platform="onnxruntime_onnx",
           libraries=(("onnxruntime", "onnxruntime"),)),
    Format("xgboost", handler="omi_runtime.handlers.xgboost:XGBoostHandler", platform="xgboost",
           libraries=(("xgboost", "xgboost-cpu"),)),
    Format("lightgbm", handler="omi_runtime.handlers.lightgbm:LightGBMHandler", platform="lightgbm",
           libraries=(("lightgbm", "lightgbm"),)),
    Format(MLFLOW, handler="omi_runtime.handlers.mlflow:MlflowHandler", platform="mlflow",
           libraries=(("mlflow", "mlflow-skinny"), ("pandas", "pandas"))),
    Format("custom", platform="custom"),
)

NAMES: Tuple[str, ...] = tuple(f.name for f in FORMATS)

_BY_NAME: Dict[str, Format] = {f.name: f for f in FORMATS}


def lookup(name: str) -> Optional[Format]:
    return _BY_NAME.get(name)
