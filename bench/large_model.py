"""Package large model files and measure wall time and every process's peak memory, against a copy+hash baseline.

    python3 bench/large_model.py --sizes 1G,4G --olot /var/tmp/olot-venv   # --no-pantsd: Pants from scratch each time

For each size: writes a random model file into a fresh copy of the repository and runs `pants package` of an
omi_model over it, sampling the peak RSS (VmHWM) of the Pants client, pantsd and every descendant of either every
50 ms. By default pantsd is started by an untimed warm-up build on a 1 MiB model (which also builds the base and the
third-party layers), as a developer's machine has it; `--no-pantsd` measures Pants starting from scratch each time.
The baselines, measured in the same run on the same file: copying it once (`cp`) plus hashing it once (Python hashlib
sha256, i.e. OpenSSL); and, with `--olot VENV` (a venv with PyPI `modelcar-maker` and `modelcar-base-image`), olot
adding the file as a layer to a fresh OCI layout. Prints one line per size with the ratios of our time to both, the
largest peak RSS of any process, where the time went according to Pants's own workunits (before the model layer's
process, the process, after it: image assembly and dist/), then a rebuild with the file unchanged, and the growth of
the machine's disk use (Pants's store + the omi blob store + dist/) by each build, over the model's size.
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


def disk_use(*roots: Path) -> int:
    """Real bytes on disk under `roots` (allocated blocks; each hard-linked file counted once)."""
    seen, total = set(), 0
    for root in roots:
        for directory, _, files in os.walk(root):
            for name in files:
                st = os.lstat(os.path.join(directory, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


def olot_time(venv: str, model: Path, scratch: Path) -> float:
    layout = scratch / "olot-layout"
    shutil.rmtree(layout, ignore_errors=True)
    subprocess.run([os.path.join(venv, "bin", "python"), "-c", "from modelcar_base_image.embedded_oci_layout import "
                    f"embedded_oci_layout; embedded_oci_layout({str(layout)!r})"], check=True)
    start = time.monotonic()
    subprocess.run([os.path.join(venv, "bin", "olot"), str(layout), str(model)], check=True, stdout=subprocess.DEVNULL)
    elapsed = time.monotonic() - start
    shutil.rmtree(layout, ignore_errors=True)
    return elapsed


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
    parser.add_argument("--olot", help="a venv with modelcar-maker (olot) and modelcar-base-image: the peer baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="omi-bench-large-", dir="/var/tmp") as tmp:
        clone = Path(tmp) / "repo"
        copy_repo(clone)
        logdir = Path(tmp) / "workunits"
        logdir.mkdir()
        store = Path(tmp) / "store"  # the omi blob store of this run alone, so that its growth is measured
        pants_store = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pants" / "lmdb_store"
        pants = ["./pants", "--no-dynamic-ui", *([] if args.pantsd else ["--no-pantsd"]), *workunit_flags(logdir),
                 f"--omi-blob-store={store}", "package", TARGET]
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
            print(f"{'size':>8} {'ours s':>8} {'cp+sha256 s':>12} {'ratio':>6} {'olot s':>7} {'vs olot':>7} {'s/GB':>6} "
                  f"{'peak RSS of any process':>26}   where the time went")
            for text in args.sizes.split(","):
                size = parse_size(text)
                (model_dir / "model.yaml").write_text(MODEL_YAML.format(size=text))
                write_random(model_dir / "weights.bin", size)
                base = baseline(model_dir / "weights.bin", Path(tmp))
                olot = olot_time(args.olot, model_dir / "weights.bin", Path(tmp)) if args.olot else None
                os.sync()
                before = disk_use(pants_store, store, clone / "dist")
                ours, peaks = run_sampled(pants, clone)
                os.sync()
                grown = disk_use(pants_store, store, clone / "dist") - before
                split = phases(logdir)
                worst = max(peaks.items(), key=lambda kv: kv[1])
                vs_olot = f"{olot:7.1f} {ours / olot:7.2f}" if olot else f"{'-':>7} {'-':>7}"
                print(f"{text:>8} {ours:8.1f} {base:12.1f} {ours / base:6.2f} {vs_olot} {ours / (size / 1e9):6.1f} "
                      f"{worst[1] / 1024:10.0f} MiB ({worst[0]})   before the layer {split['before']:.1f} s, "
                      f"layer process {split['process']:.1f} s, assembly and dist/ {split['after']:.1f} s", flush=True)
                print("         peaks by process: " + ", ".join(f"{k} {v / 1024:.0f} MiB" for k, v in sorted(peaks.items())))
                again, _ = run_sampled(pants, clone)
                os.sync()
                regrown = disk_use(pants_store, store, clone / "dist") - before - grown
                print(f"         unchanged rebuild {again:.1f} s ({again / base:.2f}x cp+sha256); disk growth: first "
                      f"build {grown / size:.3f}x the model, unchanged rebuild {regrown / 1e6:+.1f} MB", flush=True)
                shutil.rmtree(clone / "dist", ignore_errors=True)
        finally:
            subprocess.run(["pkill", "-f", f"pantsd \\[{clone}\\]"], check=False)


if __name__ == "__main__":
    main()
