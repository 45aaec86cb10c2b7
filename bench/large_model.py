"""Package large model files and measure wall time and every process's peak memory, against a copy+hash baseline.

    python3 bench/large_model.py --sizes 100M,1G,4G          # --no-pantsd: every run starts Pants from scratch

For each size: writes a random model file into a fresh copy of the repository and runs `pants package` of an
omi_model over it, sampling the peak RSS (VmHWM) of the Pants client, pantsd and every descendant of either every
50 ms. By default pantsd is started by an untimed warm-up build on a 1 MiB model (which also builds the base and the
third-party layers), as a developer's machine has it; `--no-pantsd` measures Pants starting from scratch each time.
The baseline, measured in the same run on the same file: copying it once (`cp`) plus hashing it once (Python hashlib
sha256, i.e. OpenSSL). Prints one line per size with the ratio of our time to the baseline, the largest peak RSS of
any process, and where the time went according to Pants's own workunits: before the model layer's process starts
(Pants snapshotting the model file into its store), the process itself (sandbox, the layer writer, Pants capturing
the layer into its store), and after it (the image assembly and writing the layouts under `dist/`).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from repo_copy import copy_repo

UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

MODEL_YAML = """name: big
version: "1"
run_id: bench-{size}
format: custom
handler: big_model.handler:Handler
files: [weights.bin]
"""
BUILD = 'omi_model(name="big", model_files=["weights.bin"])\n'
TARGET = "bench_models/big:big"


def workunit_flags(logdir: Path) -> List[str]:
    return ["--backend-packages=+['pants.backend.experimental.tools.workunit_logger']", "--workunit-logger-enabled",
            f"--workunit-logger-logdir={logdir}", "--streaming-workunits-level=debug"]


def parse_size(text: str) -> int:
    return int(float(text[:-1]) * UNITS[text[-1].upper()]) if text[-1].upper() in UNITS else int(text)


def write_random(path: Path, size: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            # Vary each chunk cheaply so no two are equal (dedup would flatter the numbers).
            block = hashlib.sha256(written.to_bytes(8, "little")).digest() + chunk[32:]
            block = block[: min(len(block), size - written)]
            f.write(block)
            written += len(block)


def descendants(root: int) -> Dict[int, str]:
    children: Dict[int, list] = {}
    names: Dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        names[int(entry)] = cmd
    out, stack = {}, [root]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, []):
            out[child] = names.get(child, "?")
            stack.append(child)
    return out


def peak_rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def short(cmd: str) -> str:
    for key in ("build_layer", "compile_layer", "pantsd", "pants", "pex", "python"):
        if key in cmd:
            if "omi_plugin" in cmd:
                return cmd.split("-m ", 1)[-1].split()[0]
            return key
    return cmd.split()[0] if cmd else "?"


def pantsd_pid(clone: Path) -> Optional[int]:
    found = subprocess.run(["pgrep", "-f", f"pantsd \\[{clone}\\]"], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


def run_sampled(argv: List[str], cwd: Path) -> Tuple[float, Dict[str, int]]:
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks: Dict[int, Tuple[str, int]] = {}
    done = threading.Event()

    def sample() -> None:
        daemon = None
        while not done.is_set():
            roots = {proc.pid: "pants client"}
            daemon = daemon or pantsd_pid(cwd)  # looked up until found: pgrep is a process of its own
            if daemon:
                roots[daemon] = "pantsd"
            watched = dict(roots)
            for root in roots:
                watched.update(descendants(root))
            for pid, cmd in watched.items():
                rss = peak_rss_kib(pid)
                if rss > peaks.get(pid, ("", 0))[1]:
                    peaks[pid] = (cmd, rss)
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output, _ = proc.communicate()
    done.set()
    thread.join()
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"package failed:\n{output[-4000:]}")
    by_kind: Dict[str, int] = {}
    for cmd, rss in peaks.values():
        kind = short(cmd)
        by_kind[kind] = max(by_kind.get(kind, 0), rss)
    return elapsed, by_kind


def phases(logdir: Path) -> Dict[str, float]:
    """Split the newest run's `package` goal at the model file's layer process, from Pants's workunits."""
    newest = max(glob.glob(str(logdir / "*.json")), key=os.path.getmtime)
    units = json.loads(Path(newest).read_text())

    def span(unit: Dict) -> Tuple[float, float]:
        begin = unit["start_secs"] + unit["start_nanos"] / 1e9
        return begin, begin + unit.get("duration_secs", 0) + unit.get("duration_nanos", 0) / 1e9

    goal = span(next(u for u in units if u["name"] == "pants.core.goals.package.package_asset"))
    layer = span(next(u for u in units if u["name"] == "run_local_process"
                      and (u.get("description") or "").startswith("Layer: model file")))
    return {"before": layer[0] - goal[0], "process": layer[1] - layer[0], "after": goal[1] - layer[1]}


def baseline(model: Path, scratch: Path) -> float:
    start = time.monotonic()
    subprocess.run(["cp", str(model), str(scratch / "copy.bin")], check=True)
    digest = hashlib.sha256()
    with open(model, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    elapsed = time.monotonic() - start
    (scratch / "copy.bin").unlink()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100M,1G,4G")
    parser.add_argument("--no-pantsd", dest="pantsd", action="store_false",
                        help="start Pants from scratch for every build (no daemon)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="omi-bench-large-") as tmp:
        clone = Path(tmp) / "repo"
        copy_repo(clone)
        logdir = Path(tmp) / "workunits"
        logdir.mkdir()
        pants = ["./pants", "--no-dynamic-ui", *([] if args.pantsd else ["--no-pantsd"]), *workunit_flags(logdir),
                 "package", TARGET]
        model_dir = clone / "bench_models/big"
        model_dir.mkdir(parents=True)
        (model_dir / "BUILD").write_text(BUILD)
        try:
            # Warm-up: resolve the runtime, build the base and start pantsd, so each size measures the model's own work.
            print("warming up (base image, runtime dependencies, pantsd)...", flush=True)
            (model_dir / "model.yaml").write_text(MODEL_YAML.format(size="warmup"))
            write_random(model_dir / "weights.bin", 1 << 20)
            run_sampled(pants, clone)
            print(f"pantsd: {'on (warm)' if args.pantsd else 'off'}; load average {os.getloadavg()[0]:.1f}")
            print(f"{'size':>8} {'ours s':>8} {'cp+sha256 s':>12} {'ratio':>6} {'s/GB':>6} {'peak RSS of any process':>26}"
                  "   where the time went")
            for text in args.sizes.split(","):
                size = parse_size(text)
                (model_dir / "model.yaml").write_text(MODEL_YAML.format(size=text))
                write_random(model_dir / "weights.bin", size)
                base = baseline(model_dir / "weights.bin", Path(tmp))
                ours, peaks = run_sampled(pants, clone)
                split = phases(logdir)
                worst = max(peaks.items(), key=lambda kv: kv[1])
                print(f"{text:>8} {ours:8.1f} {base:12.1f} {ours / base:6.2f} {ours / (size / 1e9):6.1f} "
                      f"{worst[1] / 1024:10.0f} MiB ({worst[0]})   snapshot {split['before']:.1f} s, "
                      f"layer process {split['process']:.1f} s, assembly and dist/ {split['after']:.1f} s", flush=True)
                print("         peaks by process: " + ", ".join(f"{k} {v / 1024:.0f} MiB" for k, v in sorted(peaks.items())))
                shutil.rmtree(clone / "dist", ignore_errors=True)
        finally:
            subprocess.run(["pkill", "-f", f"pantsd \\[{clone}\\]"], check=False)


if __name__ == "__main__":
    main()
