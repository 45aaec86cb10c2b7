"""Train the XGBoost digits example deterministically from scikit-learn's bundled digits data set.

    pants run examples/digits_xgboost/train.py

Writes model.json (XGBoost's own JSON model format) next to this file. Same library versions give the same bytes
(fixed seed, exact tree method, one thread).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xgboost
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def train(out: Path) -> float:
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data.astype("float32"), digits.target, test_size=0.25, random_state=0
    )
    params = {"objective": "multi:softprob", "num_class": 10, "max_depth": 3, "eta": 0.3, "tree_method": "exact",
              "nthread": 1, "seed": 0}
    booster = xgboost.train(params, xgboost.DMatrix(x_train, label=y_train), num_boost_round=20)
    booster.save_model(str(out))
    predicted = np.argmax(booster.inplace_predict(x_test), axis=1)
    return float(np.mean(predicted == y_test))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("model.json")
    accuracy = train(target)
    print(f"wrote {target} (test accuracy {accuracy:.3f})")
