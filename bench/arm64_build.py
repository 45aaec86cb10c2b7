"""The arm64 digits image and the two-platform image index against the amd64 image, all built on this (amd64)
machine in the same run: what building for another platform, and for two at once, costs without emulation over
building for the machine's own.

    python3 bench/arm64_build.py --runs 3

In one copy of the repository, interleaved per run:

- cold: `./pants --no-pantsd --no-local-cache package` of `examples/digits:digits` (amd64), of
  `examples/digits:digits-arm64` and of `examples/digits:digits-multiarch` (the index of both): every build process
  runs (base assembly from the locked `.deb` files, the dependency resolve, every layer and bytecode step); the
  machine's download caches (Pex's, Pants's store holding the `.deb` files and wheels) stay warm, so this is build
  work, not the network;
- model-only change: bytes appended to `model.joblib`, then `pants package` of each again (warm pantsd).

Prints each run's times and the ratios arm64 / amd64 and index / amd64, their medians, and each target's image
digests over the cold builds (one each: the builds are reproducible).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from repo_copy import copy_repo

TARGETS = {"amd64": "examples/digits:digits", "arm64": "examples/digits:digits-arm64",
           "index": "examples/digits:digits-multiarch"}
RECORDS = {name: f"dist/examples.digits/{target.split(':')[1]}.omi.json" for name, target in TARGETS.items()}


def _timed(clone: Path, *args: str) -> float:
    started = time.monotonic()
    done = subprocess.run(["./pants", "--no-dynamic-ui", *args], cwd=clone, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pants {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="omi-bench-arm64-", dir="/var/tmp") as tmp:
        clone = Path(tmp) / "repo"
        copy_repo(clone)
        try:
            print("warming up (downloads of both platforms' packages and wheels)...", flush=True)
            _timed(clone, "--no-pantsd", "package", *TARGETS.values())
            cold: Dict[str, List[float]] = {name: [] for name in TARGETS}
            change: Dict[str, List[float]] = {name: [] for name in TARGETS}
            digests: Dict[str, set] = {name: set() for name in TARGETS}
            for run in range(args.runs):
                for platform, target in TARGETS.items():
                    cold[platform].append(_timed(clone, "--no-pantsd", "--no-local-cache", "package", target))
                    digests[platform].add(json.loads((clone / RECORDS[platform]).read_text())["image_digest"])
                model = clone / "examples/digits/model.joblib"
                original = model.read_bytes()
                _timed(clone, "package", *TARGETS.values())  # pantsd up, both built once more before the change
                model.write_bytes(original + f"bench run {run}\n".encode())
                for platform, target in TARGETS.items():
                    change[platform].append(_timed(clone, "package", target))
                model.write_bytes(original)  # the next run's cold builds are of the committed model again
                print(f"run {run + 1}: cold " + ", ".join(f"{n} {cold[n][-1]:.1f} s" for n in TARGETS)
                      + f" (arm64 {cold['arm64'][-1] / cold['amd64'][-1]:.2f}x, index "
                      f"{cold['index'][-1] / cold['amd64'][-1]:.2f}x); model-only change "
                      + ", ".join(f"{n} {change[n][-1]:.1f} s" for n in TARGETS)
                      + f" (arm64 {change['arm64'][-1] / change['amd64'][-1]:.2f}x, index "
                      f"{change['index'][-1] / change['amd64'][-1]:.2f}x)", flush=True)
            for name in ("arm64", "index"):
                ratio = statistics.median(a / b for a, b in zip(cold[name], cold["amd64"]))
                changed = statistics.median(a / b for a, b in zip(change[name], change["amd64"]))
                print(f"{name} / amd64: cold median {ratio:.2f}x, model-only change median {changed:.2f}x")
            print("cold image digests: " + ", ".join(f"{n} {sorted(d)}" for n, d in digests.items())
                  + f" ({'reproducible' if all(len(d) == 1 for d in digests.values()) else 'NOT reproducible'})")
        finally:
            subprocess.run(["pkill", "-f", f"pantsd \\[{clone}\\]"], check=False)


if __name__ == "__main__":
    main()
