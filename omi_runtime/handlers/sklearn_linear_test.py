"""The linear fast path answers exactly what scikit-learn answers, and leaves everything else to scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier, SGDClassifier
from sklearn.svm import LinearSVC

from omi_runtime.handlers.sklearn_linear import linear_method

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 8))
CLASSES = RNG.integers(0, 4, size=300)


def _fitted() -> list[Any]:
    return [
        LogisticRegression(max_iter=500).fit(X, CLASSES),
        LogisticRegression(max_iter=500).fit(X, CLASSES % 2),  # binary: one column of scores
        LogisticRegression(max_iter=500).fit(X, np.array(["cat", "dog"])[CLASSES % 2]),  # string labels
        LinearSVC().fit(X, CLASSES),
        SGDClassifier(random_state=0).fit(X, CLASSES),
        LinearRegression().fit(X, X[:, 0] * 3 + 1),
        LinearRegression(fit_intercept=False).fit(X, X[:, :2]),  # two targets, no intercept
        Ridge().fit(X, X[:, 1]),
    ]


@pytest.mark.parametrize("model", _fitted(), ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_same_answers_as_scikit_learn(model: Any, dtype: Any) -> None:
    rows = RNG.normal(size=(50, 8)).astype(dtype)
    for method in ("predict", "decision_function"):
        if not hasattr(model, method):
            continue
        fast = linear_method(model, method)
        assert fast is not None, (type(model).__name__, method)
        for x in (rows, rows[:1]):
            expected, found = getattr(model, method)(x), fast(x)
            assert found.dtype == expected.dtype and found.shape == expected.shape
            assert np.array_equal(found, expected)


def test_what_scikit_learn_would_check_goes_to_scikit_learn() -> None:
    model = LogisticRegression(max_iter=500).fit(X, CLASSES)
    fast = linear_method(model, "predict")
    assert fast is not None
    with pytest.raises(ValueError, match="NaN"):
        fast(np.full((1, 8), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="features"):
        fast(np.zeros((1, 5), dtype=np.float32))
    assert np.array_equal(fast(np.zeros((2, 8), dtype=np.int64)), model.predict(np.zeros((2, 8), dtype=np.int64)))


class _Shifted(LogisticRegression):
    def predict(self, X: Any) -> Any:
        return super().predict(X) + 1


def test_an_override_or_another_method_is_scikit_learns_own() -> None:
    assert linear_method(_Shifted(max_iter=500).fit(X, CLASSES), "predict") is None
    assert linear_method(RidgeClassifier().fit(X, CLASSES), "predict") is None  # its own predict
    assert linear_method(LogisticRegression(max_iter=500).fit(X, CLASSES), "predict_proba") is None
    assert linear_method(LogisticRegression(), "predict") is None  # not fitted
    sparse = LogisticRegression(max_iter=500).fit(X, CLASSES).sparsify()
    assert linear_method(sparse, "predict") is None
