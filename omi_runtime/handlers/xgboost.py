"""Built-in handler for XGBoost models (format: xgboost): a Booster saved with `save_model` as JSON or UBJSON.

Classifiers (`binary:*`, `multi:softprob`) return labels and probabilities, regressors their values; outputs map as
in `boosted_trees`. Runs on the CPU-only `xgboost-cpu` distribution (no CUDA libraries in the image).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from omi_runtime.handlers.boosted_trees import BoostedTreesHandler


class XGBoostHandler(BoostedTreesHandler):
    suffixes = (".json", ".ubj")

    def __init__(self) -> None:
        super().__init__()
        self.booster: Any = None

    def load_booster(self, path: Path) -> int:
        import xgboost

        self.booster = xgboost.Booster()
        self.booster.load_model(str(path))
        learner = json.loads(self.booster.save_config())["learner"]
        objective = learner["objective"]["name"]
        if objective == "multi:softmax":
            raise ValueError("objective multi:softmax gives no probabilities: train with multi:softprob")
        if objective.startswith("multi:"):
            return int(learner["learner_model_param"]["num_class"])
        return 2 if objective.startswith("binary:") else 0

    def scores(self, x: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(x, validate_features=False)

    def raw_scores(self, x: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(x, predict_type="margin", validate_features=False)
