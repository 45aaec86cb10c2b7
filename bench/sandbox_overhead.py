"""What Pants's store costs the big non-model layers: each layer process inside Pants against the same process run
alone, measured in the same run.

    python3 bench/sandbox_overhead.py                      # --target, --runs N, --keep

In a fresh copy of the repository, one cold `pants package` (`--no-pantsd --no-local-cache
--keep-sandboxes=always`) runs every process and keeps its sandbox. For each layer, bytecode and compression
process of the target, the script takes its wall time in Pants from the log (`Starting:` to `Completed:`: the
inputs materialised into the sandbox, the process, its outputs captured into Pants's store), then runs the kept
sandbox's `__run.sh` alone, N times, after removing its outputs (the process alone: no materialising, no
capture). The difference is the most a blob store could save for that layer, on a build that runs it at all;
processes overlap in Pants and not here, so a small difference is within noise.

It prints, per process, the output size and both times, their ratio, and the total over all of them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Tuple

from repo_copy import copy_repo

# The process descriptions worth measuring: the layers whose bytes Pants captures.
KINDS = ("Layer:", "Compile bytecode:", "Compile the standard library", "Compress (", "Assemble base layer")
# Outputs and scratch directories of the plugin's tools, removed before each standalone run.
OUTPUTS = ("__layer_out", "__bytecode_work")
_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d\d) \[INFO\] (Starting|Completed): (.+)$")
_KEPT = re.compile(r"Preserving local process execution dir (\S+) for (.+)$")


def _clock(stamp: str) -> float:
    t = datetime.strptime(stamp, "%H:%M:%S.%f")
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def in_pants(log: str) -> Dict[str, float]:
    """Each process's wall time in Pants, by description."""
    started: Dict[str, float] = {}
    took: Dict[str, float] = {}
    for line in log.splitlines():
        m = _LINE.match(line)
        if m:
            stamp, event, what = m.groups()
            if event == "Starting":
                started[what] = _clock(stamp)
            elif what in started:
                took[what] = (_clock(stamp) - started[what]) % 86400
    return took


def kept_sandboxes(log: str) -> Dict[str, Path]:
    return {m.group(2): Path(m.group(1)) for m in map(_KEPT.search, log.splitlines()) if m}


def run_alone(sandbox: Path) -> Tuple[float, int]:
    for name in OUTPUTS:
        shutil.rmtree(sandbox / name, ignore_errors=True)
    started = time.monotonic()
    subprocess.run(["bash", "./__run.sh"], cwd=sandbox, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    took = time.monotonic() - started
    # The layer's own output (what Pants captures), not the scratch directory beside it.
    out = sum(p.stat().st_size for p in (sandbox / OUTPUTS[0]).rglob("*") if p.is_file() and not p.is_symlink())
    return took, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="examples/digits:digits")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="omi-sandbox-overhead-"))
    root = work / "repo"
    kept: Dict[str, Path] = {}
    try:
        root.mkdir()
        copy_repo(root)
        print(f"cold `pants package {args.target}`, every sandbox kept ...", file=sys.stderr)
        done = subprocess.run(["./pants", "--no-pantsd", "--no-dynamic-ui", "--no-local-cache",
                               "--keep-sandboxes=always", "package", args.target],
                              cwd=root, capture_output=True, text=True)
        kept = kept_sandboxes(done.stderr)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        took = in_pants(done.stderr)
        rows: List[Tuple[str, int, float, float]] = []
        for what, sandbox in sorted(kept.items()):
            # The model file's writer is not measured: it goes to the blob store, not through Pants's store.
            if not what.startswith(KINDS) or what not in took or "(into the blob store)" in what:
                continue
            alone = [run_alone(sandbox) for _ in range(args.runs)]
            rows.append((what, alone[0][1], took[what], statistics.median(t for t, _ in alone)))
        print(f"| process of {args.target} | output | in Pants | alone (median of {args.runs}) | difference | "
              "in Pants / alone |")
        print("|---|---|---|---|---|---|")
        for what, size, pants_s, alone_s in sorted(rows, key=lambda r: -r[1]):
            print(f"| {what.replace(f' of {args.target}', '')} | {size / 1e6:.1f} MB | {pants_s:.2f} s | "
                  f"{alone_s:.2f} s | {pants_s - alone_s:+.2f} s | {pants_s / alone_s:.2f} |")
        total_p, total_a = sum(r[2] for r in rows), sum(r[3] for r in rows)
        print(f"| all {len(rows)} | {sum(r[1] for r in rows) / 1e6:.1f} MB | {total_p:.2f} s | {total_a:.2f} s | "
              f"{total_p - total_a:+.2f} s | {total_p / total_a:.2f} |")
        return 0
    finally:
        if args.keep:
            print(f"kept {work} and the sandboxes", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
            for sandbox in kept.values():
                shutil.rmtree(sandbox, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
