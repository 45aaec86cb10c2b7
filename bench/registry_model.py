"""A large model from a ModelPack artifact in a registry: `pants package` of an omi_model with `model_artifact`
against the ways a team would do without it, same repository copy, same warm pantsd, interleaved.

    python3 bench/registry_model.py --size 1G --runs 3

Each run writes a new file of `--size` random bytes, pushes it as a ModelPack artifact (one raw weight layer) with
PyPI's `modelpack-client` to Debian's `docker-registry` on loopback, and then measures, each build with an empty blob
store of its own (nothing is found from an earlier build):

- artifact: `pants package` of `omi_model(model_artifact=...@sha256:...)`: the download into the blob store, the image
  and the copy of the artifact;
- pull + package: `modelpack pull` of the same artifact into the repository, then `pants package` of an omi_model
  with `model_files` on the pulled file (what a team does by hand today);
- file: `pants package` of an omi_model with the same file already in the repository (no transfer at all).

Prints each run's times and the ratios artifact / (pull + package) and artifact / file, then their medians.
`modelpack-client` runs from the exported runtime venv (`./pants export --resolve=runtime`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from large_model import parse_size, write_random
from pull_to_inference import start_registry
from repo_copy import REPO, copy_repo

MODEL_YAML = """name: {name}
version: "1"
run_id: bench-{name}
format: sklearn
files: [model.joblib]
inputs: [{{name: x, datatype: FP32, shape: [-1, 4]}}]
outputs: [{{name: predict, datatype: INT64, shape: [-1]}}]
"""
KINDS = ("artifact", "pulled", "file")
RUNTIME_PYTHON = REPO / "dist/export/python/virtualenvs/runtime/3.11.7/bin/python"


def _target(clone: Path, kind: str, field: str) -> str:
    directory = clone / "bench_models" / kind
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.yaml").write_text(MODEL_YAML.format(name=f"big-{kind}"))
    (directory / "BUILD").write_text(f'omi_model(name="big-{kind}", {field})\n')
    return f"bench_models/{kind}:big-{kind}"


def _timed(argv: List[str], cwd: Path, env: Dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python", default=str(RUNTIME_PYTHON), help="a Python with modelpack-client installed")
    args = parser.parse_args()
    size = parse_size(args.size)
    with tempfile.TemporaryDirectory(prefix="omi-bench-artifact-", dir="/var/tmp") as tmp_name:
        tmp = Path(tmp_name)
        registry = start_registry(tmp / "registry")
        clone = tmp / "repo"
        copy_repo(clone)
        pants = ["./pants", "--no-dynamic-ui", "package"]
        config = tmp / "config.json"
        config.write_text(json.dumps({"descriptor": {"name": "big"}, "config": {"format": "joblib"},
                                      "modelfs": {"type": "layers", "diffIds": []}}))
        weights = tmp / "model.joblib"
        try:
            print("warming up (base image, runtime dependencies, pantsd)...", flush=True)
            write_random(weights, 1 << 20)
            file_target = _target(clone, "file", 'model_files=["model.joblib"]')
            shutil.copy(weights, clone / "bench_models/file/model.joblib")
            subprocess.run([*pants, file_target], cwd=clone, check=True, capture_output=True,
                           env={**os.environ, "PANTS_OMI_BLOB_STORE": str(tmp / "store-warm")})
            times: Dict[str, List[float]] = {kind: [] for kind in KINDS}
            for run in range(args.runs):
                write_random(weights, size)
                pushed = subprocess.run(
                    [args.python, "-m", "modelpack_client", "--insecure", "push", f"{registry.host}/models/big:run-{run}",
                     "--config", str(config), "--layer", f"{weights}:application/vnd.cncf.model.weight.v1.raw"],
                    check=True, capture_output=True, text=True)
                reference = f"{registry.host}/models/big@{json.loads(pushed.stdout)['digest']}"
                artifact_target = _target(clone, "artifact", f'model_artifact="{reference}"')
                pulled_target = _target(clone, "pulled", 'model_files=["model.joblib"]')
                shutil.copy(weights, clone / "bench_models/file/model.joblib")
                (clone / "bench_models/pulled/model.joblib").unlink(missing_ok=True)
                os.sync()
                for kind in KINDS:
                    env = {"PANTS_OMI_BLOB_STORE": str(tmp / f"store-{run}-{kind}")}
                    if kind == "artifact":
                        times[kind].append(_timed([*pants, artifact_target], clone, env))
                    elif kind == "pulled":
                        pull = _timed([args.python, "-m", "modelpack_client", "--insecure", "pull", reference,
                                       str(clone / "bench_models/pulled")], clone, env)
                        times[kind].append(pull + _timed([*pants, pulled_target], clone, env))
                    else:
                        times[kind].append(_timed([*pants, file_target], clone, env))
                    shutil.rmtree(tmp / f"store-{run}-{kind}", ignore_errors=True)
                a, p, f = (times[k][-1] for k in KINDS)
                print(f"run {run + 1}: artifact {a:.1f} s, pull + package {p:.1f} s, file in the repository {f:.1f} s: "
                      f"artifact / (pull + package) {a / p:.2f}x, artifact / file {a / f:.2f}x", flush=True)
            over_pull = [a / p for a, p in zip(times["artifact"], times["pulled"])]
            over_file = [a / f for a, f in zip(times["artifact"], times["file"])]
            print(f"{args.size}: artifact / (pull + package) median {statistics.median(over_pull):.2f}x (target "
                  f"<= 0.6x); artifact / file median {statistics.median(over_file):.2f}x (target <= 1.3x) "
                  f"(load average {os.getloadavg()[0]:.1f})")
        finally:
            subprocess.run(["pkill", "-f", f"pantsd \\[{clone}\\]"], check=False)
            registry.process.terminate()


if __name__ == "__main__":
    main()
