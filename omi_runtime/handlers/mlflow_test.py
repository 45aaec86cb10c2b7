"""The MLflow handler on real MLflow models: a scikit-learn model with a tensor signature, a column-based one fed a
feature matrix or one input per column, and a pyfunc model returning a DataFrame with two outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from omi_contract.record import ModelRecord
from omi_runtime.handlers import create_handler
from omi_runtime.handlers.base import ModelContext


def _x_y() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def _log(tmp_path: Path, model: Any, signature: Any, flavour: str = "sklearn") -> Path:
    import mlflow.sklearn

    out = tmp_path / "model"
    if flavour == "sklearn":
        mlflow.sklearn.save_model(model, str(out), signature=signature, pip_requirements=["scikit-learn"])
    else:
        mlflow.pyfunc.save_model(str(out), python_model=model, signature=signature, pip_requirements=["pandas"])
    return out


def _handler(model_dir: Path, inputs: list[dict], outputs: list[dict]) -> Any:
    record = ModelRecord.from_json({"name": "m", "version": "1", "format": "mlflow", "files": [model_dir.name],
                                    "inputs": inputs, "outputs": outputs}, "omi-model.json")
    handler = create_handler(record, model_dir.parent)
    handler.load(ModelContext(model_dir.parent, record))  # type: ignore[attr-defined]
    return handler


class _TwoOutputs(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """A pyfunc model whose prediction is a DataFrame with one column per output, in another order."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        total = model_input.sum(axis=1).to_numpy()
        return pd.DataFrame({"doubled": total * 2, "total": total})


@pytest.fixture(autouse=True)
def _tracking_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow would otherwise create ./mlruns in the working directory."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())


@pytest.fixture(scope="module")
def fitted() -> Any:
    from sklearn.linear_model import LogisticRegression

    x, y = _x_y()
    return LogisticRegression().fit(x, y)


def test_tensor_signature(tmp_path: Path, fitted: Any) -> None:
    from mlflow.models import infer_signature

    x, _ = _x_y()
    model_dir = _log(tmp_path, fitted, infer_signature(x, fitted.predict(x)))
    handler = _handler(model_dir, [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
                       [{"name": "label", "datatype": "INT64", "shape": [-1]}])
    out = handler.predict({"x": x[:5]})
    np.testing.assert_array_equal(out["label"], fitted.predict(x[:5]))


def test_column_signature_from_one_matrix_and_from_columns(tmp_path: Path) -> None:
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    x, y = _x_y()
    frame = pd.DataFrame(x.astype(np.float64), columns=["a", "b", "c"])
    model = LogisticRegression().fit(frame, y)
    model_dir = _log(tmp_path, model, infer_signature(frame, model.predict(frame)))
    expected = model.predict(frame.iloc[:4])

    as_matrix = _handler(model_dir, [{"name": "features", "datatype": "FP64", "shape": [-1, 3]}],
                         [{"name": "label", "datatype": "INT64", "shape": [-1]}])
    np.testing.assert_array_equal(as_matrix.predict({"features": x[:4].astype(np.float64)})["label"], expected)

    # Named like the columns but declared in another order: mapped by name.
    by_column = _handler(model_dir, [{"name": n, "datatype": "FP64", "shape": [-1]} for n in ("c", "a", "b")],
                         [{"name": "label", "datatype": "INT64", "shape": [-1]}])
    columns = {n: frame[n].to_numpy()[:4] for n in ("c", "a", "b")}
    np.testing.assert_array_equal(by_column.predict(columns)["label"], expected)


def test_dataframe_prediction_maps_outputs_by_name(tmp_path: Path) -> None:
    from mlflow.models import infer_signature

    x, _ = _x_y()
    frame = pd.DataFrame(x.astype(np.float64), columns=["a", "b", "c"])
    model_dir = _log(tmp_path, _TwoOutputs(), infer_signature(frame, _TwoOutputs().predict(None, frame)), "pyfunc")
    handler = _handler(model_dir, [{"name": "features", "datatype": "FP64", "shape": [-1, 3]}],
                       [{"name": "total", "datatype": "FP64", "shape": [-1]},
                        {"name": "doubled", "datatype": "FP64", "shape": [-1]}])
    out = handler.predict({"features": x[:3].astype(np.float64)})
    total = x[:3].astype(np.float64).sum(axis=1)
    np.testing.assert_allclose(out["total"], total)
    np.testing.assert_allclose(out["doubled"], total * 2)


def test_no_mlmodel_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pkl").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="no MLmodel file"):
        _handler(tmp_path / "model", [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
                 [{"name": "y", "datatype": "INT64", "shape": [-1]}])
