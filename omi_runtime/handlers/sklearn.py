"""Built-in handler for scikit-learn models saved with joblib or pickle (format: sklearn).

Inputs: the first declared input is X (several inputs are concatenated column-wise, in declared order).
Outputs map to estimator methods by name (`predict`, `predict_proba`, `predict_log_proba`, `decision_function`,
`transform`, `score_samples`; aliases `label(s)` -> predict, `probabilities`/`proba`/`scores` -> predict_proba);
other names fall back by position: first output -> predict, second -> predict_proba. A linear model's predict and
decision_function skip scikit-learn's per-call checks where they have nothing to check (`sklearn_linear.py`).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from omi_runtime.handlers.base import Handler, ModelContext, feature_matrix
from omi_runtime.handlers.sklearn_linear import linear_method

_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform", "score_samples")
_ALIASES = {"label": "predict", "labels": "predict", "probabilities": "predict_proba", "proba": "predict_proba",
            "scores": "predict_proba"}
_BY_POSITION = ("predict", "predict_proba")


class SklearnHandler(Handler):
    batchable = True
    thread_agnostic = True

    def __init__(self) -> None:
        self.model: Any = None
        self.input_names: list[str] = []
        self.plan: list[tuple[str, Callable[[np.ndarray], Any]]] = []  # (output name, estimator method)

    def load(self, context: ModelContext) -> None:
        import joblib  # joblib.load also reads plain pickles

        self.model = context.load_model_file(joblib.load)
        self.input_names = [t.name for t in context.metadata.inputs]
        self.plan = []
        for index, spec in enumerate(context.metadata.outputs):
            method = spec.name if spec.name in _METHODS else _ALIASES.get(spec.name)
            if method is None:
                if index >= len(_BY_POSITION):
                    raise ValueError(f"output {spec.name!r}: name it after an estimator method ({', '.join(_METHODS)})")
                method = _BY_POSITION[index]
            if not callable(getattr(self.model, method, None)):
                raise ValueError(f"output {spec.name!r}: {type(self.model).__name__} has no method {method}()")
            self.plan.append((spec.name, linear_method(self.model, method) or getattr(self.model, method)))

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = feature_matrix(inputs, self.input_names)
        return {name: np.asarray(method(x)) for name, method in self.plan}
