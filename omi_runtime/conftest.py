"""Shared pytest fixtures: small real models in OMI layout, and real server subprocesses.

Note for test authors: never import omi_runtime.grpc_stubs.grpc_predict_v2_pb2 in a test process that also
imports tritonclient.grpc: both define the `inference.*` protobuf messages in the default descriptor pool and
the second import fails. Talk to the KServe v2 server with Triton's client (or its service_pb2) instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DIGITS_OUTPUTS = [
    {"name": "predict", "datatype": "INT64", "shape": [-1]},
    {"name": "predict_proba", "datatype": "FP32", "shape": [-1, 10]},
]


def write_model(models_dir: Path, doc: dict[str, Any], files: dict[str, bytes] | None = None) -> Path:
    """Lay out <models_dir>/<name>/omi-model.json plus files, as the image does."""
    model_dir = models_dir / doc["name"]
    model_dir.mkdir(parents=True, exist_ok=True)
    for rel, data in (files or {}).items():
        (model_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / rel).write_bytes(data)
    full = {"run_id": "test-run", "interfaces": ["kfserving.v1", "kfserving.v2", "modzy.v2"], **doc}
    (model_dir / "omi-model.json").write_text(json.dumps(full, indent=2))
    return model_dir


@pytest.fixture(scope="session")
def digits_data():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x.astype("float32"), y


@pytest.fixture(scope="session")
def digits_sklearn(tmp_path_factory, digits_data):
    """A deterministic LogisticRegression on digits; returns (models_dir, fitted estimator)."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = digits_data
    model = LogisticRegression(max_iter=3000).fit(x, y)
    models_dir = tmp_path_factory.mktemp("models-sklearn")
    model_dir = write_model(models_dir, {
        "name": "digits", "version": "1.0.0", "format": "sklearn", "files": ["model.joblib"],
        "description": "Digits classifier", "authors": ["omi tests"], "max_batch_size": 64,
        "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": DIGITS_OUTPUTS,
    })
    joblib.dump(model, model_dir / "model.joblib")
    return models_dir, model


@pytest.fixture(scope="session")
def digits_onnx(tmp_path_factory, digits_sklearn):
    """The same classifier exported with skl2onnx (zipmap off: probabilities as a tensor)."""
    from skl2onnx import to_onnx

    _, model = digits_sklearn
    import numpy as np

    onx = to_onnx(model, np.zeros((1, 64), dtype=np.float32), options={"zipmap": False}, target_opset=15)
    models_dir = tmp_path_factory.mktemp("models-onnx")
    write_model(models_dir, {
        "name": "digits-onnx", "version": "2", "format": "onnx", "files": ["model.onnx"],
        "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
    }, {"model.onnx": onx.SerializeToString()})
    return models_dir, model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env() -> dict[str, str]:
    """Environment for a child `python -m omi_runtime`: this process's sys.path, so it sees the same packages
    whether the tests run from a venv or from a Pants-built PEX."""
    path = [str(REPO_ROOT)] + [p for p in sys.path if p and Path(p).exists()]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)), "PYTHONDONTWRITEBYTECODE": "1"}


class ServerProcess:
    """`python -m omi_runtime` as a real subprocess; stdout JSON lines are collected by a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = int(env["HTTP_PORT"]) if env.get("HTTP_PORT", "").isdigit() else None
        full_env = {**subprocess_env(), "OMI_HOST": "127.0.0.1", **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "omi_runtime"], env=full_env, cwd=str(REPO_ROOT),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self.stderr_lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # Drained continuously so a chatty server can never block on a full pipe.
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    @property
    def stderr(self) -> str:
        """Everything written to stderr; complete once the process has exited."""
        if self.proc.poll() is not None:
            self._err_reader.join(5)
        return "".join(self.stderr_lines)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self.events.append(event)
            if event.get("event") == "ready":
                self._ready.set()

    def wait_ready(self, timeout: float = 60.0) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.stderr}")
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready in {timeout}s: {''.join(self.lines)}")
        return self

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("event") == name), None)

    def terminate(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def start_server() -> Iterator[Any]:
    """Factory: start_server(models_dir, INTERFACE=..., PROTOCOL=..., **env) -> ready ServerProcess; killed after."""
    started: list[ServerProcess] = []

    def start(models_dir: Path, wait: bool = True, **env: str) -> ServerProcess:
        env = {"OMI_MODELS_DIR": str(models_dir), "HTTP_PORT": str(free_port()), **env}
        server = ServerProcess(env)
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.kill()


def spawn(request: Any, models_dir: Path, **env: str) -> ServerProcess:
    """Start a ready server for a module/class-scoped fixture; `request.addfinalizer` kills it."""
    server = ServerProcess({"OMI_MODELS_DIR": str(models_dir), "HTTP_PORT": str(free_port()), **env})
    request.addfinalizer(server.kill)
    return server.wait_ready()


ALL_DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                 "FP16", "FP32", "FP64", "BYTES", "BF16"]

CONTENTS_TYPES = [dt for dt in ALL_DATATYPES if dt not in ("FP16", "BF16")]

HANDLERS_PY = '''
"""Test handlers loaded through `handler: "test_handlers:Class"` from the model directory."""
import json
import time

import numpy as np

from omi_runtime.errors import BadRequest


class Echo:
    """Tensor handler: every input comes back as output `out_<name>`; `explain` returns the row sums."""

    def load(self, context):
        self.names = [t.name for t in context.metadata.inputs]

    def predict(self, inputs):
        return {"out_" + name: value for name, value in inputs.items()}


class Explaining:
    batchable = True

    def predict(self, inputs):
        x = inputs["x"]
        return {"y": x * 2}

    def explain(self, inputs):
        return {"saliency": np.ones_like(inputs["x"])}


class Upper:
    """Bytes handler (Chassis style): upper-cases text; an item containing b"fail" fails alone."""

    def process(self, items):
        out = []
        for item in items:
            data = item["input"]
            if b"fail" in data:
                out.append(ValueError("asked to fail"))
            else:
                out.append({"results.json": json.dumps({"text": data.decode().upper()}).encode()})
        return out


class Slow:
    batchable = False

    def predict(self, inputs):
        time.sleep(float(inputs["x"].ravel()[0]))
        return {"y": inputs["x"]}


class BrokenLoad:
    def load(self, context):
        raise RuntimeError("weights are corrupt")

    def predict(self, inputs):
        return {}
'''


@pytest.fixture(scope="session")
def custom_models(tmp_path_factory) -> dict[str, Path]:
    """Custom-handler models, each in its own models dir: {name: models_dir}."""
    root = tmp_path_factory.mktemp("models-custom")
    specs = {
        "echo": {"handler": "test_handlers:Echo",
                 "inputs": [{"name": dt.lower(), "datatype": dt, "shape": [-1]} for dt in ALL_DATATYPES],
                 "outputs": [{"name": "out_" + dt.lower(), "datatype": dt, "shape": [-1]} for dt in ALL_DATATYPES]},
        "echo-contents": {"handler": "test_handlers:Echo",
                          "inputs": [{"name": dt.lower(), "datatype": dt, "shape": [-1]} for dt in CONTENTS_TYPES],
                          "outputs": [{"name": "out_" + dt.lower(), "datatype": dt, "shape": [-1]}
                                      for dt in CONTENTS_TYPES]},
        "explaining": {"handler": "test_handlers:Explaining",
                       "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 2]}],
                       "outputs": [{"name": "y", "datatype": "FP64", "shape": [-1, 2]}]},
        "upper": {"handler": "test_handlers:Upper",
                  "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
                  "outputs": [{"name": "result", "datatype": "BYTES", "shape": [-1]}]},
        "slow": {"handler": "test_handlers:Slow",
                 "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}],
                 "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]},
        "broken": {"handler": "test_handlers:BrokenLoad",
                   "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}],
                   "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]},
    }
    dirs = {}
    for name, spec in specs.items():
        dirs[name] = root / name
        write_model(dirs[name], {"name": name, "version": "1", "format": "custom",
                                 "files": ["test_handlers.py"], **spec},
                    {"test_handlers.py": HANDLERS_PY.encode()})
    return dirs
