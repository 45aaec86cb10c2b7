"""Build the digits image with omi and with a two-stage Dockerfile under `podman build`, in the same run; print ratios.

    python3 bench/dockerfile_build.py --bgd /tmp/bgd-venv   # --repeats N for the warm measurements, --keep the temp dir
    python3 bench/dockerfile_build.py --platform linux/arm64 --repeats 1 --large-model 0   # arm64, theirs under qemu

With `--platform linux/arm64` both sides build the arm64 image on this amd64 machine: ours is
`examples/digits:digits-arm64` (no emulation), theirs is `podman build --platform linux/arm64`, whose `RUN pip
install` runs under Debian's qemu-aarch64-static through binfmt_misc (mounted and registered by this script when it
runs as root and they are not; the wheels are aarch64 ones).

The baseline is what users do today: a pinned requirements file (what pip-compile writes), a build stage that
`pip install`s it, and a final stage that copies the installed packages, the serving code and the model. Both sides
build from the same Debian packages: the Dockerfile's base is omi's own base (its Debian layer and its standard
library bytecode layer, taken from the image omi builds in this run and turned into a local podman image once, before
any timing: the equivalent of having `python:3.11-slim` pulled already). Both sides install the same distributions
at the same versions: the requirements file pins the omi server's distributions for the scikit-learn and ONNX formats (those
in omi's third-party layers of the digits and digits-onnx images; a requirements.txt for the server lists them all,
while omi's digits image carries only the scikit-learn format's). pip inside a
container cannot reach PyPI here (TLS interception, see the project's environment notes), so the wheels are
downloaded on the host beforehand (not timed) and bind-mounted into the build stage, which runs with no network;
pip itself runs from its wheel, since Debian's python3.11 has no pip or ensurepip.

What is measured, all in one copy of the repository (tracked and new files, as the end-to-end tests copy it):

- cold: ours is `./pants --no-pantsd --no-local-cache package examples/digits:digits`: every build process runs
  (base assembly from the locked `.deb` files, pex resolve, every layer and bytecode step) and Pants starts from
  scratch; the machine's download caches (pip/pex, Pants's store holding the `.deb` files) stay warm. Theirs is
  `podman build --no-cache`: every step runs; the base image and the wheels are already local. Two cold builds per
  side, also to compare digests.
- no-op: the same build again with nothing changed; ours with pantsd running (started by a warm-up build), theirs
  with podman's layer cache.
- model-only change: bytes appended to `model.joblib` (the same bytes on both sides), then a rebuild.
- model-only change of a large model (`--large-model`, default 1G, 0 skips it): a random file of that size is added
  to the model on both sides (listed in model.yaml and `model_files`; a `COPY` as the Dockerfile's last step), built
  once untimed, then bytes are appended to it before each timed rebuild.
- fresh CI runner (with `--bgd`, BuildGrid's venv as for `remote_cache.py`): this clone's build populates a remote
  cache on loopback (not timed), then another clone with an empty local store and empty named caches builds with
  `--no-pantsd` and the remote cache read-only; compared with their cold build (the mean of their two).
- image size: ours is the sum of the layer sizes in `digits.omi.json` (the layers as shipped: compressed by
  default); theirs is podman's `.Size` of the built image (uncompressed). Not like for like: `pull_to_inference.py`
  compares what both push, `format_sizes.py` both uncompressed.
- digest: ours is `image_digest` from the build record; theirs is the image ID (config digest) and the manifest
  digest podman reports after each cold build.

Everything it creates is removed at the end: the temp dir, its podman images (found by a label unique to the run,
which every image of the run inherits from the base) and the pantsd it started.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from large_model import parse_size, write_random
from remote_cache import remote_cache_flags, resolve_bgd, start_buildgrid, stop_group
from repo_copy import copy_repo

TARGETS = {"linux/amd64": "examples/digits:digits", "linux/arm64": "examples/digits:digits-arm64"}
WHEEL_MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
ONNX_TARGET = "examples/digits_onnx:digits-onnx"
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
BUILD_FLAGS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

DOCKERIGNORE = """**/__pycache__
**/BUILD
**/README.md
**/*_test.py
**/conftest.py
"""

BASE_DOCKERFILE = """FROM scratch
ADD debian-base.tar /
ADD stdlib-bytecode.tar /
LABEL omi.bench.run={run_id}
"""

DOCKERFILE = """# A two-stage build of the digits model server, as users write it today.
FROM {base} AS build
RUN --mount=type=bind,source=wheels,target=/wheels ["/usr/bin/python3.11", "/wheels/{pip_wheel}/pip", "install", \
"--no-index", "--find-links", "/wheels", "--no-cache-dir", "--disable-pip-version-check", "--root-user-action=ignore", \
"--target", "/opt/omi/site-packages", "-r", "/wheels/requirements.txt"]

FROM {base}
COPY --from=build /opt/omi/site-packages /opt/omi/site-packages
COPY omi_runtime /opt/omi/app/omi_runtime
COPY omi_contract /opt/omi/app/omi_contract
COPY omi-model.json /models/digits/omi-model.json
COPY model.joblib /models/digits/model.joblib
ENV {env}
LABEL ml.openmodel.interfaces='["kfserving.v1","kfserving.v2","modzy.v2"]'
EXPOSE 8080
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/bin/python3.11", "-m", "omi_runtime"]
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(argv: List[str], cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None,
        check: bool = True) -> Tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, text=True, capture_output=True)
    elapsed = time.monotonic() - start
    if check and proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{(proc.stdout + proc.stderr)[-6000:]}")
    return elapsed, proc


class Ours:
    def __init__(self, root: Path, target: str = TARGETS["linux/amd64"]) -> None:
        self.root = root
        self.target = target
        self.env = {k: v for k, v in os.environ.items() if k != "PANTS_BUILDROOT_OVERRIDE"}

    def package(self, *flags: str) -> float:
        elapsed, _ = run(["./pants", "--no-dynamic-ui", *flags, "package", self.target], cwd=self.root, env=self.env)
        return elapsed

    def package_other(self, target: str) -> None:
        run(["./pants", "--no-dynamic-ui", "--no-pantsd", "package", target], cwd=self.root, env=self.env)

    def record(self, target: Optional[str] = None) -> Dict:
        spec_path, name = (target or self.target).split(":")
        return json.loads((self.root / "dist" / spec_path.replace("/", ".") / f"{name}.omi.json").read_text())

    def blob(self, digest: str) -> Path:
        """A blob of any image packaged in this clone (the layouts under dist/ hold the same blob bytes)."""
        for layout in sorted((self.root / "dist").glob("*/*.oci")):
            path = layout / "blobs/sha256" / digest.split(":", 1)[1]
            if path.exists():
                return path
        raise FileNotFoundError(digest)

    def config(self) -> Dict:
        spec_path, name = self.target.split(":")
        layout = self.root / "dist" / spec_path.replace("/", ".") / f"{name}.oci"
        index = json.loads((layout / "index.json").read_text())
        manifest = json.loads(self.blob(index["manifests"][0]["digest"]).read_text())
        return json.loads(self.blob(manifest["config"]["digest"]).read_text())

    def stop_pantsd(self) -> None:
        subprocess.run(["pkill", "-f", f"pantsd \\[{self.root}\\]"], check=False)


class Theirs:
    def __init__(self, ctx: Path, run_id: str, platform: str = "linux/amd64") -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.platform = platform
        self.base = f"localhost/omi-bench-df-base:{run_id}"
        self.tag = f"localhost/omi-bench-df:{run_id}"

    def build(self, *flags: str) -> float:
        elapsed, _ = run([*PODMAN, "build", *BUILD_FLAGS, "--platform", self.platform, "--network=none", *flags,
                          "-t", self.tag,
                          "-f", str(self.ctx / "Dockerfile"), str(self.ctx)])
        return elapsed

    def inspect(self) -> Dict:
        _, proc = run([*PODMAN, "image", "inspect", self.tag])
        return json.loads(proc.stdout)[0]

    def cleanup(self) -> None:
        _, proc = run(["podman", "images", "-a", "-q", "--no-trunc", "--filter", f"label=omi.bench.run={self.run_id}"],
                      check=False)
        ids = sorted(set(proc.stdout.split()))
        if ids:
            run(["podman", "rmi", "-f", *ids], check=False)
        run(["podman", "rmi", "-f", self.base], check=False)


def third_party_pins(blob: Callable[[str], Path], record: Dict) -> List[str]:
    """`name==version` of every distribution in an omi image's third-party layer."""
    layer = next(layer for layer in record["layers"] if layer["created_by"] == "omi: third-party Python packages")
    pins = []
    with tarfile.open(blob(layer["digest"])) as tar:
        for name in tar.getnames():
            parts = name.strip("/").split("/")
            if len(parts) == 4 and parts[3].endswith(".dist-info"):
                dist, version = parts[3][: -len(".dist-info")].rsplit("-", 1)
                pins.append(f"{dist}=={version}")
    return pins


def prepare_theirs(ours: Ours, ctx: Path, run_id: str, platform: str) -> Tuple[Theirs, List[str]]:
    record, config = ours.record(), ours.config()
    layers = record["layers"]
    assert layers[0]["created_by"].startswith("omi_debian_base"), layers[0]
    assert layers[1]["created_by"].startswith("omi: bytecode for omi_debian_base"), layers[1]
    ctx.mkdir(parents=True)

    # The pinned requirements of the omi server for the scikit-learn and ONNX formats, as a requirements.txt for the server
    # lists them: the distributions of omi's third-party layers of the digits (sklearn) and digits-onnx (onnx)
    # images, at their locked versions. omi's digits image itself carries only the sklearn format's.
    ours.package_other(ONNX_TARGET)
    pins = sorted({*third_party_pins(ours.blob, record), *third_party_pins(ours.blob, ours.record(ONNX_TARGET))})
    wheels = ctx / "wheels"
    wheels.mkdir()
    (wheels / "requirements.txt").write_text("".join(p + "\n" for p in pins))

    # Wheels for CPython 3.11 on glibc x86_64 (or aarch64), downloaded on the host (pip in a container fails TLS here).
    machine = WHEEL_MACHINES[platform]
    log(f"downloading {len(pins)} pinned {machine} wheels and pip on the host")
    pip_env = {**os.environ, "PIP_CONFIG_FILE": "/dev/null"}
    dl = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--cert", CA_BUNDLE,
          "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
          "--abi", "abi3", "--abi", "none",
          *[a for p in (f"manylinux_2_28_{machine}", f"manylinux_2_27_{machine}", f"manylinux2014_{machine}",
                        f"manylinux_2_17_{machine}", "any")
            for a in ("--platform", p)], "-d", str(wheels)]
    run([*dl, "-r", str(wheels / "requirements.txt"), "pip"], env=pip_env)
    pip_wheel = sorted(p.name for p in wheels.glob("pip-*.whl"))[-1]

    # The base: omi's Debian layer and standard library bytecode, as a local image (the `python:3.11-slim` pulled).
    shutil.copy(ours.blob(layers[0]["digest"]), ctx / "debian-base.tar")
    shutil.copy(ours.blob(layers[1]["digest"]), ctx / "stdlib-bytecode.tar")
    (ctx / "Base.Dockerfile").write_text(BASE_DOCKERFILE.format(run_id=run_id))
    theirs = Theirs(ctx, run_id, platform)
    run([*PODMAN, "build", *BUILD_FLAGS, "--platform", platform, "--network=none", "-t", theirs.base,
         "-f", str(ctx / "Base.Dockerfile"), str(ctx)])
    (ctx / "debian-base.tar").unlink()
    (ctx / "stdlib-bytecode.tar").unlink()

    # Code, model and model record, the same files omi puts in its image.
    for package in ("omi_runtime", "omi_contract"):  # the server and the contract it reads its names from
        shutil.copytree(ours.root / package, ctx / package,
                        ignore=shutil.ignore_patterns("__pycache__", "BUILD", "README.md", "*_test.py", "conftest.py"))
    sys.path.insert(0, str(ours.root))
    from omi_plugin.metadata.model_yaml import load_model_yaml  # noqa: E402

    model_yaml = ours.root / "examples/digits/model.yaml"
    (ctx / "omi-model.json").write_bytes(
        load_model_yaml(model_yaml.read_text(), "examples/digits/model.yaml").record_json())
    shutil.copy2(ours.root / "examples/digits/model.joblib", ctx / "model.joblib")
    (ctx / ".dockerignore").write_text(DOCKERIGNORE)
    env = " \\\n    ".join(json.dumps(e.split("=", 1)[0]) + "=" + json.dumps(e.split("=", 1)[1])
                           for e in config["config"]["Env"])
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=theirs.base, pip_wheel=pip_wheel, env=env))
    return theirs, pins


def add_large_model(ours: Ours, theirs: Theirs, size: int) -> None:
    """Add a `size`-byte model file, the same bytes on both sides, as the last layer of each image."""
    model_dir = ours.root / "examples/digits"
    write_random(model_dir / "weights.bin", size)
    shutil.copy(model_dir / "weights.bin", theirs.ctx / "weights.bin")
    model_yaml = model_dir / "model.yaml"
    model_yaml.write_text(model_yaml.read_text().replace("files: [model.joblib]", "files: [model.joblib, weights.bin]"))
    build = model_dir / "BUILD"
    build.write_text(build.read_text().replace('model_files=["model.joblib"]', 'model_files=["model.joblib", "weights.bin"]'))
    from omi_plugin.metadata.model_yaml import load_model_yaml  # noqa: E402 (sys.path set by prepare_theirs)

    (theirs.ctx / "omi-model.json").write_bytes(load_model_yaml(model_yaml.read_text(), "examples/digits/model.yaml").record_json())
    dockerfile = theirs.ctx / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(
        "COPY model.joblib /models/digits/model.joblib\n",
        "COPY model.joblib /models/digits/model.joblib\nCOPY weights.bin /models/digits/weights.bin\n"))


def fresh_ci_runner(ours: Ours, tmp: Path, bgd: Path) -> Tuple[float, str]:
    """Populate a loopback remote cache from `ours`, then build in a new clone with empty local caches; (seconds, digest)."""
    server: Optional[subprocess.Popen] = None
    (tmp / "bgd").mkdir()
    try:
        server, port = start_buildgrid(bgd, tmp / "bgd")
        log("ours: populating the remote cache from this clone (--no-pantsd, empty local store; not timed)")
        ours.package("--no-pantsd", f"--local-store-dir={tmp / 'store-populate'}", *remote_cache_flags(port),
                     "--remote-cache-write")
        runner = Ours(tmp / "ci-runner", ours.target)
        copy_repo(runner.root)
        log("ours: fresh CI runner: another clone, empty local store and named caches, remote cache read-only")
        seconds = runner.package("--no-pantsd", f"--local-store-dir={tmp / 'store-ci'}",
                                 f"--named-caches-dir={tmp / 'named-caches-ci'}", *remote_cache_flags(port),
                                 "--no-remote-cache-write")
        return seconds, runner.record()["image_digest"]
    finally:
        stop_group(server)


def timed_model_changes(ours: Ours, theirs: Theirs, filename: str, repeats: int, label: str) -> Tuple[List[float], List[float]]:
    """Append the same 64 random bytes to both copies of a model file, rebuild both; `repeats` times."""
    ours_times: List[float] = []
    theirs_times: List[float] = []
    for i in range(repeats):
        extra = os.urandom(64)
        for path in (ours.root / "examples/digits" / filename, theirs.ctx / filename):
            with open(path, "ab") as f:
                f.write(extra)
        ours_times.append(ours.package())
        theirs_times.append(theirs.build())
        log(f"{label} {i + 1}/{repeats}: ours {fmt_s(ours_times[-1])}, theirs {fmt_s(theirs_times[-1])}")
    return ours_times, theirs_times


def ensure_binfmt_aarch64() -> None:
    """Their arm64 `RUN` steps need the kernel to hand aarch64 binaries to qemu: binfmt_misc mounted and Debian's
    qemu-aarch64 entry registered (with the F flag, so that containers find the emulator)."""
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if (binfmt / "qemu-aarch64").exists():
        return
    conf = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
    if not conf.exists():
        raise SystemExit("qemu-user-static is not installed (apt-get install qemu-user-static)")
    try:
        if not (binfmt / "register").exists():
            subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], check=True, capture_output=True)
        (binfmt / "register").write_text(conf.read_text().strip())
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"cannot register qemu-aarch64 with binfmt_misc ({e}); as root: mount -t binfmt_misc "
                         f"binfmt_misc {binfmt} && cat {conf} > {binfmt}/register") from None
    log("registered qemu-aarch64-static with binfmt_misc")


def fmt_s(x: float) -> str:
    return f"{x:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="no-op and model-change rebuilds per side (median)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (copy, build context, Dockerfile)")
    parser.add_argument("--large-model", default="1G", help="size of the large model file for the model-only change "
                        "of a large model (e.g. 1G; 0 skips it)")
    parser.add_argument("--platform", choices=sorted(TARGETS), default="linux/amd64",
                        help="the image's platform; linux/arm64 runs their build under qemu (binfmt_misc)")
    parser.add_argument("--bgd", help="BuildGrid's `bgd` executable or venv: also measure a fresh CI runner served by "
                        "a remote cache (see remote_cache.py for the venv)")
    args = parser.parse_args()
    bgd = resolve_bgd(args.bgd) if args.bgd else None
    large = parse_size(args.large_model)
    if sys.version_info[:2] != (3, 11):
        log(f"note: wheels are downloaded by this interpreter's pip for CPython 3.11 ({sys.version.split()[0]})")

    tmp = Path(tempfile.mkdtemp(prefix="omi-bench-df-"))
    run_id = uuid.uuid4().hex[:12]
    ours = Ours(tmp / "repo", TARGETS[args.platform])
    if args.platform == "linux/arm64":
        ensure_binfmt_aarch64()
    theirs: Optional[Theirs] = None
    try:
        ours.root.mkdir()
        copy_repo(ours.root)

        # Ours, cold, twice: every process runs, Pants starts from scratch.
        cold_ours, digests_ours = [], []
        for i in range(2):
            log(f"ours: cold build {i + 1}/2 (--no-pantsd --no-local-cache)")
            cold_ours.append(ours.package("--no-pantsd", "--no-local-cache"))
            digests_ours.append(ours.record()["image_digest"])
            log(f"  {fmt_s(cold_ours[-1])} {digests_ours[-1]}")
        size_ours = sum(layer["size"] for layer in ours.record()["layers"])

        log("theirs: preparing the build context (not timed)")
        theirs, pins = prepare_theirs(ours, tmp / "ctx", run_id, args.platform)
        cold_theirs, ids_theirs, digests_theirs = [], [], []
        for i in range(2):
            log(f"theirs: cold build {i + 1}/2 (podman build --no-cache)")
            cold_theirs.append(theirs.build("--no-cache"))
            info = theirs.inspect()
            ids_theirs.append("sha256:" + info["Id"])
            digests_theirs.append(info.get("Digest", "?"))
            log(f"  {fmt_s(cold_theirs[-1])} id {ids_theirs[-1]}")
        size_theirs = int(theirs.inspect()["Size"])

        fresh: Optional[float] = None
        if bgd is not None:
            fresh, fresh_digest = fresh_ci_runner(ours, tmp, bgd)
            log(f"  {fmt_s(fresh)} {fresh_digest}")
            assert fresh_digest == digests_ours[0], (fresh_digest, digests_ours[0])

        log("ours: warm-up build, starting pantsd")
        warmup = ours.package()
        log(f"  {fmt_s(warmup)}")
        noop_ours, noop_theirs = [], []
        for i in range(args.repeats):
            noop_ours.append(ours.package())
            noop_theirs.append(theirs.build())
            log(f"no-op {i + 1}/{args.repeats}: ours {fmt_s(noop_ours[-1])}, theirs {fmt_s(noop_theirs[-1])}")

        model_ours, model_theirs = timed_model_changes(ours, theirs, "model.joblib", args.repeats, "model change")
        # Sanity: the model change reached both images.
        assert ours.record()["image_digest"] not in digests_ours

        large_ours: List[float] = []
        large_theirs: List[float] = []
        if large:
            log(f"adding a {args.large_model} model file on both sides; first build of each not timed")
            add_large_model(ours, theirs, large)
            ours.package()
            theirs.build()
            large_ours, large_theirs = timed_model_changes(ours, theirs, "weights.bin", args.repeats,
                                                           f"{args.large_model} model change")

        med = statistics.median
        rows = [
            ("cold build (1st)", cold_ours[0], cold_theirs[0]),
            ("cold build (2nd)", cold_ours[1], cold_theirs[1]),
            (f"no-op rebuild (median of {args.repeats})", med(noop_ours), med(noop_theirs)),
            (f"model-only change (median of {args.repeats})", med(model_ours), med(model_theirs)),
        ]
        if large_ours:
            rows.append((f"model-only change, {args.large_model} model (median of {args.repeats})", med(large_ours),
                         med(large_theirs)))
        if fresh is not None:
            rows.append(("fresh CI runner, warm remote cache (vs their cold build, mean of 2)", fresh,
                         statistics.mean(cold_theirs)))
        print()
        print(f"omi vs a two-stage Dockerfile under `podman build`, digits example for {args.platform}, "
              f"{time.strftime('%Y-%m-%d')}, "
              f"{len(pins)} pinned distributions on both sides")
        print()
        print("| measurement | omi | Dockerfile | omi/Dockerfile |")
        print("|---|---|---|---|")
        for name, a, b in rows:
            print(f"| {name} | {fmt_s(a)} | {fmt_s(b)} | {a / b:.2f} |")
        # Not a like-for-like size: omi ships compressed layers, podman reports its image uncompressed
        # (bench/pull_to_inference.py compares what both push and pull; bench/format_sizes.py both uncompressed).
        print(f"| image size (omi: its layers as shipped, compressed; Dockerfile: podman's uncompressed .Size, the "
              f"server's libraries for every format) | {size_ours / 1e6:.1f} MB | {size_theirs / 1e6:.1f} MB | |")
        same_ours = "identical" if len(set(digests_ours)) == 1 else "different"
        same_theirs = "identical" if len(set(ids_theirs)) == 1 else "different"
        print(f"| image digest, two cold builds | {same_ours} | {same_theirs} | |")
        print()
        print(f"omi digests:        {' '.join(digests_ours)}")
        print(f"Dockerfile IDs:     {' '.join(ids_theirs)}")
        print(f"Dockerfile digests: {' '.join(digests_theirs)}")
        print(f"all no-op (s):      omi {[round(x, 2) for x in noop_ours]}  Dockerfile "
              f"{[round(x, 2) for x in noop_theirs]}")
        print(f"all model (s):      omi {[round(x, 2) for x in model_ours]}  Dockerfile "
              f"{[round(x, 2) for x in model_theirs]}")
        if large_ours:
            print(f"all {args.large_model} model (s): omi {[round(x, 2) for x in large_ours]}  Dockerfile "
                  f"{[round(x, 2) for x in large_theirs]}")
        print(f"omi warm-up build with pantsd start: {fmt_s(warmup)}")
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.keep:
            print(f"kept: {tmp}")
        return 0
    finally:
        ours.stop_pantsd()
        if theirs is not None:
            theirs.cleanup()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
