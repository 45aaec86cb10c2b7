"""A linear scikit-learn model's `predict` and `decision_function` as scikit-learn computes them, without its
per-call checks when the input needs none.

For one row, scikit-learn's input validation (array checks, feature names, configuration lookups) costs ten times
the model's own arithmetic, `X @ coef_.T + intercept_`. An estimator whose method is scikit-learn's own linear one
(not a subclass's override) is called here with the same numpy operations on the same arrays, so the answers are
the same bits; any input that is not a finite float32/float64 matrix of the model's width goes to scikit-learn,
which answers or refuses it as it always does.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

Method = Callable[[np.ndarray], Any]


def linear_method(model: Any, method: str) -> Optional[Method]:
    """The fast form of `model.<method>`, or None when scikit-learn's own code must run."""
    try:
        from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
    except ImportError:  # a scikit-learn that moved them: its own methods are used
        return None
    kind = type(model)
    coef, intercept = getattr(model, "coef_", None), getattr(model, "intercept_", None)
    if not isinstance(coef, np.ndarray) or coef.ndim not in (1, 2) or intercept is None:
        return None  # not fitted, or sparsified coefficients
    own = getattr(model, method)
    width = coef.shape[-1]

    def scores(x: np.ndarray) -> np.ndarray:
        found = x @ coef.T + intercept
        return found.reshape(-1) if found.ndim > 1 and found.shape[1] == 1 else found

    if isinstance(model, LinearClassifierMixin) and kind.decision_function is LinearClassifierMixin.decision_function:
        classes = getattr(model, "classes_", None)
        if method == "decision_function":
            fast = scores
        elif method == "predict" and kind.predict is LinearClassifierMixin.predict and isinstance(classes, np.ndarray):
            def fast(x: np.ndarray) -> np.ndarray:
                found = scores(x)
                indices = (found > 0).astype(np.intp) if found.ndim == 1 else found.argmax(axis=1)
                return classes.take(indices, axis=0)
        else:
            return None
    elif isinstance(model, LinearModel) and method == "predict" and kind.predict is LinearModel.predict and \
            kind._decision_function is LinearModel._decision_function:
        def fast(x: np.ndarray) -> np.ndarray:
            return x @ coef.T + intercept
    else:
        return None

    def call(x: np.ndarray) -> Any:
        if x.ndim == 2 and x.shape[1] == width and x.dtype in (np.float32, np.float64) and np.isfinite(x).all():
            return fast(x)
        return own(x)

    return call
