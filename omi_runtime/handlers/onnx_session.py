"""An onnxruntime CPU session as the built-in handlers open one: quiet, and `OMI_ONNX_THREADS` intra-op threads when
set (the default is one per core)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

THREADS_ENV = "OMI_ONNX_THREADS"


def open_session(path: Path) -> Any:
    import onnxruntime as ort  # heavy: only for the formats that run ONNX graphs

    options = ort.SessionOptions()
    options.log_severity_level = 3
    threads = os.environ.get(THREADS_ENV, "").strip()
    if threads.isdigit():
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
