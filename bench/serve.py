"""Serving benchmark: omi_runtime against the Python gRPC ceiling, MLServer and Chassis on the same sklearn digits
model, same machine, same run.

kfserving.v2 gRPC ModelInfer (raw FP32, one row): omi, a bare grpcio server that answers a constant
(`bare_grpc_server.py`, the ceiling of a Python gRPC server here) and MLServer, each measured for `--requests` calls
after `--warmup` at each concurrency, in `--repetitions` interleaved rounds, every answer checked against the
model's own prediction; it prints each round's omi/bare p50 and omi/MLServer req/s. Then throughput and p50/p99
latency, for `--seconds` per case, of:
  v2 REST /v2/models/digits/infer (JSON)   -- omi (kfserving.v1 server) vs MLServer
  kfserving.v1 REST :predict               -- omi only (MLServer has no v1)
  modzy.v2 gRPC Run                        -- omi vs Chassis 1.5's OMI server (chassis.server.omi)
with omi/baseline ratios of req/s, p50 and p99 (req/s above 1 and latencies below 1 favour omi).

Usage:
  python bench/serve.py [--seconds 10] [--concurrency 1,16] [--repetitions 3] [--requests 3000] [--warmup 300]
                        [--mlserver /path/to/venv/bin/mlserver] [--chassis /path/to/chassis-venv/bin/python]
Run it with a Python that has omi_runtime's requirements (numpy, scikit-learn, grpcio, aiohttp). The baselines are
optional and live in their own venvs; without them only omi_runtime and the bare grpcio server are measured:
  MLServer: mlserver==1.7.1, mlserver-sklearn, uvloop==0.21.0, scikit-learn matching the one that trains the model.
  Chassis:  chassisml==1.5.*, protobuf<5, the same scikit-learn, numpy. The build context is made with
            ChassisModel(process_fn).prepare_context() and served by chassis.server.omi.server.serve() from that
            directory, as the image's entrypoint.py does (bound to 127.0.0.1 instead of 0.0.0.0). process_fn does
            what omi's built-in sklearn handler does for modzy.v2: JSON list of rows -> float32 array -> predict ->
            results.json {"predict": [...]}; the model is the same joblib file omi serves.
All servers run with default settings (Chassis logs two INFO lines per Run call, as it does in its image).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Awaitable, Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def joblib_predict(workdir: Path, row) -> list[int]:
    """What the served model answers for the row: the benchmark checks every response against it."""
    import joblib

    return [int(v) for v in joblib.load(workdir / "omi-models" / "digits" / "model.joblib").predict(row)]


def train(workdir: Path):
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=3000).fit(x, y)
    omi_dir = workdir / "omi-models" / "digits"
    omi_dir.mkdir(parents=True)
    joblib.dump(model, omi_dir / "model.joblib")
    (omi_dir / "omi-model.json").write_text(json.dumps({
        "name": "digits", "version": "1", "run_id": "bench", "format": "sklearn", "files": ["model.joblib"],
        "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
        "interfaces": ["kfserving.v1", "kfserving.v2", "modzy.v2"],
    }))
    mls_dir = workdir / "mlserver" / "digits"
    mls_dir.mkdir(parents=True)
    shutil.copy(omi_dir / "model.joblib", mls_dir / "model.joblib")
    (mls_dir / "model-settings.json").write_text(json.dumps({
        "name": "digits", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "1"},
    }))
    return x[:1].astype("float32")


class Server:
    def __init__(self, cmd: list[str], env: dict[str, str], ready: Callable[[], bool], log: Path,
                 cwd: Path | None = None) -> None:
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=cwd)
        deadline = time.monotonic() + 120
        while not ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"server {cmd[:3]} did not start; see {log}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False
    return check


def grpc_ready(port: int, modzy: bool = False) -> Callable[[], bool]:
    def check() -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                if modzy:
                    health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
                    return True
                from omi_runtime.grpc_stubs import grpc_predict_v2_pb2 as pb
                from omi_runtime.grpc_stubs import grpc_predict_v2_pb2_grpc as pbg

                return pbg.GRPCInferenceServiceStub(ch).ServerReady(pb.ServerReadyRequest(), timeout=1).ready
        except grpc.RpcError:
            return False
    return check


async def measure(call: Callable[[], Awaitable[None]], concurrency: int, seconds: float) -> dict[str, float]:
    for _ in range(20):  # warm-up
        await call()
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < end:
            t = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "p50": latencies[len(latencies) // 2] * 1e3,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3}


def v2_request(row):
    from omi_runtime.grpc_stubs import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name="digits")
    request.inputs.add(name="input-0", datatype="FP32", shape=[1, 64])
    request.raw_input_contents.append(row.tobytes())
    return request


def v2_answer(response) -> list[int]:
    """The `predict` output of a ModelInfer response, raw (omi, the bare server) or typed (MLServer's choice)."""
    import numpy as np

    index = next(i for i, o in enumerate(response.outputs) if o.name == "predict")
    if response.raw_output_contents:
        return np.frombuffer(response.raw_output_contents[index], dtype="<i8").tolist()
    return list(response.outputs[index].contents.int64_contents)


def latency_stats(latencies: list[float], elapsed: float) -> dict[str, float]:
    latencies = sorted(latencies)
    return {"rps": len(latencies) / elapsed, "p50": latencies[len(latencies) // 2] * 1e3,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3}


def aio_round(port: int, call: Callable[[Any, int], Awaitable[Any]], check: Callable[[Any, int], None],
              concurrency: int, count: int, warmup: int, options: tuple = ()) -> dict[str, float]:
    """`warmup + count` calls of `call(stub, index)` by `concurrency` grpc.aio callers on one channel, each answer
    passed to `check(response, index)` (outside the call's latency); the last `count` are measured."""
    import grpc

    from omi_runtime.grpc_stubs import grpc_predict_v2_pb2_grpc as pbg

    latencies: list[float] = []

    async def go() -> float:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=list(options)) as channel:
            stub = pbg.GRPCInferenceServiceStub(channel)
            left = [warmup + count]
            started_at = [0.0]

            async def worker() -> None:
                while left[0] > 0:
                    left[0] -= 1
                    index = left[0]
                    measured = index < count
                    if measured and not started_at[0]:
                        started_at[0] = time.perf_counter()
                    started = time.perf_counter()
                    response = await call(stub, index)
                    if measured:
                        latencies.append(time.perf_counter() - started)
                    check(response, index)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - started_at[0]

    return latency_stats(latencies, asyncio.run(go()))


def v2_round(port: int, row, expected: list[int], concurrency: int, count: int, warmup: int) -> dict[str, float]:
    """`count` single-row ModelInfer calls after `warmup`, `concurrency` at a time, every answer checked: one
    blocking stub at concurrency 1 (the least client work per call), grpc.aio callers above it."""
    import grpc

    from omi_runtime.grpc_stubs import grpc_predict_v2_pb2_grpc as pbg

    request = v2_request(row)

    def check(response, index: int) -> None:
        if v2_answer(response) != expected:
            raise SystemExit(f"port {port} answered {v2_answer(response)}, expected {expected}")

    if concurrency > 1:
        return aio_round(port, lambda stub, index: stub.ModelInfer(request), check, concurrency, count, warmup)
    latencies: list[float] = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)
        for i in range(warmup + count):
            started = time.perf_counter()
            response = stub.ModelInfer(request)
            if i >= warmup:
                latencies.append(time.perf_counter() - started)
            check(response, i)
    return latency_stats(latencies, sum(latencies))


def kserve_v2_interleaved(ports: dict[str, int], row, expected: list[int], levels: list[int], repetitions: int,
                          count: int, warmup: int) -> dict[tuple[str, int], list[dict[str, float]]]:
    """Each repetition measures every server at every level in turn, so the machine's drift spreads over all."""
    out: dict[tuple[str, int], list[dict[str, float]]] = {}
    for _ in range(repetitions):
        for level in levels:
            for name, port in ports.items():
                out.setdefault((name, level), []).append(v2_round(port, row, expected, level, count, warmup))
    return out


def print_kserve_v2(results: dict[tuple[str, int], list[dict[str, float]]], levels: list[int]) -> None:
    def span(values: list[float], fmt: str) -> str:
        return f"{min(values):{fmt}}-{max(values):{fmt}}" if len(values) > 1 else f"{values[0]:{fmt}}"

    names = list(dict.fromkeys(name for name, _ in results))
    print("kfserving.v2 gRPC ModelInfer, one FP32 row, interleaved repetitions (min-max over them):")
    print(f"{'server':<10} {'conc':>4} {'req/s':>13} {'p50 ms':>13} {'p99 ms':>13}")
    for level in levels:
        for name in names:
            runs = results[(name, level)]
            print(f"{name:<10} {level:>4} {span([r['rps'] for r in runs], '.0f'):>13} "
                  f"{span([r['p50'] for r in runs], '.3f'):>13} {span([r['p99'] for r in runs], '.3f'):>13}")
    print("ratios per repetition (omi / baseline):")
    for level in levels:
        omi = results[("omi", level)]
        if ("bare", level) in results:
            bare = results[("bare", level)]
            print(f"  c={level:<3} p50 omi/bare grpcio     {span([o['p50'] / b['p50'] for o, b in zip(omi, bare)], '.2f')}x"
                  f"   req/s omi/bare     {span([o['rps'] / b['rps'] for o, b in zip(omi, bare)], '.2f')}x")
        if ("mlserver", level) in results:
            other = results[("mlserver", level)]
            print(f"  c={level:<3} req/s omi/MLServer      {span([o['rps'] / m['rps'] for o, m in zip(omi, other)], '.2f')}x"
                  f"   p50 omi/MLServer   {span([o['p50'] / m['p50'] for o, m in zip(omi, other)], '.2f')}x")


def modzy_status(port: int, row) -> bytes:
    """Status (loads the model; Chassis answers Run only after it), then one Run; returns its results.json."""
    import grpc

    from omi_runtime.grpc_stubs import modzy_model_v2_pb2 as pb
    from omi_runtime.grpc_stubs import modzy_model_v2_pb2_grpc as pbg

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pbg.ModzyModelStub(channel)
        status = stub.Status(pb.StatusRequest(), timeout=60)
        assert status.status_code == 200, status
        reply = stub.Run(pb.RunRequest(inputs=[pb.InputItem(input={"input": json.dumps(row.tolist()).encode()})]),
                         timeout=60)
        assert reply.outputs and reply.outputs[0].success, reply
        return reply.outputs[0].output["results.json"]


# Run by the Chassis venv's Python: argv = model file, empty build-context directory.
CHASSIS_PREPARE = """
import json, sys
import joblib
import numpy as np
from chassis.builder import BuildOptions
from chassisml import ChassisModel

model = joblib.load(sys.argv[1])


def process(item):
    x = np.asarray(json.loads(item["input"]), dtype=np.float32)
    return {"results.json": json.dumps({"predict": model.predict(x).tolist()}, separators=(",", ":")).encode()}


chassis_model = ChassisModel(process)
chassis_model.metadata.model_name = "digits"
chassis_model.metadata.model_version = "1"
chassis_model.metadata.add_input(key="input", accepted_media_types=["application/json"], max_size="10M")
chassis_model.metadata.add_output(key="results.json", media_type="application/json", max_size="1M")
chassis_model.prepare_context(BuildOptions(base_dir=sys.argv[2], server="omi"))
"""

# Run by the Chassis venv's Python in the build context: Chassis's own serve(), listening on 127.0.0.1 only.
CHASSIS_SERVE = """
import asyncio
import grpclib.server
from chassis.server.omi import server

start = grpclib.server.Server.start


async def start_on_loopback(self, host=None, port=None, **kwargs):
    return await start(self, "127.0.0.1", port, **kwargs)


grpclib.server.Server.start = start_on_loopback
asyncio.run(server.serve())
"""


def modzy_run_call(port: int, row):
    import grpc

    from omi_runtime.grpc_stubs import modzy_model_v2_pb2 as pb
    from omi_runtime.grpc_stubs import modzy_model_v2_pb2_grpc as pbg

    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = pbg.ModzyModelStub(channel)
    request = pb.RunRequest(inputs=[pb.InputItem(input={"input": json.dumps(row.tolist()).encode()})])

    async def call() -> None:
        reply = await stub.Run(request)
        assert reply.outputs[0].success
    return call, channel.close


def rest_call(url: str, body: dict):
    import aiohttp

    session: list[aiohttp.ClientSession] = []
    payload = json.dumps(body).encode()

    async def call() -> None:
        if not session:
            session.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)))
        async with session[0].post(url, data=payload, headers={"Content-Type": "application/json"}) as r:
            assert r.status == 200, await r.text()
            await r.read()

    async def close() -> None:
        if session:
            await session[0].close()
    return call, close


def run_case(make, concurrency: list[int], seconds: float) -> dict[int, dict[str, float]]:
    async def go():
        call, close = make()
        try:
            return {c: await measure(call, c, seconds) for c in concurrency}
        finally:
            await close()
    return asyncio.run(go())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--mlserver", default=shutil.which("mlserver"), help="mlserver executable (optional)")
    parser.add_argument("--chassis", help="Python of a venv with chassisml 1.5 (optional)")
    parser.add_argument("--repetitions", type=int, default=3, help="kfserving.v2 gRPC: interleaved repetitions")
    parser.add_argument("--requests", type=int, default=3000, help="kfserving.v2 gRPC: measured calls per round")
    parser.add_argument("--warmup", type=int, default=300, help="kfserving.v2 gRPC: calls before measuring")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="omi-bench-"))
    row = train(workdir)
    v2_body = {"inputs": [{"name": "input-0", "shape": [1, 64], "datatype": "FP32", "data": row.ravel().tolist()}]}
    results: dict[tuple[str, str], dict[int, dict[str, float]]] = {}
    omi_env = {"OMI_MODELS_DIR": str(workdir / "omi-models"), "OMI_HOST": "127.0.0.1",
               "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    omi_cmd = [sys.executable, "-m", "omi_runtime"]

    def omi(interface: str, protocol: str, ready_for) -> tuple[Server, int]:
        port = free_port()
        env = {**omi_env, "INTERFACE": interface, "PROTOCOL": protocol, "HTTP_PORT": str(port)}
        return Server(omi_cmd, env, ready_for(port), workdir / f"omi-{interface}-{protocol}.log"), port

    # kfserving.v2 gRPC: omi, the bare grpcio server and MLServer side by side, interleaved, every answer checked.
    expected = joblib_predict(workdir, row)
    v2_servers: dict[str, int] = {}
    running: list[Server] = []
    try:
        server, port = omi("kfserving", "v2", grpc_ready)
        running.append(server)
        v2_servers["omi"] = port
        port = free_port()
        running.append(Server([sys.executable, str(REPO_ROOT / "bench" / "bare_grpc_server.py"), str(port),
                               str(expected[0])], {"PYTHONPATH": str(REPO_ROOT)}, grpc_ready(port),
                              workdir / "bare.log"))
        v2_servers["bare"] = port
        if args.mlserver:
            http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
            (workdir / "mlserver" / "settings.json").write_text(json.dumps({
                "http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port, "host": "127.0.0.1"}))
            running.append(Server([args.mlserver, "start", str(workdir / "mlserver")], {},
                                  http_ok(f"http://127.0.0.1:{http_port}/v2/models/digits/ready"),
                                  workdir / "mlserver.log"))
            v2_servers["mlserver"] = grpc_port
        v2_results = kserve_v2_interleaved(v2_servers, row, expected, levels, args.repetitions, args.requests,
                                           args.warmup)
    finally:
        for server in running:
            server.stop()
    server, port = omi("kfserving", "v1", lambda p: http_ok(f"http://127.0.0.1:{p}/v2/health/ready"))
    try:
        base = f"http://127.0.0.1:{port}"
        results[("v2 REST infer", "omi")] = run_case(
            lambda: rest_call(f"{base}/v2/models/digits/infer", v2_body), levels, args.seconds)
        results[("kfserving.v1 REST", "omi")] = run_case(
            lambda: rest_call(f"{base}/v1/models/digits:predict", {"instances": row.tolist()}), levels, args.seconds)
    finally:
        server.stop()
    server, port = omi("modzy", "v2", lambda p: grpc_ready(p, modzy=True))
    try:
        omi_result = modzy_status(port, row)
        results[("modzy.v2 gRPC", "omi")] = run_case(lambda: modzy_run_call(port, row), levels, args.seconds)
    finally:
        server.stop()

    if args.chassis:
        context = workdir / "chassis"
        context.mkdir()
        subprocess.run([args.chassis, "-c", CHASSIS_PREPARE, str(workdir / "omi-models" / "digits" / "model.joblib"),
                        str(context)], check=True, stdout=subprocess.DEVNULL, timeout=300)
        port = free_port()
        server = Server([args.chassis, "-c", CHASSIS_SERVE], {"PSC_MODEL_PORT": str(port)},
                        grpc_ready(port, modzy=True), workdir / "chassis.log", cwd=context)
        try:
            chassis_result = modzy_status(port, row)
            if chassis_result != omi_result:
                raise SystemExit(f"modzy.v2 results differ: omi {omi_result!r}, Chassis {chassis_result!r}")
            results[("modzy.v2 gRPC", "chassis")] = run_case(lambda: modzy_run_call(port, row), levels,
                                                             args.seconds)
        finally:
            server.stop()

    if args.mlserver:
        http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
        (workdir / "mlserver" / "settings.json").write_text(json.dumps({
            "http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port, "host": "127.0.0.1"}))
        server = Server([args.mlserver, "start", str(workdir / "mlserver")], {},
                        http_ok(f"http://127.0.0.1:{http_port}/v2/models/digits/ready"), workdir / "mlserver.log")
        try:
            results[("v2 REST infer", "mlserver")] = run_case(
                lambda: rest_call(f"http://127.0.0.1:{http_port}/v2/models/digits/infer", v2_body), levels,
                args.seconds)
        finally:
            server.stop()

    print_kserve_v2(v2_results, levels)
    print()
    header = ("interface", "server", "conc", "req/s", "p50 ms", "p99 ms", "omi/base:", "req/s", "p50", "p99")
    print("{:<20} {:<9} {:>4} {:>8} {:>8} {:>8}  {:<9} {:>6} {:>6} {:>6}".format(*header))
    for (interface, name), by_level in results.items():
        for level, r in by_level.items():
            ratios = ""
            baseline = next((b for b in ("mlserver", "chassis") if (interface, b) in results), None)
            if name == "omi" and baseline:
                other = results[(interface, baseline)][level]
                ratios = (f"{baseline:<9} {r['rps'] / other['rps']:>5.2f}x {r['p50'] / other['p50']:>5.2f}x "
                          f"{r['p99'] / other['p99']:>5.2f}x")
            print(f"{interface:<20} {name:<9} {level:>4} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f}  "
                  f"{ratios}".rstrip())
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
