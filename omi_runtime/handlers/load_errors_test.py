"""Broken models as users make them, loaded by the real libraries: each is one line naming the model file, the
declared format and what the file is instead, whatever the library raised."""

from __future__ import annotations

import asyncio
import io
import pickle
import tempfile
from pathlib import Path

import pytest

from omi_contract.record import ModelRecord
from omi_runtime.dataplane import ModelRuntime

LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 202333\n")
EXPECTED = {
    "sklearn": "(expected an estimator saved with joblib or pickle)",
    "xgboost": "(expected a Booster saved with save_model as JSON or UBJSON)",
    "lightgbm": "(expected a Booster saved with save_model as text)",
    "onnx": "(expected an ONNX ModelProto (protobuf) or an ONNX Runtime .ort file)",
}


def _load_error(tmp_path: Path, fmt: str, name: str, data: bytes) -> str | None:
    (tmp_path / name).write_bytes(data)
    record = ModelRecord.from_json({
        "name": "m", "version": "1", "format": fmt, "files": [name],
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}]}, "omi-model.json")
    runtime = ModelRuntime(record, tmp_path)
    try:
        assert not asyncio.run(runtime.load())
    finally:
        runtime.close()
    return runtime.load_error


@pytest.fixture(scope="module")
def saved() -> dict[str, bytes]:
    """One small real model per format, saved as its library saves it."""
    import joblib
    import lightgbm
    import numpy as np
    import xgboost
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    out: dict[str, bytes] = {}
    estimator = LogisticRegression().fit(x, y)
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    out["sklearn"] = buffer.getvalue()
    out["onnx"] = to_onnx(estimator, x[:1], options={"zipmap": False}, target_opset=15).SerializeToString()
    with tempfile.TemporaryDirectory() as tmp:
        xgboost.train({"objective": "binary:logistic", "nthread": 1}, xgboost.DMatrix(x, label=y),
                      num_boost_round=3).save_model(f"{tmp}/m.json")
        lightgbm.train({"objective": "binary", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5},
                       lightgbm.Dataset(x, label=y), num_boost_round=3).save_model(f"{tmp}/m.txt")
        out["xgboost"] = Path(f"{tmp}/m.json").read_bytes()
        out["lightgbm"] = Path(f"{tmp}/m.txt").read_bytes()
    return out


@pytest.mark.parametrize(("fmt", "name", "source", "found"), [
    ("xgboost", "model.json", "sklearn", "a Python pickle"),
    ("xgboost", "model.json", "lightgbm", "a LightGBM text model"),
    ("lightgbm", "model.txt", "xgboost", "an XGBoost JSON model"),
    ("lightgbm", "model.txt", "sklearn", "a Python pickle"),
    ("onnx", "model.onnx", "sklearn", "a Python pickle"),
    ("onnx", "model.onnx", "xgboost", "an XGBoost JSON model"),
    ("sklearn", "model.joblib", "onnx", "an ONNX model (protobuf)"),
    ("sklearn", "model.joblib", "lightgbm", "a LightGBM text model"),
])
def test_a_model_file_of_another_format_is_named_with_what_it_is(tmp_path: Path, saved: dict[str, bytes], fmt: str,
                                                                  name: str, source: str, found: str) -> None:
    title = {"xgboost": "an XGBoost", "lightgbm": "a LightGBM", "onnx": "an ONNX", "sklearn": "a scikit-learn"}[fmt]
    assert _load_error(tmp_path, fmt, name, saved[source]) == (
        f"{name}: format {fmt}: is not {title} model {EXPECTED[fmt]}: it is {found} (package the file the format "
        "loads, or declare the model's format in model.yaml)")


@pytest.mark.parametrize(("fmt", "name"), [("sklearn", "model.joblib"), ("xgboost", "model.json"),
                                           ("lightgbm", "model.txt"), ("onnx", "model.onnx")])
def test_a_git_lfs_pointer_says_to_fetch_the_weights(tmp_path: Path, fmt: str, name: str) -> None:
    error = _load_error(tmp_path, fmt, name, LFS_POINTER)
    assert error is not None and error.startswith(f"{name}: format {fmt}: is not ")
    assert error.endswith(" model: it is a git LFS pointer, not the file itself (run `git lfs pull`, or fetch the "
                          "weights another way)")


def test_a_lightgbm_file_cut_in_its_header_says_so(tmp_path: Path, saved: dict[str, bytes]) -> None:
    data = saved["lightgbm"]
    assert _load_error(tmp_path, "lightgbm", "model.txt", data[:100]) == (
        "model.txt: format lightgbm: is not a whole LightGBM model: its header has no feature_names line "
        "(truncated, or not written by save_model?) (copy or export the model file again)")
    assert _load_error(tmp_path, "lightgbm", "model.txt", data[:data.index(b"\nTree=")]) == (
        "model.txt: format lightgbm: is not a whole LightGBM model: it ends before its first tree (truncated?) (copy "
        "or export the model file again)")


def test_a_truncated_onnx_file_says_where_it_ends(tmp_path: Path, saved: dict[str, bytes]) -> None:
    data = saved["onnx"]
    error = _load_error(tmp_path, "onnx", "model.onnx", data[:len(data) // 2])
    assert error is not None and error.startswith("model.onnx: format onnx: is not a whole ONNX model: field 7 ")
    assert error.endswith("bytes past the end of the file (truncated?) (copy or export the model file again)")


def test_a_lightgbm_file_cut_in_its_trees_is_refused_before_lightgbm_reads_it(tmp_path: Path,
                                                                              saved: dict[str, bytes]) -> None:
    data = saved["lightgbm"]
    end = data.index(b"end of trees") + len("end of trees")
    assert _load_error(tmp_path, "lightgbm", "model.txt", data[:end - 100]) == (
        "model.txt: format lightgbm: is not a whole LightGBM model: it ends 100 bytes before the end of its trees "
        "(truncated?) (copy or export the model file again)")


def test_a_lightgbm_file_cut_in_its_parameters_never_reaches_lightgbm(tmp_path: Path, saved: dict[str, bytes]) -> None:
    # LightGBM 4 crashes the whole process on this file (a segmentation fault): it must never see it.
    data = saved["lightgbm"]
    assert _load_error(tmp_path, "lightgbm", "model.txt", data[:data.index(b"\nparameters:") + 40]) == (
        "model.txt: format lightgbm: is not a whole LightGBM model: it ends inside its parameters section "
        "(truncated?) (copy or export the model file again)")


def test_a_file_of_the_right_kind_the_library_refuses_gives_the_library_reason_in_one_line(
        tmp_path: Path, saved: dict[str, bytes]) -> None:
    data = saved["xgboost"]
    error = _load_error(tmp_path, "xgboost", "model.json", data[:len(data) // 2])
    assert error is not None and error.startswith("model.json: format xgboost: XGBoost could not load it: XGBoostError: ")
    assert "\n" not in error and len(error) < 420


def test_a_pickle_of_something_else_is_the_handler_own_refusal(tmp_path: Path) -> None:
    # Loads fine as a pickle: what is wrong is what it holds, which the sklearn handler words itself.
    error = _load_error(tmp_path, "sklearn", "model.joblib", pickle.dumps({"not": "a model"}))
    assert error == "ValueError: output 'predict': dict has no method predict()"
