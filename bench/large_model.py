"""Package large model files and measure wall time and every process's peak memory, against a copy+hash baseline.

    python3 bench/large_model.py --sizes 100M,1G,2G

For each size: writes a random model file into a fresh copy of the repository, runs `pants --no-pantsd package` of
an omi_model over it (pantsd off, so that every process of the build descends from the command and is sampled),
and samples each descendant's peak RSS (VmHWM) every 50 ms. The baseline, measured in the same run on the same
file: copying it once (`cp`) plus hashing it once (Python hashlib sha256, i.e. OpenSSL). Prints one line per size
with the ratio of our time to the baseline and the largest peak RSS of any process, by command.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, Tuple

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


def run_sampled(argv, cwd: Path) -> Tuple[float, Dict[str, int], int]:
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks: Dict[int, Tuple[str, int]] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid, cmd in descendants(proc.pid).items():
                rss = peak_rss_kib(pid)
                if rss > peaks.get(pid, ("", 0))[1]:
                    peaks[pid] = (cmd, rss)
            rss = peak_rss_kib(proc.pid)
            if rss > peaks.get(proc.pid, ("", 0))[1]:
                peaks[proc.pid] = ("pants client", rss)
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
    return elapsed, by_kind, proc.returncode


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
    parser.add_argument("--sizes", default="100M,1G,2G")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="omi-bench-large-") as tmp:
        clone = Path(tmp) / "repo"
        copy_repo(clone)
        model_dir = clone / "bench_models/big"
        model_dir.mkdir(parents=True)
        (model_dir / "BUILD").write_text(BUILD)
        # Warm-up: resolve the runtime and build the base once, so each size measures the model's own work.
        print("warming up (base image and runtime dependencies)...", flush=True)
        (model_dir / "model.yaml").write_text(MODEL_YAML.format(size="warmup"))
        write_random(model_dir / "weights.bin", 1 << 20)
        run_sampled(["./pants", "--no-pantsd", "--no-dynamic-ui", "package", "bench_models/big:big"], clone)
        print(f"{'size':>8} {'ours s':>8} {'cp+sha256 s':>12} {'ratio':>6} {'peak RSS of any process':>26}")
        for text in args.sizes.split(","):
            size = parse_size(text)
            (model_dir / "model.yaml").write_text(MODEL_YAML.format(size=text))
            write_random(model_dir / "weights.bin", size)
            base = baseline(model_dir / "weights.bin", Path(tmp))
            ours, peaks, _ = run_sampled(["./pants", "--no-pantsd", "--no-dynamic-ui", "package", "bench_models/big:big"], clone)
            worst = max(peaks.items(), key=lambda kv: kv[1])
            print(f"{text:>8} {ours:8.1f} {base:12.1f} {ours / base:6.2f} {worst[1] / 1024:10.0f} MiB ({worst[0]})", flush=True)
            print("         peaks by process: " + ", ".join(f"{k} {v / 1024:.0f} MiB" for k, v in sorted(peaks.items())))
            shutil.rmtree(clone / "dist", ignore_errors=True)


if __name__ == "__main__":
    main()
