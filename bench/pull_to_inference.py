"""Bytes pushed and registry-to-first-inference: omi's compressed images vs the Dockerfile-built image, in one run.

    python3 bench/pull_to_inference.py --runs 3     # --keep keeps the temp dir; --repeats N warm rebuilds per side
    python3 bench/pull_to_inference.py --runs 3 --rate 100mbit    # pulls over a shaped loopback (needs tc, root)

In one copy of the repository (as `dockerfile_build.py` makes it), against Distribution registries on loopback
(Debian's `docker-registry`, one per image so that each one's storage is exactly what its push sent):

- **omi gzip** (the default) and **omi zstd** (`--omi-layer-compression=zstd`): `./pants package` then
  `./pants publish` of the digits example.
- **Dockerfile**: the two-stage Dockerfile of `dockerfile_build.py` (same Debian base, the server's pinned
  distributions for the scikit-learn and ONNX formats, the same code and model), built with `podman build`, pushed
  with `podman push` (gzip, as podman compresses by default).
- **bytes pushed**: the bytes under each registry's `blobs/` after its push (omi's push also sends the ModelPack and
  omlmd artifacts; they reuse the model blobs, and their own few KB are in the figure), and the image's own bytes
  from its manifest (config + layers), against 376 MB, the digits image with uncompressed layers.
- **registry -> first inference**: per image and run, interleaved, with a new, empty podman storage
  (`podman --root <empty dir>`, so nothing is shared with earlier pulls or with the locally built images):
  `podman pull` from the registry, then `podman run -d`, then a kfserving.v1 REST client asks for the sample digit
  every 5 ms until the answer is right (`cold_start.py`'s client). The clock runs from just before the pull to the
  right answer; the pull alone is reported too. Dirty pages are flushed (`sync`) before each clock starts. On
  loopback the transfer costs next to nothing, so the figure is podman's own work (decompressing, unpacking and
  recording each layer, one layer after another); `--rate` shapes the loopback interface with a token bucket
  (`tc qdisc add dev lo root tbf rate <rate> burst 256kb latency 50ms`) for the pulls only, as a node's link to its
  registry would.
- **packaging time, warm**: with pantsd up, `model.joblib` changed (64 bytes appended), then `./pants package`,
  with compression (the default) and without (`--omi-layer-compression=none --omi-model-compression=none`),
  interleaved; the first build of each kind is not timed (it compresses, or writes, the unchanged layers once).

Everything it starts is stopped and everything it creates removed at the end (registries, containers, podman
storages, images labelled with the run's id, pantsd, the temp dir).
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
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from cold_start import RUN_FLAGS, NotUp, free_port, listening, v1_rest
from dockerfile_build import PODMAN, TARGETS, Ours, Theirs, prepare_theirs
from repo_copy import copy_repo

TARGET = TARGETS["linux/amd64"]

UNCOMPRESSED_DIGITS_MB = 376.0  # the digits image with uncompressed layers (README, before compression)
TIMEOUT_SECONDS = 120.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(argv: List[str], cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None) -> Tuple[float, str]:
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, text=True, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{(proc.stdout + proc.stderr)[-6000:]}")
    return time.monotonic() - t0, proc.stdout


@dataclass
class Registry:
    host: str
    storage: Path
    process: subprocess.Popen

    def blob_bytes(self) -> int:
        blobs = self.storage / "docker/registry/v2/blobs"
        return sum(p.stat().st_size for p in blobs.rglob("data")) if blobs.exists() else 0

    def image_bytes(self, repository: str, tag: str) -> int:
        """config + layers of the image manifest behind `tag`, as a pull downloads them."""
        request = urllib.request.Request(f"http://{self.host}/v2/{repository}/manifests/{tag}", headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
                      "application/vnd.docker.distribution.manifest.v2+json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            manifest = json.load(r)
        return int(manifest["config"]["size"]) + sum(int(layer["size"]) for layer in manifest["layers"])


def start_registry(tmp: Path) -> Registry:
    tmp.mkdir(parents=True)
    port = free_port()
    config = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
              "storage": {"filesystem": {"rootdirectory": str(tmp / "storage")}},
              "http": {"addr": f"127.0.0.1:{port}"}}
    (tmp / "config.yml").write_text(json.dumps(config))
    process = subprocess.Popen(["docker-registry", "serve", str(tmp / "config.yml")], stdout=subprocess.DEVNULL,
                               stderr=open(tmp / "registry.log", "wb"), start_new_session=True)
    deadline = time.monotonic() + 30
    while not listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"docker-registry did not start: {(tmp / 'registry.log').read_text()[-2000:]}")
        time.sleep(0.05)
    return Registry(f"127.0.0.1:{port}", tmp / "storage", process)


@dataclass
class Pushed:
    label: str
    registry: Registry
    reference: str  # host/repository:tag

    @property
    def repository_and_tag(self) -> Tuple[str, str]:
        path = self.reference.split("/", 1)[1]
        repository, tag = path.rsplit(":", 1)
        return repository, tag


def publish_ours(ours: Ours, label: str, registry: Registry, *flags: str) -> Pushed:
    ours.package(*flags)
    registries = "{'bench': {'address': '%s', 'default': True}}" % registry.host
    run(["./pants", "--no-dynamic-ui", *flags, f"--omi-registries={registries}", "publish", TARGET], cwd=ours.root,
        env=ours.env)
    record = ours.record()
    return Pushed(label, registry, f"{registry.host}/{record['repository']}:{record['tags'][0]}")


def first_inference(pushed: Pushed, storage: Path, run_id: str, index: int) -> Tuple[float, float]:
    """(seconds from `podman pull` to the first right answer, seconds of the pull alone), in an empty storage."""
    runroot = tempfile.mkdtemp(prefix="omi-", dir="/tmp")  # podman refuses a runroot path over 50 characters
    podman = [*PODMAN, "--root", str(storage / "root"), "--runroot", runroot, "--storage-driver", "overlay"]
    port = free_port()
    container = f"omi-bench-pull-{run_id}-{index}"
    infer = v1_rest(port)
    try:
        os.sync()  # the previous run's writes must not be flushed on this run's clock
        t0 = time.monotonic()
        run([*podman, "pull", "--quiet", "--tls-verify=false", pushed.reference])
        pulled = time.monotonic() - t0
        run([*podman, "run", "-d", "--name", container, *RUN_FLAGS, "-e", "INTERFACE=kfserving", "-e", "PROTOCOL=v1",
             "-e", f"HTTP_PORT={port}", pushed.reference])
        while True:
            if time.monotonic() - t0 > TIMEOUT_SECONDS:
                logs = subprocess.run([*podman, "logs", container], capture_output=True, text=True)
                raise SystemExit(f"{pushed.label}: no right answer {TIMEOUT_SECONDS:.0f} s after the pull started; "
                                 f"container log:\n{(logs.stdout + logs.stderr)[-3000:]}")
            if listening(port):
                try:
                    infer()
                    break
                except NotUp:
                    pass
            time.sleep(0.005)
        return time.monotonic() - t0, pulled
    finally:
        subprocess.run([*podman, "rm", "-f", "--time", "0", container], capture_output=True)
        subprocess.run([*podman, "system", "reset", "--force"], capture_output=True)
        shutil.rmtree(storage, ignore_errors=True)
        shutil.rmtree(runroot, ignore_errors=True)


def warm_packaging(ours: Ours, repeats: int) -> Tuple[List[float], List[float]]:
    """Model-only change rebuilds with pantsd up: (compressed, uncompressed) seconds."""
    plain_flags = ("--omi-layer-compression=none", "--omi-model-compression=none")
    ours.package()
    ours.package(*plain_flags)
    compressed: List[float] = []
    plain: List[float] = []
    model = ours.root / "examples/digits/model.joblib"
    for i in range(repeats):
        for flags, out in (((), compressed), (plain_flags, plain)):
            with open(model, "ab") as f:
                f.write(os.urandom(64))
            out.append(ours.package(*flags))
        log(f"warm model change {i + 1}/{repeats}: compressed {compressed[-1]:.2f} s, uncompressed {plain[-1]:.2f} s")
    return compressed, plain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="cold pulls per image (median)")
    parser.add_argument("--repeats", type=int, default=3, help="warm rebuilds per side (median)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--rate", help="shape loopback to this rate during the pulls (tc syntax, e.g. 100mbit)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="omi-bench-pull-", dir="/var/tmp"))
    run_id = uuid.uuid4().hex[:12]
    ours = Ours(tmp / "repo")
    theirs: Optional[Theirs] = None
    registries: List[Registry] = []
    shaped = False
    try:
        ours.root.mkdir()
        copy_repo(ours.root)
        for name in ("omi-gzip", "omi-zstd", "dockerfile"):
            registries.append(start_registry(tmp / f"registry-{name}"))
        log("ours: package and publish with gzip layers (the default)")
        pushed = [publish_ours(ours, "omi, gzip layers", registries[0])]
        log("theirs: preparing the build context from omi's base layers, then podman build and push")
        theirs, pins = prepare_theirs(ours, tmp / "ctx", run_id, "linux/amd64")
        theirs.build()
        log("ours: package and publish with zstd layers")
        pushed.append(publish_ours(ours, "omi, zstd layers", registries[1], "--omi-layer-compression=zstd"))
        reference = f"{registries[2].host}/dockerfile/digits:{run_id}"
        run([*PODMAN, "push", "--quiet", "--tls-verify=false", theirs.tag, reference])
        pushed.append(Pushed("Dockerfile, podman push (gzip)", registries[2], reference))

        sizes = {p.label: (p.registry.blob_bytes(), p.registry.image_bytes(*p.repository_and_tag)) for p in pushed}
        times: Dict[str, List[Tuple[float, float]]] = {p.label: [] for p in pushed}
        if args.rate:
            run(["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", args.rate, "burst", "256kb", "latency",
                 "50ms"])
            shaped = True
        for i in range(args.runs):
            for j, p in enumerate(pushed):
                total, pull = first_inference(p, tmp / f"storage-{i}-{j}", run_id, i * len(pushed) + j)
                times[p.label].append((total, pull))
                log(f"run {i + 1}/{args.runs} {p.label}: pull {pull:.2f} s, to first inference {total:.2f} s")
        if shaped:
            run(["tc", "qdisc", "del", "dev", "lo", "root"])
            shaped = False

        log("warm packaging: model change with and without compression")
        compressed, plain = warm_packaging(ours, args.repeats)

        med = statistics.median
        theirs_label = pushed[2].label
        theirs_pushed, theirs_image = sizes[theirs_label]
        theirs_total = med(t for t, _ in times[theirs_label])
        print()
        link = f"loopback shaped to {args.rate}" if args.rate else "loopback"
        print(f"Digits image, {time.strftime('%Y-%m-%d')}: pushed to loopback registries, then pulled ({link}) into "
              f"empty podman storages; medians of {args.runs} runs (Dockerfile image: {len(pins)} pinned distributions, the "
              f"scikit-learn and ONNX formats' server libraries)")
        print()
        print("| image | bytes pushed | image (config + layers) | vs 376 MB uncompressed | vs Dockerfile push | "
              "pull | registry -> first inference | vs Dockerfile |")
        print("|---|---|---|---|---|---|---|---|")
        for p in pushed:
            pushed_bytes, image_bytes = sizes[p.label]
            total = med(t for t, _ in times[p.label])
            pull = med(pl for _, pl in times[p.label])
            print(f"| {p.label} | {pushed_bytes / 1e6:.1f} MB | {image_bytes / 1e6:.1f} MB | "
                  f"{image_bytes / 1e6 / UNCOMPRESSED_DIGITS_MB:.2f}x | {pushed_bytes / theirs_pushed:.2f}x | "
                  f"{pull:.2f} s | {total:.2f} s | {total / theirs_total:.2f} |")
        print()
        print(f"| warm `pants package` after a model change | compressed {med(compressed):.2f} s | uncompressed "
              f"{med(plain):.2f} s | ratio {med(compressed) / med(plain):.2f} |")
        print()
        for p in pushed:
            print(f"{p.label}: to first inference {[round(t, 2) for t, _ in times[p.label]]}, "
                  f"pull {[round(pl, 2) for _, pl in times[p.label]]}")
        print(f"warm rebuilds (s): compressed {[round(x, 2) for x in compressed]}, "
              f"uncompressed {[round(x, 2) for x in plain]}")
        print(f"Dockerfile image bytes: {theirs_image / 1e6:.1f} MB; load average at the end: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0
    finally:
        if shaped:
            subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)
        ours.stop_pantsd()
        if theirs is not None:
            theirs.cleanup()
        for registry in registries:
            registry.process.terminate()
            registry.process.wait(timeout=30)
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
