"""Built-in handler for ONNX models, run with onnxruntime on CPU (format: onnx).

Declared inputs/outputs map to the session's by name when the names match, else by position, so model.yaml
may use friendlier names than the exporter did. Inputs are cast to the session's element types.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from omi_runtime.handlers.base import Handler, ModelContext
from omi_runtime.handlers.onnx_session import open_session

# onnxruntime type strings -> numpy dtypes
_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16, "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_, "tensor(string)": object,
}


def _map_names(declared: list[str], actual: list[str], what: str) -> dict[str, str]:
    if len(declared) > len(actual):
        raise ValueError(f"model.yaml declares {len(declared)} {what}s, the ONNX model has {len(actual)}: {actual}")
    return {name: (name if name in actual else actual[i]) for i, name in enumerate(declared)}


class OnnxHandler(Handler):
    batchable = True
    thread_agnostic = True

    def __init__(self) -> None:
        self.session: Any = None
        self.inputs: dict[str, tuple[str, Any]] = {}  # declared -> (session name, dtype)
        self.outputs: dict[str, str] = {}  # declared -> session name

    def load(self, context: ModelContext) -> None:
        self.session = context.load_model_file(open_session)
        session_inputs = {i.name: i.type for i in self.session.get_inputs()}
        in_map = _map_names([t.name for t in context.metadata.inputs], list(session_inputs), "input")
        self.inputs = {d: (s, _ORT_TYPES.get(session_inputs[s])) for d, s in in_map.items()}
        self.outputs = _map_names([t.name for t in context.metadata.outputs],
                                  [o.name for o in self.session.get_outputs()], "output")

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {}
        for declared, (name, dtype) in self.inputs.items():
            value = inputs[declared]
            feed[name] = value.astype(dtype, copy=False) if dtype is not None else value
        names = list(self.outputs.values())
        results = self.session.run(names, feed)
        return {declared: np.asarray(r) for declared, r in zip(self.outputs, results, strict=True)}
