"""Train the digits example model deterministically from scikit-learn's bundled digits data set.

    pants run examples/digits/train.py

Writes model.joblib next to this file. Same library versions ⇒ the same bytes (fixed seed, single thread).
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split


def train(out: Path) -> float:
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data.astype("float32"), digits.target, test_size=0.25, random_state=0
    )
    model = LogisticRegression(max_iter=2000, random_state=0)
    model.fit(x_train, y_train)
    joblib.dump(model, out, compress=0)
    return float(model.score(x_test, y_test))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("model.joblib")
    accuracy = train(target)
    print(f"wrote {target} (test accuracy {accuracy:.3f})")
