"""Model metadata: finds `<models_dir>/<name>/omi-model.json` and reads it as the contract's `ModelRecord`.

The plugin validates model.yaml at build time; the same record rules run again here, so a hand-made models
directory (e.g. `pants run`) fails clearly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omi_contract.image import ENV_MODEL_NAME, ENV_MODELS_DIR, RECORD_FILE
from omi_contract.record import ModelRecord, RecordError
from omi_runtime.errors import ConfigError


def parse_metadata(doc: Any, where: str = RECORD_FILE) -> ModelRecord:
    """The record of a parsed omi-model.json; ConfigError names the offending field."""
    try:
        return ModelRecord.from_json(doc, where)
    except RecordError as e:
        raise ConfigError(str(e)) from None


def load_metadata(model_dir: Path) -> ModelRecord:
    path = model_dir / RECORD_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (each model directory needs an {RECORD_FILE})") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read JSON: {e}") from None
    return parse_metadata(doc, str(path))


def find_model_dir(models_dir: Path, model_name: str | None) -> Path:
    """Pick the model directory: MODEL_NAME's, or the only one bundled when MODEL_NAME is unset."""
    if not models_dir.is_dir():
        raise ConfigError(f"{ENV_MODELS_DIR}={models_dir} is not a directory")
    available = sorted(p.name for p in models_dir.iterdir() if (p / RECORD_FILE).is_file())
    if not available:
        raise ConfigError(f"{ENV_MODELS_DIR}={models_dir} holds no model (no */{RECORD_FILE})")
    if model_name:
        if model_name not in available:
            raise ConfigError(f"{ENV_MODEL_NAME}={model_name} is not bundled: use one of {', '.join(available)}")
        return models_dir / model_name
    if len(available) > 1:
        raise ConfigError(f"{ENV_MODEL_NAME} is unset and {len(available)} models are bundled: set it to one of "
                          f"{', '.join(available)}")
    return models_dir / available[0]
