"""The model format table: model.yaml `format` values and what serves each.

Adding a format is a handler module under `omi_runtime/handlers/`, a `python_sources` target for it (with its
libraries) in `omi_runtime/BUILD`, and one row here naming the modules it imports and their distributions: the plugin
finds each in the model's resolve, so an image carries only its own format's libraries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from omi_contract import huggingface


@dataclass(frozen=True)
class Format:
    """One model format."""

    name: str  # model.yaml `format`
    handler: str = ""  # built-in handler as "module:Class"; empty when model.yaml must name one (`custom`)
    # (module, distribution) the handler imports besides the server's own: looked up in the model's resolve
    libraries: Tuple[Tuple[str, str], ...] = ()
    platform: str = ""  # what KServe v2 model metadata reports as `platform`
    title: str = ""  # how messages name it: "<article> <title> model" ("an XGBoost model")
    article: str = "a"
    # The model file the handler loads: the first declared file with one of these suffixes (else the first file)...
    model_suffixes: Tuple[str, ...] = ()
    # ...what it must be, in words, and the kinds of `omi_contract.model_files.identify` that fit it. Empty: not
    # judged before loading (the format's loader reads a directory, or a custom handler decides).
    model_file: str = ""
    accepts: Tuple[str, ...] = ()

    @property
    def handler_module(self) -> str:
        return self.handler.split(":", 1)[0]


MLFLOW = "mlflow"  # whose models the plugin also checks against their MLmodel at package time

FORMATS: Tuple[Format, ...] = (
    Format("sklearn", handler="omi_runtime.handlers.sklearn:SklearnHandler", platform="sklearn",
           libraries=(("sklearn", "scikit-learn"), ("joblib", "joblib")), title="scikit-learn",
           model_suffixes=(".joblib", ".pkl", ".pickle", ".sav"), model_file="an estimator saved with joblib or pickle",
           accepts=("pickle", "zlib", "gzip", "bz2", "xz", "lzma", "lz4", "text", "unknown")),
    Format("onnx", handler="omi_runtime.handlers.onnx:OnnxHandler", platform="onnxruntime_onnx",
           libraries=(("onnxruntime", "onnxruntime"),), title="ONNX", article="an", model_suffixes=(".onnx", ".ort"),
           model_file="an ONNX ModelProto (protobuf) or an ONNX Runtime .ort file", accepts=("onnx", "ort")),
    Format("xgboost", handler="omi_runtime.handlers.xgboost:XGBoostHandler", platform="xgboost",
           libraries=(("xgboost", "xgboost-cpu"),), title="XGBoost", article="an", model_suffixes=(".json", ".ubj"),
           model_file="a Booster saved with save_model as JSON or UBJSON", accepts=("xgboost-json", "xgboost-ubj")),
    Format("lightgbm", handler="omi_runtime.handlers.lightgbm:LightGBMHandler", platform="lightgbm",
           libraries=(("lightgbm", "lightgbm"),), title="LightGBM", model_suffixes=(".txt", ".lgb", ".model"),
           model_file="a Booster saved with save_model as text", accepts=("lightgbm",)),
    # A Hugging Face model directory exported to ONNX (omi_contract.huggingface): tokenizers + onnxruntime, no torch.
    Format(huggingface.FORMAT, handler="omi_runtime.handlers.huggingface:HuggingFaceHandler", platform="huggingface_onnx",
           libraries=(("onnxruntime", "onnxruntime"), ("tokenizers", "tokenizers")), title="Hugging Face ONNX",
           model_suffixes=(".onnx",), model_file="an ONNX ModelProto (protobuf)", accepts=("onnx",)),
    Format(MLFLOW, handler="omi_runtime.handlers.mlflow:MlflowHandler", platform="mlflow",
           libraries=(("mlflow", "mlflow-skinny"), ("pandas", "pandas")), title="MLflow", article="an"),
    Format("custom", platform="custom", title="custom"),
)

NAMES: Tuple[str, ...] = tuple(f.name for f in FORMATS)

_BY_NAME: Dict[str, Format] = {f.name: f for f in FORMATS}


def lookup(name: str) -> Optional[Format]:
    return _BY_NAME.get(name)
