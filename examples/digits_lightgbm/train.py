"""Train the LightGBM digits example deterministically from scikit-learn's bundled digits data set.

    pants run examples/digits_lightgbm/train.py

Writes model.txt (LightGBM's text model format) next to this file. Same library versions give the same bytes
(fixed seeds, `deterministic`, one thread).
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightgbm
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def train(out: Path) -> float:
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data.astype("float32"), digits.target, test_size=0.25, random_state=0
    )
    params = {"objective": "multiclass", "num_class": 10, "num_leaves": 8, "learning_rate": 0.3, "min_data_in_leaf": 5,
              "num_threads": 1, "deterministic": True, "force_row_wise": True, "seed": 0, "verbosity": -1}
    booster = lightgbm.train(params, lightgbm.Dataset(x_train, label=y_train), num_boost_round=20)
    booster.save_model(str(out))
    predicted = np.argmax(booster.predict(x_test), axis=1)
    return float(np.mean(predicted == y_test))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("model.txt")
    accuracy = train(target)
    print(f"wrote {target} (test accuracy {accuracy:.3f})")
