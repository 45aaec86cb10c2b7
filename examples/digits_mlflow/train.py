"""Train the MLflow digits example deterministically and log it with MLflow into a local file store.

    pants run examples/digits_mlflow/train.py

Fits a scikit-learn pipeline (scaling, then logistic regression) on scikit-learn's bundled digits data set, logs
it in an MLflow run (a file store in a temporary directory: no tracking server) with the signature inferred from
the training data, and copies the logged model directory (`MLmodel`, `requirements.txt`, `python_env.yaml`,
`conda.yaml`, `model.pkl`) to `model/` next to this file. The run id MLflow gave the run is in `model/MLmodel`,
where model.yaml reads it (`run_id_from`). Same library versions give the same model; MLflow's run id and
timestamps differ on each run.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def train(out: Path) -> tuple[float, str]:
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data.astype("float32"), digits.target, test_size=0.25, random_state=0
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0))
    model.fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    with tempfile.TemporaryDirectory() as store:
        mlflow.set_tracking_uri(Path(store).as_uri())
        mlflow.set_experiment("digits")
        with mlflow.start_run() as run:
            mlflow.log_param("max_iter", 2000)
            mlflow.log_metric("test_accuracy", accuracy)
            info = mlflow.sklearn.log_model(model, "model", signature=infer_signature(x_train, model.predict(x_train)))
        logged = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=store + "/download"))
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(logged, out)
    return accuracy, run.info.run_id


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("model")
    accuracy, run_id = train(target)
    print(f"wrote {target} (MLflow run {run_id}, test accuracy {accuracy:.3f})")
