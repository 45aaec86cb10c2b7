"""The XGBoost and LightGBM handlers on real boosters: labels, probabilities, raw scores and regressors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omi_contract.record import ModelRecord
from omi_runtime.handlers import create_handler
from omi_runtime.handlers.base import ModelContext


def _x_y(classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int) if classes > 2 else (x[:, 0] > 0).astype(int)
    return x, y if classes else x[:, 0] * 2.0 + x[:, 2]


def _train(fmt: str, classes: int, path: Path) -> Path:
    x, y = _x_y(classes)
    if fmt == "xgboost":
        import xgboost

        objective = {0: "reg:squarederror", 2: "binary:logistic", 3: "multi:softprob"}[classes]
        params = {"objective": objective, "max_depth": 2, "nthread": 1, "seed": 0,
                  **({"num_class": 3} if classes == 3 else {})}
        out = path / "model.json"
        xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=5).save_model(str(out))
    else:
        import lightgbm

        objective = {0: "regression", 2: "binary", 3: "multiclass"}[classes]
        params = {"objective": objective, "num_leaves": 4, "num_threads": 1, "verbosity": -1, "min_data_in_leaf": 5,
                  **({"num_class": 3} if classes == 3 else {})}
        out = path / "model.txt"
        lightgbm.train(params, lightgbm.Dataset(x, label=y), num_boost_round=5).save_model(str(out))
    return out


def _handler(fmt: str, model_file: Path, outputs: list[dict]) -> object:
    record = ModelRecord.from_json({
        "name": "m", "version": "1", "format": fmt, "files": [model_file.name],
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}], "outputs": outputs}, "omi-model.json")
    handler = create_handler(record, model_file.parent)
    handler.load(ModelContext(model_file.parent, record))  # type: ignore[attr-defined]
    return handler


LABELS = {"name": "predict", "datatype": "INT64", "shape": [-1]}
PROBABILITIES = {"name": "probabilities", "datatype": "FP32", "shape": [-1, -1]}


@pytest.mark.parametrize("fmt", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("classes", [2, 3])
def test_a_classifier_gives_labels_and_probabilities(fmt: str, classes: int, tmp_path: Path) -> None:
    handler = _handler(fmt, _train(fmt, classes, tmp_path), [LABELS, PROBABILITIES])
    x, y = _x_y(classes)
    out = handler.predict({"x": x})  # type: ignore[attr-defined]
    probabilities = out["probabilities"]
    assert probabilities.shape == (len(x), classes)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert out["predict"].tolist() == probabilities.argmax(axis=1).tolist()
    assert np.mean(out["predict"] == y) > 0.8  # it learnt something: the handler reads the model it was given


@pytest.mark.parametrize("fmt", ["xgboost", "lightgbm"])
def test_outputs_by_position_and_raw_scores(fmt: str, tmp_path: Path) -> None:
    handler = _handler(fmt, _train(fmt, 3, tmp_path), [
        {"name": "digit", "datatype": "INT64", "shape": [-1]}, {"name": "p", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "raw", "datatype": "FP32", "shape": [-1, 3]}])
    x, _ = _x_y(3)
    out = handler.predict({"x": x[:5]})  # type: ignore[attr-defined]
    assert out["p"].shape == (5, 3) and out["raw"].shape == (5, 3)
    assert out["digit"].tolist() == out["raw"].argmax(axis=1).tolist()  # softmax keeps the order of the margins


@pytest.mark.parametrize("fmt", ["xgboost", "lightgbm"])
def test_a_regressor_gives_values_and_refuses_probabilities(fmt: str, tmp_path: Path) -> None:
    model_file = _train(fmt, 0, tmp_path)
    value = {"name": "value", "datatype": "FP32", "shape": [-1]}
    x, y = _x_y(0)
    out = _handler(fmt, model_file, [value]).predict({"x": x})  # type: ignore[attr-defined]
    assert out["value"].shape == (len(x),) and np.corrcoef(out["value"], y)[0, 1] > 0.8
    with pytest.raises(ValueError, match="'probabilities': the model is a regressor"):
        _handler(fmt, model_file, [value, PROBABILITIES])


def test_xgboost_margin_and_hinge_objectives(tmp_path: Path) -> None:
    import xgboost

    x, y = _x_y(2)
    for objective in ("binary:logitraw", "binary:hinge"):
        booster = xgboost.train({"objective": objective, "max_depth": 2, "nthread": 1, "seed": 0},
                                xgboost.DMatrix(x, label=y), num_boost_round=5)
        booster.save_model(str(tmp_path / f"{objective[7:]}.json"))
    handler = _handler("xgboost", tmp_path / "logitraw.json", [LABELS, PROBABILITIES])
    out = handler.predict({"x": x})  # type: ignore[attr-defined]
    margins = xgboost.Booster(model_file=str(tmp_path / "logitraw.json")).inplace_predict(x)
    assert np.allclose(out["probabilities"][:, 1], 1 / (1 + np.exp(-margins)), atol=1e-6)
    assert out["predict"].tolist() == (margins > 0).astype(int).tolist()
    with pytest.raises(ValueError, match="binary:hinge gives no probabilities: train with binary:logistic"):
        _handler("xgboost", tmp_path / "hinge.json", [LABELS])


def test_a_directory_entry_finds_the_model_file_inside(tmp_path: Path) -> None:
    (tmp_path / "snapshot").mkdir()
    (tmp_path / "snapshot" / "README.md").write_text("a model card\n")
    model_file = _train("lightgbm", 3, tmp_path / "snapshot")
    record = ModelRecord.from_json({
        "name": "m", "version": "1", "format": "lightgbm", "files": ["snapshot"],
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}], "outputs": [LABELS]}, "omi-model.json")
    assert ModelContext(tmp_path, record).first_file((".txt",)) == model_file
