"""Process-level behaviour: start-up errors are one clean line, SIGTERM drains and exits 0, logs are JSON."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from omi_contract.image import EXIT_MODEL_LOAD
from omi_runtime.conftest import ServerProcess, free_port, write_model


def _fail(env: dict[str, str]) -> tuple[int, str]:
    server = ServerProcess(env)
    try:
        code = server.proc.wait(60)
    finally:
        server.kill()
    return code, server.stderr


@pytest.mark.parametrize("env, needle", [
    ({"INTERFACE": "triton", "PROTOCOL": "v2"},
     "INTERFACE='triton' is not supported: use one of kfserving, kserve, modzy"),
    ({"PROTOCOL": "v2"}, "INTERFACE is not set"),
    ({"INTERFACE": "kfserving", "PROTOCOL": "v3"}, "PROTOCOL='v3' is not supported: use one of v1, v2"),
    ({"INTERFACE": "modzy", "PROTOCOL": "v1"}, "modzy.v1"),
    ({"INTERFACE": "kfserving", "PROTOCOL": "v2", "HTTP_PORT": "http"}, "HTTP_PORT='http'"),
    ({"INTERFACE": "kfserving", "PROTOCOL": "v2", "MODEL_NAME": "other"},
     "MODEL_NAME=other is not bundled: use one of"),
    ({"INTERFACE": "kfserving", "PROTOCOL": "v2", "OMI_MAX_MESSAGE_BYTES": "lots"}, "OMI_MAX_MESSAGE_BYTES"),
    ({"INTERFACE": "kfserving", "PROTOCOL": "v2", "OMI_MODELS_DIR": "/nonexistent"}, "OMI_MODELS_DIR"),
])
def test_startup_errors_are_one_line(digits_sklearn, env, needle):
    models_dir, _ = digits_sklearn
    code, stderr = _fail({"OMI_MODELS_DIR": str(models_dir), "HTTP_PORT": str(free_port()), **env})
    assert code != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert needle in lines[0] and "Traceback" not in stderr


def test_undeclared_pair_is_refused(tmp_path, digits_sklearn):
    models_dir, _ = digits_sklearn
    source = models_dir / "digits"
    doc = json.loads((source / "omi-model.json").read_text())
    doc["interfaces"] = ["kfserving.v2", "modzy.v2"]
    write_model(tmp_path, doc, {"model.joblib": (source / "model.joblib").read_bytes()})
    code, stderr = _fail({"OMI_MODELS_DIR": str(tmp_path), "HTTP_PORT": str(free_port()),
                          "INTERFACE": "kfserving", "PROTOCOL": "v1"})
    assert code != 0 and len(stderr.strip().splitlines()) == 1
    assert "kfserving.v1 is not declared by model digits: use one of kfserving.v2, modzy.v2" in stderr


def test_model_name_selects_among_several(tmp_path, digits_sklearn, start_server):
    models_dir, _ = digits_sklearn
    source = models_dir / "digits"
    for name in ("alpha", "beta"):
        doc = json.loads((source / "omi-model.json").read_text())
        write_model(tmp_path, dict(doc, name=name), {"model.joblib": (source / "model.joblib").read_bytes()})
    code, stderr = _fail({"OMI_MODELS_DIR": str(tmp_path), "HTTP_PORT": str(free_port()),
                          "INTERFACE": "kfserving", "PROTOCOL": "v1"})
    assert code != 0 and "MODEL_NAME is unset and 2 models are bundled: set it to one of alpha, beta" in stderr
    server = start_server(tmp_path, INTERFACE="kfserving", PROTOCOL="v1", MODEL_NAME="beta")
    assert requests.get(f"http://127.0.0.1:{server.port}/v1/models").json() == {"models": ["beta"]}


def test_load_failure_exits_non_zero(custom_models):
    code, stderr = _fail({"OMI_MODELS_DIR": str(custom_models["broken"]), "HTTP_PORT": str(free_port()),
                          "INTERFACE": "kfserving", "PROTOCOL": "v2"})
    assert code == EXIT_MODEL_LOAD and len(stderr.strip().splitlines()) == 1
    assert "model broken failed to load: RuntimeError: weights are corrupt" in stderr


def test_port_in_use(digits_sklearn, start_server):
    models_dir, _ = digits_sklearn
    first = start_server(models_dir, INTERFACE="kfserving", PROTOCOL="v1")
    for protocol in ("v1", "v2"):
        code, stderr = _fail({"OMI_MODELS_DIR": str(models_dir), "HTTP_PORT": str(first.port),
                              "INTERFACE": "kfserving", "PROTOCOL": protocol})
        assert code != 0 and len(stderr.strip().splitlines()) == 1 and "cannot listen" in stderr, stderr


def test_ready_line_and_sigterm_drains(custom_models, start_server):
    server = start_server(custom_models["slow"], INTERFACE="kfserving", PROTOCOL="v1")
    ready = server.event("ready")
    assert {k: ready[k] for k in ("interface", "protocol", "port", "model")} == {
        "interface": "kfserving", "protocol": "v1", "port": server.port, "model": "slow"}
    assert ready["model_loaded"] is True and ready["ready_seconds"] > 0
    results = {}

    def call():  # a 1.5 s request in flight when SIGTERM arrives
        results["reply"] = requests.post(f"http://127.0.0.1:{server.port}/v1/models/slow:predict",
                                         json={"instances": [1.5]}, timeout=30)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert server.terminate() == 0
    assert time.monotonic() - started < 12
    thread.join(10)
    assert results["reply"].status_code == 200 and results["reply"].json() == {"predictions": [1.5]}
    assert server.event("stopped") is not None
    for line in server.lines:
        json.loads(line)  # every stdout line is one JSON object


def test_sigterm_grpc_exits_zero(digits_sklearn, start_server):
    models_dir, _ = digits_sklearn
    for interface in ("kfserving", "modzy"):
        server = start_server(models_dir, INTERFACE=interface, PROTOCOL="v2")
        assert server.terminate() == 0


def test_heavy_modules_are_imported_lazily(digits_sklearn):
    """A sklearn model served over gRPC never imports onnxruntime or aiohttp; REST never imports grpc."""
    import subprocess
    import sys

    from omi_runtime.conftest import REPO_ROOT, subprocess_env

    models_dir, _ = digits_sklearn
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from omi_runtime.dataplane import ModelRuntime\n"
        "from omi_runtime.metadata import load_metadata\n"
        "import omi_runtime.transports.kserve_v2_grpc, omi_runtime.transports.modzy_v2_grpc\n"
        f"d = Path({str(models_dir / 'digits')!r})\n"
        "assert asyncio.run(ModelRuntime(load_metadata(d), d).load())\n"
        "print(sorted(m for m in ('onnxruntime', 'aiohttp', 'skl2onnx') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=subprocess_env(), capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    rest = subprocess.run([sys.executable, "-c", "import sys, omi_runtime.server, "
                           "omi_runtime.transports.kserve_v1_rest; print('grpc' in sys.modules)"],
                          cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, check=True)
    assert rest.stdout.strip() == "False"


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_shutdown_is_bounded_when_a_request_hangs(custom_models, start_server, protocol):
    """A model call outlasting the drain period must not keep the process alive."""
    server = start_server(custom_models["slow"], INTERFACE="kfserving", PROTOCOL=protocol, OMI_DRAIN_SECONDS="1")
    if protocol == "v1":
        def call():
            try:
                requests.post(f"http://127.0.0.1:{server.port}/v1/models/slow:predict", json={"instances": [30]},
                              timeout=40)
            except requests.RequestException:
                pass
    else:
        import numpy as np
        import tritonclient.grpc as triton

        def call():
            with triton.InferenceServerClient(url=f"127.0.0.1:{server.port}") as client:
                tensor = triton.InferInput("x", [1], "FP32")
                tensor.set_data_from_numpy(np.array([30.0], np.float32))
                try:
                    client.infer("slow", [tensor], client_timeout=40)
                except Exception:
                    pass

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    time.sleep(1.0)
    started = time.monotonic()
    assert server.terminate(timeout=20) == 0
    assert time.monotonic() - started < 6
