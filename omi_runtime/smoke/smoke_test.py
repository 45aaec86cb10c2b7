"""The smoke test against the real runtime (examples/digits) and against fakes that break the contract.

Runs the smoke CLI in a subprocess, as `pants check` does: that also keeps the KServe protobuf messages out of
this test process (they clash with tritonclient's in one descriptor pool).
"""

import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest

from omi_contract import interfaces

pytest.importorskip("grpc")  # the smoke test needs the runtime resolve (CPython 3.11, grpcio, numpy)

from omi_runtime.smoke.tensors import decode_raw, encode_raw, json_shape, shape_matches, values_equal  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(REPO_ROOT, "examples", "digits")
TINY = {"name": "tiny", "version": "1", "format": "custom", "handler": "fake:Fake", "files": ["m.bin"],
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
        "interfaces": ["kfserving.v1"], "samples": [{"inputs": {"x": [[0, 1], [2, 3]]}}]}
# A kfserving.v1 server that answers every :predict with a [2, 1] tensor where [-1] is declared.
FAKE_V1 = textwrap.dedent("""
    import json, os
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class H(BaseHTTPRequestHandler):
        def _send(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._send({"name": os.environ["MODEL_NAME"], "ready": True})

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self._send({"predictions": [[1], [0]]})

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(os.environ["HTTP_PORT"])), H).serve_forever()
""")


def _models_dir(tmp_path, doc):
    model_dir = tmp_path / "models" / doc["name"]
    model_dir.mkdir(parents=True)
    (model_dir / "omi-model.json").write_text(json.dumps(doc))
    return str(tmp_path / "models")


def _smoke(models_dir, model, interfaces, command, *options, timeout=300):
    return subprocess.run([sys.executable, "-m", "omi_runtime.smoke", "--models-dir", models_dir, "--model",
                           model, "--interfaces", json.dumps(interfaces), "--target", "t:t", *options, "--",
                           *command], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
                          env=_env())


def _env():
    """The child processes see the modules this test sees (Pants runs tests from a PEX, not an installed venv)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


@pytest.mark.skipif(not os.path.isfile(os.path.join(EXAMPLE, "model.joblib")), reason="examples/digits absent")
def test_real_runtime_serving_the_digits_example_passes(tmp_path) -> None:
    pytest.importorskip("sklearn")
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(EXAMPLE, "model.yaml"), encoding="utf-8") as f:
        record = yaml.safe_load(f)
    # The example declares interfaces, inputs and outputs, so the record is model.yaml as JSON
    # (what load_model_yaml(...).record_json() writes into the image).
    models_dir = _models_dir(tmp_path, record)
    os.symlink(os.path.join(EXAMPLE, "model.joblib"), os.path.join(models_dir, "digits", "model.joblib"))
    result = _smoke(models_dir, "digits", record["interfaces"], [sys.executable, "-m", "omi_runtime"])
    assert (result.returncode, result.stdout, result.stderr) == (0, "omi smoke: OK, 0 violations\n", "")


def test_wrong_output_shape_is_caught(tmp_path) -> None:
    script = tmp_path / "fake_v1.py"
    script.write_text(FAKE_V1)
    result = _smoke(_models_dir(tmp_path, TINY), "tiny", ["kfserving.v1"], [sys.executable, str(script)])
    assert result.stdout.splitlines() == [
        "t:t: kfserving.v1 server: POST /v1/models/tiny:predict samples[0] predictions.shape: is [2, 1], which does "
        "not match the declared [-1] (make the handler return predict with the declared shape or fix model.yaml)",
        "omi smoke: 1 violation (OMI404 x1)"]
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_runtime_that_exits_at_start_up_is_reported(tmp_path) -> None:
    command = [sys.executable, "-c", "import sys; sys.stderr.write('omi_runtime: error: bad model\\n'); sys.exit(2)"]
    result = _smoke(_models_dir(tmp_path, TINY), "tiny", ["kfserving.v1", "modzy.v2"], command)
    assert result.stdout.splitlines() == [
        "t:t: kfserving.v1 server: start: exited with code 2 before becoming ready: omi_runtime: error: bad model "
        "(see the runtime's error above)",
        "t:t: modzy.v2 server: start: exited with code 2 before becoming ready: omi_runtime: error: bad model "
        "(see the runtime's error above)",
        "omi smoke: 2 violations (OMI401 x2)"]


@pytest.mark.parametrize("declared", [["modzy.v2", "kfserving.v1", "kfserving.v2"], ["modzy.v2"]])
def test_a_model_that_does_not_load_is_reported_once(tmp_path, declared) -> None:
    record = {**TINY, "name": "digits", "format": "xgboost", "files": ["model.json"], "interfaces": declared}
    record.pop("handler")
    models_dir = _models_dir(tmp_path, record)
    with open(os.path.join(models_dir, "digits", "model.json"), "wb") as f:
        pickle.dump({"a pickled": "estimator"}, f, protocol=4)
    result = _smoke(models_dir, "digits", declared, [sys.executable, "-m", "omi_runtime"])
    problem = ("model.json: format xgboost: is not an XGBoost model (expected a Booster saved with save_model as "
               "JSON or UBJSON): it is a Python pickle (package the file the format loads, or declare the model's "
               "format in model.yaml)")
    # The first start that loads the model says why (Modzy loads on Status), and the other interfaces are not tried.
    first = f"t:t: model digits: load: {problem} (fix the model file or model.yaml, then package again)"
    assert result.stdout.splitlines() == [first, "omi smoke: 1 violation (OMI401 x1)"], result.stdout
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_a_server_that_never_gets_ready_is_bounded_and_reaped(tmp_path) -> None:
    pid_file = tmp_path / "pids"
    # The parent and a child it spawns both hang; both must be gone when the smoke test returns.
    command = [sys.executable, "-c", textwrap.dedent(f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pid_file)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(600)
    """)]
    result = _smoke(_models_dir(tmp_path, TINY), "tiny", ["kfserving.v2"], command, "--start-timeout", "2",
                    timeout=60)
    assert result.stdout.splitlines() == [
        "t:t: kfserving.v2 server: start: did not become ready in time (make it listen on HTTP_PORT within 2s)",
        "omi smoke: 1 violation (OMI401 x1)"]
    for pid in map(int, pid_file.read_text().split()):
        assert not _running(pid)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphaned child is reaped by init, which in a container may be slow to do so)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_usage_errors_exit_2(tmp_path) -> None:
    result = _smoke(str(tmp_path), "tiny", ["kfserving.v1"], [])
    assert result.returncode == 2 and result.stderr == "omi smoke: error: give the runtime command after --\n"


def test_raw_tensors_round_trip() -> None:
    for datatype, value in (("FP32", [[0.5, 1.0]]), ("INT64", [1, -2]), ("BOOL", [True, False]),
                            ("BYTES", ["a", "bc"]), ("UINT8", [[1], [2]])):
        raw, shape = encode_raw(value, datatype)
        assert decode_raw(raw, datatype, shape) == value


def test_shapes_and_values() -> None:
    assert json_shape([[1, 2, 3], [4, 5, 6]]) == [2, 3]
    assert shape_matches([2, 10], [-1, 10]) and not shape_matches([2], [-1, 1]) and not shape_matches([2, 9], [-1, 10])
    assert values_equal([0.1, 0.2], [0.10000001, 0.2], "FP32") and not values_equal([0, 1], [0, 2], "INT64")
    assert not values_equal([[0], [1]], [0, 1], "INT64")


@pytest.mark.parametrize("name", interfaces.SERVED)
def test_each_served_interface_has_its_probe(name: str) -> None:
    from omi_runtime.smoke import probes as smoke_probes

    assert callable(getattr(smoke_probes, interfaces.served(name).probe))
