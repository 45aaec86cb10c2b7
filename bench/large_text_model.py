"""A large Hugging Face text model (format: huggingface) against a model file of the same size (format: sklearn):
`pants package` wall time, same repository copy, same warm pantsd, interleaved.

    python3 bench/large_text_model.py --size 1G --runs 3

The text model is the text embedding example's directory (tokenizer, config files, its graph) with a weights file
(`model.onnx_data`) of `--size` random bytes; the other model is one `model.joblib` of `--size` random bytes. Each run
writes new random bytes into both, so each build writes a new blob (nothing is found in the store), and measures
both builds in turn. Prints each run's times and the ratio text / single file: what the huggingface format's
package-time work (the directory's settings read, the graph's inputs read from its protobuf, one layer per file)
costs over one file of the same size. The graph does not match the random weights: `pants package` does not load
models, and this measures packaging only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from large_model import parse_size, write_random
from repo_copy import REPO, copy_repo

SKLEARN_YAML = """name: big-file
version: "1"
run_id: bench-file
format: sklearn
files: [model.joblib]
inputs: [{name: x, datatype: FP32, shape: [-1, 4]}]
outputs: [{name: predict, datatype: INT64, shape: [-1]}]
"""
TARGETS = {"text": "bench_models/text:big-text", "file": "bench_models/file:big-file"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = parse_size(args.size)
    with tempfile.TemporaryDirectory(prefix="omi-bench-text-", dir="/var/tmp") as tmp:
        clone = Path(tmp) / "repo"
        copy_repo(clone)
        text_dir, file_dir = clone / "bench_models/text", clone / "bench_models/file"
        shutil.copytree(REPO / "examples/text_embedding/model", text_dir / "model")
        model_yaml = (REPO / "examples/text_embedding/model.yaml").read_text(encoding="utf-8")
        (text_dir / "model.yaml").write_text(model_yaml.replace("name: minilm", "name: big-text"), encoding="utf-8")
        (text_dir / "BUILD").write_text('omi_model(name="big-text", model_files=["model/**"])\n')
        file_dir.mkdir(parents=True)
        (file_dir / "model.yaml").write_text(SKLEARN_YAML)
        (file_dir / "BUILD").write_text('omi_model(name="big-file", model_files=["model.joblib"])\n')
        weights = {"text": text_dir / "model/model.onnx_data", "file": file_dir / "model.joblib"}
        pants = ["./pants", "--no-dynamic-ui", f"--omi-blob-store={Path(tmp) / 'store'}", "package"]
        try:
            print("warming up (base image, runtime dependencies, pantsd)...", flush=True)
            write_random(weights["file"], 1 << 20)
            subprocess.run([*pants, *TARGETS.values()], cwd=clone, check=True, capture_output=True)
            times: dict = {"text": [], "file": []}
            for run in range(args.runs):
                for kind in ("text", "file"):
                    write_random(weights[kind], size)
                    os.sync()
                    started = time.monotonic()
                    built = subprocess.run([*pants, TARGETS[kind]], cwd=clone, capture_output=True, text=True)
                    times[kind].append(time.monotonic() - started)
                    if built.returncode != 0:
                        raise SystemExit(f"pants package {TARGETS[kind]} failed:\n{built.stdout[-3000:]}"
                                         f"{built.stderr[-3000:]}")
                print(f"run {run + 1}: text model {times['text'][-1]:.1f} s, one file {times['file'][-1]:.1f} s: "
                      f"{times['text'][-1] / times['file'][-1]:.2f}x", flush=True)
            ratios = [t / f for t, f in zip(times["text"], times["file"])]
            print(f"{args.size}: text model / one file of the same size, median {statistics.median(ratios):.2f}x "
                  f"(load average {os.getloadavg()[0]:.1f})")
        finally:
            subprocess.run(["pkill", "-f", f"pantsd \\[{clone}\\]"], check=False)


if __name__ == "__main__":
    main()
