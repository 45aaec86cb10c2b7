"""What the gradient-boosted tree handlers (xgboost, lightgbm) share: mapping declared outputs to predictions.

A classifier's outputs are its labels and, when model.yaml declares a second output (or one named for it), the
class probabilities; a regressor's are its values. Outputs are matched by name, then by position:

- `predict`, `label`, `labels`, `value`, `values`: the labels (argmax of the probabilities) or the values;
- `probabilities`, `proba`, `predict_proba`, `scores`: the probabilities, shape [N, classes] ([N, 2] for binary);
- `raw`, `margin`, `raw_score`: the untransformed scores;
- any other name: first output -> labels/values, second -> probabilities.

The libraries themselves are imported by the subclasses' `load`, so this module is light.
"""

from __future__ import annotations

import numpy as np

from omi_runtime.handlers.base import Handler, ModelContext, feature_matrix

LABELS, PROBABILITIES, RAW = "labels", "probabilities", "raw"
_BY_NAME = {"predict": LABELS, "label": LABELS, "labels": LABELS, "value": LABELS, "values": LABELS,
            "probabilities": PROBABILITIES, "proba": PROBABILITIES, "predict_proba": PROBABILITIES,
            "scores": PROBABILITIES, "raw": RAW, "margin": RAW, "raw_score": RAW}
_BY_POSITION = (LABELS, PROBABILITIES)


class BoostedTreesHandler(Handler):
    """Subclasses load their booster and say what it is; this class plans and computes the outputs."""

    batchable = True
    thread_agnostic = True

    def __init__(self) -> None:
        self.classes = 0  # 0 for a regressor, else the number of classes (2 for binary)
        self.input_names: list[str] = []
        self.plan: list[tuple[str, str]] = []  # (output name, LABELS / PROBABILITIES / RAW)

    def load_booster(self, context: ModelContext) -> int:
        """Load the format's model file (`context.load_model_file`); return the number of classes (0 for a
        regressor)."""
        raise NotImplementedError

    def scores(self, x: np.ndarray) -> np.ndarray:
        """A classifier's probabilities ([N] for binary, [N, classes] otherwise) or a regressor's values."""
        raise NotImplementedError

    def raw_scores(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def load(self, context: ModelContext) -> None:
        self.classes = self.load_booster(context)
        self.input_names = [t.name for t in context.metadata.inputs]
        self.plan = []
        for index, spec in enumerate(context.metadata.outputs):
            kind = _BY_NAME.get(spec.name)
            if kind is None:
                if index >= len(_BY_POSITION):
                    raise ValueError(f"output {spec.name!r}: name it labels, probabilities or raw")
                kind = _BY_POSITION[index]
            if kind == PROBABILITIES and not self.classes:
                raise ValueError(f"output {spec.name!r}: the model is a regressor and has no class probabilities")
            self.plan.append((spec.name, kind))

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = feature_matrix(inputs, self.input_names)
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        kinds = {kind for _, kind in self.plan}
        out: dict[str, np.ndarray] = {}
        if kinds & {LABELS, PROBABILITIES}:
            scores = np.asarray(self.scores(x))
            if not self.classes:
                out[LABELS] = scores
            else:
                probabilities = np.stack([1.0 - scores, scores], axis=1) if scores.ndim == 1 else scores
                out[PROBABILITIES] = probabilities.astype(np.float32)
                out[LABELS] = np.argmax(probabilities, axis=1).astype(np.int64)
        if RAW in kinds:
            out[RAW] = np.asarray(self.raw_scores(x))
        return {name: out[kind] for name, kind in self.plan}
