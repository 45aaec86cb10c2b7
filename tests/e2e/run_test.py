"""`pants run` of an omi_model serves the model locally with the same runtime and environment variables."""

from __future__ import annotations

import json
import os
import signal
import socket
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
        assert body == {"predictions": [0]}, (proc.stdout.read() if proc.stdout and proc.poll() is not None
                                               else "server not ready")
        # Ctrl-C, as a user stops it: Pants interrupts the server (which runs in its own session) and waits for it.
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        assert _port_closed_within(port, 30), f"the server still listens on {port} after Ctrl-C of `pants run`"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _kill_servers_on(port)


def _port_closed_within(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return True
        time.sleep(0.2)
    return False


def _kill_servers_on(port: int) -> None:
    """Leave nothing running even when the test fails: the server is not in the test's process group."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if f"HTTP_PORT={port}".encode() in environ and b"OMI_MODELS_DIR" in b"\0".join(environ):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
