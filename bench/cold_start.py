"""Cold start per interface under podman: from `podman run` to the first successful inference of the digits image.

    dist/export/python/virtualenvs/runtime/3.11.7/bin/python bench/cold_start.py [--runs 5] [--no-build]

(export the venv first with `./pants export --resolve=runtime`: it has grpcio, numpy and omi_runtime's generated
protos). The image is built with `./pants --no-dynamic-ui package examples/digits:digits` (skipped with `--no-build`)
and copied from `dist/examples.digits/digits.oci` into podman's storage under a name unique to the run, once and
untimed. Then, for each interface and run, a fresh container is started with

    podman --runtime runc --cgroup-manager=cgroupfs run -d --rm --name NAME --net=host \
           --ulimit nofile=1024:1024 --ulimit nproc=1000:1000 -e INTERFACE=.. -e PROTOCOL=.. -e HTTP_PORT=PORT IMAGE

and a real client asks for one prediction (the digit 0 of the model's sample) every 5 ms until it gets the right
answer: kfserving.v1 REST `POST /v1/models/digits:predict` (urllib), kfserving.v2 gRPC `ModelInfer` with raw FP32
input, modzy.v2 gRPC `Run` (which loads the model itself, so no `Status` call first). Each gRPC attempt uses a new
channel (a failed channel would wait out gRPC's reconnect backoff), and a cheap TCP connect probe gates the client
so that polling takes little CPU from the starting container on these 2 cores. Refused connections, gRPC
UNAVAILABLE and error answers count as "not up yet"; a wrong prediction or 60 s without an answer fails the run.

Per run it records:
  - podman run: how long `podman run -d` took to return (podman's own share of the start);
  - start -> first inference: from just before `podman run -d` to the first correct answer;
  - model load: `seconds` of the runtime's `{"event": "model_loaded", ...}` log line (handler creation + load);
  - start -> main(): from just before `podman run -d` to the runtime's `main()` (the `ready` line's `ts` minus
    its `ready_seconds`; the container shares the host's clock), i.e. podman + interpreter start + imports.
and prints, per interface, median [min-max] over the runs of these and of start -> first inference minus model load,
how many runs are within the target of 1.0 s + model load, and the load average at the start and at the end. Containers are
removed after each run (untimed), the image name at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

TARGET = "examples/digits:digits"
LAYOUT = REPO_ROOT / "dist/examples.digits/digits.oci"
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
RUN_FLAGS = ["--rm", "--net=host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
INTERFACES = {"kfserving.v1 REST": ("kfserving", "v1"), "kfserving.v2 gRPC": ("kfserving", "v2"),
              "modzy.v2 gRPC": ("modzy", "v2")}
POLL_SECONDS = 0.005
TIMEOUT_SECONDS = 60.0
TARGET_OVERHEAD = 1.0
ZERO = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
        0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]


class NotUp(Exception):
    """The server is not answering correctly yet: retry."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(argv: List[str], cwd: Optional[Path] = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=cwd, text=True, capture_output=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{(proc.stdout + proc.stderr)[-6000:]}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def v1_rest(port: int) -> Callable[[], None]:
    body = json.dumps({"instances": [ZERO]}).encode()

    def infer() -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/digits:predict", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                answer = json.loads(r.read())
        except (urllib.error.URLError, ConnectionError) as e:  # HTTPError (an error answer) is a URLError too
            raise NotUp(e) from e
        if answer != {"predictions": [0]}:
            raise SystemExit(f"kfserving.v1: wrong answer {answer!r}")
    return infer


def v2_grpc(port: int) -> Callable[[], None]:
    import grpc
    import numpy as np

    from omi_runtime.grpc_stubs import grpc_predict_v2_pb2 as pb
    from omi_runtime.grpc_stubs import grpc_predict_v2_pb2_grpc as pbg

    request = pb.ModelInferRequest(model_name="digits")
    request.inputs.add(name="input-0", datatype="FP32", shape=[1, 64])
    request.raw_input_contents.append(np.array([ZERO], dtype=np.float32).tobytes())

    def infer() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                reply = pbg.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=5)
            except grpc.RpcError as e:
                raise NotUp(e) from e
        predict = np.frombuffer(reply.raw_output_contents[0], dtype=np.int64).tolist()
        if [o.name for o in reply.outputs] != ["predict"] or predict != [0]:
            raise SystemExit(f"kfserving.v2: wrong answer {reply}")
    return infer


def modzy_grpc(port: int) -> Callable[[], None]:
    import grpc

    from omi_runtime.grpc_stubs import modzy_model_v2_pb2 as pb
    from omi_runtime.grpc_stubs import modzy_model_v2_pb2_grpc as pbg

    request = pb.RunRequest(inputs=[pb.InputItem(input={"input": json.dumps([ZERO]).encode()})])

    def infer() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                reply = pbg.ModzyModelStub(channel).Run(request, timeout=5)
            except grpc.RpcError as e:
                raise NotUp(e) from e
        if reply.status_code != 200 or not reply.outputs or not reply.outputs[0].success:
            raise NotUp(f"status {reply.status_code}: {reply.message}")
        answer = json.loads(reply.outputs[0].output["results.json"])
        if answer != {"predict": [0]}:
            raise SystemExit(f"modzy.v2: wrong answer {answer!r}")
    return infer


CLIENTS: Dict[str, Callable[[int], Callable[[], None]]] = {
    "kfserving.v1 REST": v1_rest, "kfserving.v2 gRPC": v2_grpc, "modzy.v2 gRPC": modzy_grpc}


@dataclass
class Result:
    podman_run: float
    first_inference: float
    model_load: float
    to_main: float


def cold_start(image: str, interface: str, run_id: str, index: int) -> Result:
    name, protocol = INTERFACES[interface]
    port = free_port()
    container = f"omi-bench-cold-{run_id}-{name}-{protocol}-{index}"
    env = ["-e", f"INTERFACE={name}", "-e", f"PROTOCOL={protocol}", "-e", f"HTTP_PORT={port}"]
    infer = CLIENTS[interface](port)
    last: object = "no attempt"
    try:
        wall0 = time.time()
        t0 = time.monotonic()
        run([*PODMAN, "run", "-d", "--name", container, *RUN_FLAGS, *env, image])
        podman_run = time.monotonic() - t0
        while True:
            elapsed = time.monotonic() - t0
            if elapsed > TIMEOUT_SECONDS:
                logs = run(["podman", "logs", container], check=False)
                raise SystemExit(f"{interface}: no successful inference {TIMEOUT_SECONDS:.0f} s after podman run "
                                 f"(last: {last})\ncontainer log:\n{(logs.stdout + logs.stderr)[-4000:]}")
            if listening(port):
                try:
                    infer()
                    break
                except NotUp as e:
                    last = e
            else:
                last = "connection refused"
            time.sleep(POLL_SECONDS)
        first_inference = time.monotonic() - t0
        events = [json.loads(line) for line in run(["podman", "logs", container]).stdout.splitlines()
                  if line.startswith("{")]
    finally:
        run([*PODMAN, "rm", "-f", "--time", "0", container], check=False)
    loaded = next(e for e in events if e.get("event") == "model_loaded")
    ready = next(e for e in events if e.get("event") == "ready")
    return Result(podman_run, first_inference, float(loaded["seconds"]),
                  ready["ts"] - ready["ready_seconds"] - wall0)


def spread(values: List[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="cold starts per interface")
    parser.add_argument("--no-build", action="store_true", help=f"use {LAYOUT.relative_to(REPO_ROOT)} as it is")
    args = parser.parse_args()
    load_before = os.getloadavg()

    if not args.no_build:
        log(f"building {TARGET}")
        run(["./pants", "--no-dynamic-ui", "package", TARGET], cwd=REPO_ROOT)
    run_id = uuid.uuid4().hex[:8]
    image = f"localhost/omi-bench-cold-start:{run_id}"
    log(f"loading {LAYOUT.relative_to(REPO_ROOT)} into podman as {image} (not timed)")
    results: Dict[str, List[Result]] = {}
    try:
        run(["skopeo", "copy", "-q", f"oci:{LAYOUT}", f"containers-storage:{image}"])
        for i in range(args.runs):  # interleaved, so that a burst of load on the machine hits every interface
            for interface in INTERFACES:
                r = cold_start(image, interface, run_id, i)
                results.setdefault(interface, []).append(r)
                log(f"run {i + 1}/{args.runs} {interface}: podman run {r.podman_run:.2f} s, first inference "
                    f"{r.first_inference:.2f} s, model load {r.model_load:.2f} s, to main() {r.to_main:.2f} s")
    finally:
        run(["podman", "rmi", image], check=False)

    print()
    print(f"Cold start under podman, digits image, {time.strftime('%Y-%m-%d')}, {args.runs} runs per interface, "
          f"median [min-max] in seconds; target: start -> first inference <= {TARGET_OVERHEAD:.1f} s + model load")
    print()
    print("| interface | podman run returns | start -> main() | start -> first inference | model load | "
          "first inference - model load | runs within target |")
    print("|---|---|---|---|---|---|---|")
    for interface, rs in results.items():
        overhead = [r.first_inference - r.model_load for r in rs]
        within = sum(o <= TARGET_OVERHEAD for o in overhead)
        print(f"| {interface} | {spread([r.podman_run for r in rs])} | {spread([r.to_main for r in rs])} | "
              f"{spread([r.first_inference for r in rs])} | {spread([r.model_load for r in rs])} | "
              f"{spread(overhead)} | {within}/{len(rs)} |")
    print()
    print(f"load average (1, 5, 15 min) at the start: {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
