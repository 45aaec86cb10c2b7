"""Convert the digits example's scikit-learn model to ONNX (skl2onnx), next to this file.

    pants run examples/digits_onnx/convert.py

The ONNX graph takes `input-0` (FP32, [N, 64]) and returns the label (INT64, [N]) and the class probabilities
(FP32, [N, 10]); zipmap is off so the probabilities are a plain tensor.
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

HERE = Path(__file__).resolve().parent


def convert(source: Path, out: Path) -> None:
    model = joblib.load(source)
    onnx = convert_sklearn(model, initial_types=[("input-0", FloatTensorType([None, 64]))],
                           options={id(model): {"zipmap": False}}, target_opset=17)
    out.write_bytes(onnx.SerializeToString())


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "digits" / "model.joblib"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "model.onnx"
    convert(source, target)
    print(f"wrote {target}")
