"""Built-in handler for XGBoost models (format: xgboost): a Booster saved with `save_model` as JSON or UBJSON.

Classifiers (`binary:*`, `multi:softprob`) return labels and probabilities, regressors their values; outputs map as
in `boosted_trees`. Runs on the CPU-only `xgboost-cpu` distribution (no CUDA libraries in the image).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from omi_runtime.handlers.base import ModelContext
from omi_runtime.handlers.boosted_trees import BoostedTreesHandler


def _booster(path: Path) -> Any:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(str(path))
    return booster


class XGBoostHandler(BoostedTreesHandler):
    def __init__(self) -> None:
        super().__init__()
        self.booster: Any = None
        self.margins = False  # binary:logitraw predicts margins: the probability is their sigmoid

    def load_booster(self, context: ModelContext) -> int:
        self.booster = context.load_model_file(_booster)
        learner = json.loads(self.booster.save_config())["learner"]
        objective = learner["objective"]["name"]
        if objective in ("multi:softmax", "binary:hinge"):
            raise ValueError(f"objective {objective} gives no probabilities: train with "
                             f"{'multi:softprob' if objective.startswith('multi') else 'binary:logistic'}")
        self.margins = objective == "binary:logitraw"
        if objective.startswith("multi:"):
            return int(learner["learner_model_param"]["num_class"])
        return 2 if objective.startswith("binary:") else 0

    def scores(self, x: np.ndarray) -> np.ndarray:
        predicted = self.booster.inplace_predict(x, validate_features=False)
        return 1.0 / (1.0 + np.exp(-predicted)) if self.margins else predicted

    def raw_scores(self, x: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(x, predict_type="margin", validate_features=False)
