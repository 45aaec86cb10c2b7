"""Fixtures for end-to-end tests: clones of the repository, real Pants runs, and cleanup of what they start."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # omi_testutil: the registry test helpers


@dataclass
class PantsResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Clone:
    """A copy of the repository's tracked and new files at another path, where Pants runs for real."""

    def __init__(self, root: Path, pantsd: bool) -> None:
        self.root = root
        self.pantsd = pantsd  # worth it for clones that run many commands; one-shot clones leave no daemon

    def pants(self, *args: str, env: Optional[Dict[str, str]] = None, umask: Optional[int] = None,
              check: bool = True, timeout: int = 1500) -> PantsResult:
        full_env = {**os.environ, **(env or {})}
        full_env.pop("PANTS_BUILDROOT_OVERRIDE", None)
        preexec = (lambda: os.umask(umask)) if umask is not None else None
        proc = subprocess.run(
            ["./pants", "--no-dynamic-ui", *([] if self.pantsd else ["--no-pantsd"]), *args], cwd=self.root,
            env=full_env, text=True,
            capture_output=True, timeout=timeout, preexec_fn=preexec,
        )
        result = PantsResult(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"pants {' '.join(args)} failed ({proc.returncode}):\n{result.output[-6000:]}")
        return result

    def stop_pantsd(self) -> None:
        subprocess.run(["pkill", "-f", f"pantsd \\[{self.root}\\]"], check=False)

    def record(self, target_path: str, name: str) -> Dict:
        path = self.root / "dist" / f"{target_path.replace('/', '.')}" / f"{name}.omi.json"
        return json.loads(path.read_text())

    def layout(self, target_path: str, name: str) -> Path:
        return self.root / "dist" / target_path.replace("/", ".") / f"{name}.oci"

    def write(self, relpath: str, content: str) -> None:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def copy_tree(src_root: Path, dest: Path) -> None:
    """Copy the files git tracks, plus new files it does not ignore, so uncommitted work is tested too."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = src_root / rel
        if not src.exists():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


@pytest.fixture(scope="session")
def source_snapshot(tmp_path_factory) -> Path:
    """One snapshot of the sources for the whole session: every clone is made from the same files."""
    snapshot = tmp_path_factory.mktemp("source-snapshot")
    copy_tree(REPO, snapshot)
    return snapshot


@pytest.fixture(scope="session")
def clone_factory(tmp_path_factory, source_snapshot):
    """Fresh copies of the sources; daemons of clones that use pantsd are stopped at the end."""
    clones = []

    def make(name: str, pantsd: bool = False) -> Clone:
        dest = tmp_path_factory.mktemp(name)
        shutil.copytree(source_snapshot, dest, symlinks=True, dirs_exist_ok=True)
        clone = Clone(dest, pantsd)
        clones.append(clone)
        return clone

    yield make
    for clone in clones:
        clone.stop_pantsd()


@pytest.fixture(scope="session")
def packaged_clone(clone_factory) -> Clone:
    """One clone with `pants package examples::` done, shared by the tests that only read its output."""
    clone = clone_factory("clone-a", pantsd=True)
    clone.pants("package", "examples::")
    return clone


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, **kwargs)


@contextlib.contextmanager
def pulled_image(layout: Path) -> Iterator[str]:
    """`podman pull oci:<layout>` for the duration of a test; then the name podman gave it is removed again."""
    image_id = run(["podman", "pull", "-q", f"oci:{layout}"]).stdout.strip()
    try:
        yield image_id
    finally:
        subprocess.run(["podman", "rmi", f"localhost{layout}:latest"], capture_output=True)


PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
RUN_FLAGS = ["--rm", "--read-only", "--net=host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]


class Container:
    def __init__(self, image: str, env: dict) -> None:
        self.name = f"omi-e2e-{uuid.uuid4().hex[:8]}"
        args = [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]
        run([*PODMAN, "run", "-d", "--name", self.name, *RUN_FLAGS, *args, image])

    def logs(self) -> str:
        return subprocess.run(["podman", "logs", self.name], capture_output=True, text=True).stdout

    def stop(self) -> None:
        subprocess.run([*PODMAN, "stop", "-t", "10", self.name], capture_output=True)
        subprocess.run(["podman", "rm", "-f", self.name], capture_output=True)


def wait_for(check, timeout: float = 60.0):
    """Call `check` until it returns a truthy value without raising."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
            last = f"{check} returned {value!r}"
        except Exception as e:  # noqa: BLE001 - the server is still starting
            last = e
        time.sleep(0.25)
    raise AssertionError(f"not ready in {timeout}s: {last}")


def container_gone(name: str) -> bool:
    listed = subprocess.run(["podman", "ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}"],
                            capture_output=True, text=True).stdout.split()
    return name not in listed


def modzy_run_json(port: int, rows: list) -> tuple:
    """Modzy v2 over gRPC as a platform calls it: Status until it answers, then one Run of a JSON item holding
    `rows`; (the status response, the item's `results.json` decoded)."""
    import grpc

    from omi_runtime.grpc_stubs import modzy_model_v2_pb2 as modzy_pb2
    from omi_runtime.grpc_stubs import modzy_model_v2_pb2_grpc as modzy_grpc

    stub = modzy_grpc.ModzyModelStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    status = wait_for(lambda: stub.Status(modzy_pb2.StatusRequest(), timeout=5))
    item = modzy_pb2.InputItem(input={"input": json.dumps(rows).encode()})
    response = stub.Run(modzy_pb2.RunRequest(inputs=[item]), timeout=30)
    assert response.outputs[0].success, response.outputs[0]
    return status, json.loads(response.outputs[0].output["results.json"])
