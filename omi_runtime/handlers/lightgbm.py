"""Built-in handler for LightGBM models (format: lightgbm): a Booster saved with `save_model` as a text file.

Classifiers (`binary`, `multiclass`, `multiclassova`) return labels and probabilities, regressors their values;
outputs map as in `boosted_trees`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from omi_runtime.handlers.base import ModelContext
from omi_runtime.handlers.boosted_trees import BoostedTreesHandler

_CLASSIFIERS = ("binary", "multiclass", "multiclassova", "cross_entropy")


def _objective(path: Path) -> str:
    """The `objective=` line of a text model's header (e.g. `objective=multiclass num_class:10`), read without
    parsing the trees."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("objective="):
                return line.split("=", 1)[1].split()[0]
            if line.startswith("Tree="):
                break
    return ""


class LightGBMHandler(BoostedTreesHandler):
    def __init__(self) -> None:
        super().__init__()
        self.booster: Any = None

    def load_booster(self, context: ModelContext) -> int:
        import lightgbm

        path = context.model_file()
        self.booster = context.load_model_file(lambda p: lightgbm.Booster(model_file=str(p)), path)
        objective = _objective(path)
        if objective not in _CLASSIFIERS:
            return 0
        return max(2, int(self.booster.num_model_per_iteration()))

    def scores(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(x)

    def raw_scores(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(x, raw_score=True)
