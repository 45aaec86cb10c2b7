"""Package a model in two clones against a real REAPI cache (BuildGrid) on loopback: the second build, with an empty
local store, must be served from the remote cache and produce the same image digest.

    python3 bench/remote_cache.py --bgd /tmp/bgd-venv/bin/bgd

Prerequisite (this script installs nothing): a BuildGrid venv. Recent BuildGrid releases need CPython 3.12; on these
machines pip must be kept away from the global pip config and given the system CA bundle:

    $PYENV_ROOT/versions/3.12.*/bin/python -m venv /tmp/bgd-venv
    PIP_CONFIG_FILE=/dev/null /tmp/bgd-venv/bin/pip install --cert /etc/ssl/certs/ca-certificates.crt buildgrid

What it does:
1. starts `bgd server` on 127.0.0.1 (a free port) with an ActionCache, CAS and ByteStream service for instance
   `omi`, storing blobs in a temporary directory (no database, no execution service);
2. copies the repository (tracked files plus new, non-ignored ones) into two temporary clones A and B;
3. A: `./pants --no-pantsd package TARGET` with an empty local store (`--local-store-dir`), remote cache read and
   write. The named caches (pip/pex downloads) stay the machine's default, so A is "cold" for every process result
   but does not re-download wheels;
4. B: the same command in the other clone, with another empty local store, an empty named-caches dir (unless
   `--keep-named-caches`), and remote cache read only;
5. prints the wall times, B/A, Pants's own counters of B (`--stats-log`: remote cache requests, hits, time saved),
   and whether `image_digest` in the build record is identical in A and B.

Both clones run Pants from the same bootstrap venv (`~/.cache/omi/pants-2.17.1`, made by `./pants`): the sandboxed
tools run with that venv's interpreter by absolute path, and that path is part of every process's cache key. Another
machine shares cache entries only if it bootstraps Pants at the same path.

Every server this script starts runs in its own process group and is stopped, and every temporary directory is
removed, whatever happens. Exit status: 0 when B was served entirely from the remote cache with the same digest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from repo_copy import copy_repo

INSTANCE = "omi"

BGD_CONFIG = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
# gRPC's default limit here is 5 RPCs per core: Pants sends up to 128 CAS reads at once, and an RPC over the limit
# fails with RESOURCE_EXHAUSTED, which Pants counts as a remote cache read error (and runs the process locally).
thread-pool-size: 32
maximum-concurrent-rpcs: 1024
authorization:
  method: none
monitoring:
  enabled: false
storages:
  - !disk-storage &cas-storage
    path: {cas_dir}
caches:
  - !lru-action-cache &action-cache
    storage: *cas-storage
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: {instance}
    services:
      - !action-cache
        cache: *action-cache
      - !cas
        storage: *cas-storage
      - !bytestream
        storage: *cas-storage
"""

COUNTERS = (
    "local_cache_requests_cached",
    "local_execution_requests",
    "remote_cache_requests",
    "remote_cache_requests_cached",
    "remote_cache_requests_uncached",
    "remote_cache_read_errors",
    "remote_cache_write_attempts",
    "remote_cache_write_successes",
    "remote_cache_write_errors",
    "remote_cache_total_time_saved_ms",
    "remote_store_missing_digest",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bgd server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"bgd server did not listen on 127.0.0.1:{port} within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def stop_group(proc: Optional[subprocess.Popen]) -> None:
    """Stop a process started with start_new_session=True, and everything in its process group."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # The group may outlive its leader (e.g. server worker processes): make sure it is gone.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def parse_counters(output: str) -> Dict[str, int]:
    counters: Dict[str, int] = {}
    block = output.rsplit("Counters:", 1)
    if len(block) == 2:
        for match in re.finditer(r"^\s+([a-z_]+): (\d+)$", block[1], re.M):
            counters[match.group(1)] = int(match.group(2))
    return counters


def build_phase_seconds(output: str) -> float:
    """Seconds from Pants's first log line to its last: the build itself, without interpreter and rule-graph start-up."""
    stamps = [int(h) * 3600 + int(m) * 60 + float(sec)
              for h, m, sec in re.findall(r"^(\d\d):(\d\d):(\d\d\.\d+) \[", output, re.M)]
    if len(stamps) < 2:
        return float("nan")
    return (stamps[-1] - stamps[0]) % 86400


def run_pants(clone: Path, args: List[str], log: Path) -> Tuple[float, str]:
    env = dict(os.environ)
    env.pop("PANTS_BUILDROOT_OVERRIDE", None)
    argv = ["./pants", "--no-pantsd", "--no-dynamic-ui", "--stats-log", *args]
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=3600)
    except BaseException:
        stop_group(proc)
        raise
    elapsed = time.monotonic() - start
    log.write_text(" ".join(argv) + "\n" + output)
    if proc.returncode != 0:
        sys.exit(f"pants failed in {clone} ({proc.returncode}):\n{output[-6000:]}")
    return elapsed, output


def record_path(clone: Path, target: str) -> Path:
    spec_path, _, name = target.partition(":")
    name = name or spec_path.rsplit("/", 1)[-1]
    return clone / "dist" / spec_path.replace("/", ".") / f"{name}.omi.json"


def resolve_bgd(path: str) -> Path:
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / "bin" / "bgd"
    if not (candidate.is_file() and os.access(candidate, os.X_OK)):
        sys.exit(f"no bgd executable at {path}: create the BuildGrid venv described in `{__file__} --help`")
    return candidate


def start_buildgrid(bgd: Path, tmp: Path) -> Tuple[subprocess.Popen, int]:
    """Start BuildGrid (ActionCache, CAS, ByteStream) on loopback with its blobs in `tmp/cas`; stop it with stop_group."""
    port = free_port()
    cas_dir = tmp / "cas"
    cas_dir.mkdir()
    config = tmp / "bgd.yml"
    config.write_text(BGD_CONFIG.format(port=port, cas_dir=cas_dir, instance=INSTANCE))
    server_log = tmp / "bgd-server.log"
    with open(server_log, "w") as log:
        server = subprocess.Popen([str(bgd), "server", "start", str(config)], cwd=tmp, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    print(f"starting BuildGrid {bgd} on 127.0.0.1:{port} ...", flush=True)
    try:
        wait_for_port(port, server, server_log)
    except BaseException:
        stop_group(server)
        raise
    return server, port


def remote_cache_flags(port: int) -> List[str]:
    """Pants flags that read the remote cache at `port` (add --remote-cache-write to populate it)."""
    return [f"--remote-store-address=grpc://127.0.0.1:{port}", f"--remote-instance-name={INSTANCE}",
            "--remote-cache-read"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--bgd", required=True, help="BuildGrid's `bgd` executable, or the venv that has it")
    parser.add_argument("--target", default="examples/digits:digits")
    parser.add_argument("--keep-named-caches", action="store_true",
                        help="let B use the machine's default named caches (pip/pex downloads) instead of an empty one")
    parser.add_argument("--logs", type=Path, help="copy the server's and both Pants runs' logs into this directory")
    args = parser.parse_args()
    bgd = resolve_bgd(args.bgd)

    tmp = Path(tempfile.mkdtemp(prefix="omi-bench-remote-cache-"))
    server: Optional[subprocess.Popen] = None
    try:
        server, port = start_buildgrid(bgd, tmp)
        cas_dir = tmp / "cas"
        clone_a, clone_b = tmp / "clone-a", tmp / "clone-b"
        for clone in (clone_a, clone_b):
            copy_repo(clone)
        remote = remote_cache_flags(port)

        print(f"A: {args.target}, empty local store, remote cache read+write ...", flush=True)
        time_a, out_a = run_pants(clone_a, [
            f"--local-store-dir={tmp / 'store-a'}", *remote, "--remote-cache-write", "package", args.target,
        ], tmp / "pants-a.log")

        named = [] if args.keep_named_caches else [f"--named-caches-dir={tmp / 'named-caches-b'}"]
        print(f"B: {args.target} in another clone, empty local store"
              f"{'' if args.keep_named_caches else ' and named caches'}, remote cache read only ...", flush=True)
        time_b, out_b = run_pants(clone_b, [
            f"--local-store-dir={tmp / 'store-b'}", *named, *remote, "--no-remote-cache-write", "package", args.target,
        ], tmp / "pants-b.log")

        digest_a = json.loads(record_path(clone_a, args.target).read_text())["image_digest"]
        digest_b = json.loads(record_path(clone_b, args.target).read_text())["image_digest"]
        counters_a, counters_b = parse_counters(out_a), parse_counters(out_b)
        cas_bytes = sum(f.stat().st_size for f in cas_dir.rglob("*") if f.is_file())

        print()
        phase_a, phase_b = build_phase_seconds(out_a), build_phase_seconds(out_b)
        print(f"A (cold, populates the cache): {time_a:7.1f} s wall, {phase_a:6.1f} s after Pants start-up")
        print(f"B (other clone, empty store):  {time_b:7.1f} s wall, {phase_b:6.1f} s after Pants start-up")
        print(f"B/A: {time_b / time_a:.2f} wall, {phase_b / phase_a:.2f} after start-up")
        print(f"remote CAS after A: {cas_bytes / 2**20:.0f} MiB; A wrote "
              f"{counters_a.get('remote_cache_write_successes', 0)}/{counters_a.get('remote_cache_write_attempts', 0)}"
              f" action results")
        print("B counters: " + ", ".join(f"{k}={counters_b[k]}" for k in COUNTERS if k in counters_b))
        hits, requests = counters_b.get("remote_cache_requests_cached", 0), counters_b.get("remote_cache_requests", 0)
        print(f"B processes served from the remote cache: {hits}/{requests}")
        print(f"image_digest A: {digest_a}")
        print(f"image_digest B: {digest_b}")
        print(f"identical: {'yes' if digest_a == digest_b else 'NO'}")
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            for name in ("bgd-server.log", "pants-a.log", "pants-b.log"):
                shutil.copy2(tmp / name, args.logs / name)
        return 0 if digest_a == digest_b and requests > 0 and hits == requests else 1
    finally:
        stop_group(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
