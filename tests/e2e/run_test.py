"""`pants run` of an omi_model serves the model locally with the same runtime and environment variables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

from conftest import Clone, free_port

ZERO = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
        0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]


def test_pants_run_serves_kserve_v1(packaged_clone: Clone) -> None:
    port = free_port()
    env = {**os.environ, "INTERFACE": "kfserving", "PROTOCOL": "v1", "HTTP_PORT": str(port)}
    proc = subprocess.Popen(["./pants", "--no-pantsd", "--no-dynamic-ui", "run", "examples/digits:digits"],
                            cwd=packaged_clone.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/digits:predict",
                                                 data=json.dumps({"instances": [ZERO]}).encode(), method="POST")
                body = json.loads(urllib.request.urlopen(request, timeout=5).read())
                break
            except OSError:
                time.sleep(1)
        assert body == {"predictions": [0]}, proc.stdout.read() if proc.poll() is not None else "server not ready"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
