"""Model metadata: reads and checks `<models_dir>/<name>/omi-model.json` (model.yaml as JSON, defaults filled in).

The plugin validates model.yaml against omi_plugin/metadata/model.schema.json at build time; this module
re-checks only what the server relies on, so a hand-made models directory (e.g. `pants run`) fails clearly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from omi_runtime.errors import ConfigError

METADATA_FILE = "omi-model.json"
DATATYPES = frozenset(
    ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
     "FP16", "FP32", "FP64", "BYTES", "BF16"]
)
DEFAULT_INTERFACES = ("kfserving.v1", "kfserving.v2", "modzy.v2")
DEFAULT_INPUT_FILENAME = "input"
DEFAULT_OUTPUT_FILENAME = "results.json"


@dataclass(frozen=True)
class TensorSpec:
    """A declared input or output tensor. shape uses -1 for a variable dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    description: str = ""
    filename: str | None = None
    media_types: tuple[str, ...] = ()
    max_size: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class ModelMetadata:
    """The parts of omi-model.json the server uses; `raw` keeps the whole document for custom handlers."""

    name: str
    version: str
    format: str
    files: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    interfaces: tuple[str, ...] = DEFAULT_INTERFACES
    run_id: str = ""
    description: str = ""
    authors: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    source: str = ""
    handler: str | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    timeout: Mapping[str, Any] = field(default_factory=dict)
    max_batch_size: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def input_filename(self, index: int = 0) -> str:
        return self.inputs[index].filename or DEFAULT_INPUT_FILENAME

    def output_filename(self, index: int = 0) -> str:
        return self.outputs[index].filename or DEFAULT_OUTPUT_FILENAME


def _tensor(doc: Any, where: str) -> TensorSpec:
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected an object with name, datatype, shape")
    name, datatype, shape = doc.get("name"), doc.get("datatype"), doc.get("shape")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: expected a non-empty string")
    if datatype not in DATATYPES:
        raise ConfigError(f"{where}.datatype: {datatype!r} is not one of {', '.join(sorted(DATATYPES))}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= -1 for d in shape):
        raise ConfigError(f"{where}.shape: expected a list of integers >= -1, got {shape!r}")
    return TensorSpec(
        name=name,
        datatype=datatype,
        shape=tuple(shape),
        description=str(doc.get("description", "")),
        filename=doc.get("filename") or None,
        media_types=tuple(doc.get("media_types") or ()),
        max_size=str(doc.get("max_size", "")),
    )


def parse_metadata(doc: Any, where: str = METADATA_FILE) -> ModelMetadata:
    """Build ModelMetadata from a parsed omi-model.json; ConfigError names the offending field."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a JSON object")
    for key in ("name", "version", "format"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise ConfigError(f"{where}: field {key!r} is missing or not a string")
    if doc["format"] not in ("sklearn", "onnx", "custom"):
        raise ConfigError(f"{where}: format {doc['format']!r} is not one of sklearn, onnx, custom")
    files = doc.get("files") or []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ConfigError(f"{where}: field 'files' must be a list of paths")
    inputs = doc.get("inputs") or []
    outputs = doc.get("outputs") or []
    if not isinstance(inputs, list) or not inputs:
        raise ConfigError(f"{where}: field 'inputs' must list at least one tensor")
    if not isinstance(outputs, list) or not outputs:
        raise ConfigError(f"{where}: field 'outputs' must list at least one tensor")
    max_batch = doc.get("max_batch_size")
    if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
        raise ConfigError(f"{where}: max_batch_size must be a positive integer")
    return ModelMetadata(
        name=doc["name"],
        version=doc["version"],
        format=doc["format"],
        files=tuple(files),
        inputs=tuple(_tensor(t, f"{where}: inputs[{i}]") for i, t in enumerate(inputs)),
        outputs=tuple(_tensor(t, f"{where}: outputs[{i}]") for i, t in enumerate(outputs)),
        interfaces=tuple(doc.get("interfaces") or DEFAULT_INTERFACES),
        run_id=str(doc.get("run_id", "")),
        description=str(doc.get("description", "")),
        authors=tuple(doc.get("authors") or ()),
        licenses=tuple(doc.get("licenses") or ()),
        source=str(doc.get("source", "")),
        handler=doc.get("handler") or None,
        resources=dict(doc.get("resources") or {}),
        timeout=dict(doc.get("timeout") or {}),
        max_batch_size=max_batch,
        raw=doc,
    )


def load_metadata(model_dir: Path) -> ModelMetadata:
    path = model_dir / METADATA_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (each model directory needs an {METADATA_FILE})") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read JSON: {e}") from None
    return parse_metadata(doc, str(path))


def find_model_dir(models_dir: Path, model_name: str | None) -> Path:
    """Pick the model directory: MODEL_NAME's, or the only one bundled when MODEL_NAME is unset."""
    if not models_dir.is_dir():
        raise ConfigError(f"OMI_MODELS_DIR={models_dir} is not a directory")
    available = sorted(p.name for p in models_dir.iterdir() if (p / METADATA_FILE).is_file())
    if not available:
        raise ConfigError(f"OMI_MODELS_DIR={models_dir} holds no model (no */{METADATA_FILE})")
    if model_name:
        if model_name not in available:
            raise ConfigError(f"MODEL_NAME={model_name} is not bundled: use one of {', '.join(available)}")
        return models_dir / model_name
    if len(available) > 1:
        raise ConfigError(f"MODEL_NAME is unset and {len(available)} models are bundled: set it to one of "
                          f"{', '.join(available)}")
    return models_dir / available[0]
