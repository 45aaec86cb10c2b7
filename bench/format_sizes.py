"""Image size of each example model, omi vs a two-stage Dockerfile for the same format, measured in the same run.

    python3 bench/format_sizes.py            # --keep leaves the temp dir

For every example (`examples/*`, one per built-in format), in one copy of the repository:

- ours: `pants package` of the example with `--omi-layer-compression=none --omi-model-compression=none`;
  uncompressed is the sum of its layers; gzip -6 is the same image copied by
  `skopeo copy --dest-compress-format gzip --dest-compress-level 6`; as shipped is the sum of the layers of the
  default build (omi's own deterministic gzip, model files compressed only where they compress).
- theirs: the Dockerfile of `bench/dockerfile_build.py` for that format: omi's own base (the same Debian layer and
  standard library bytecode), `pip install` in a build stage of exactly the distributions in our image's third-party
  layer (same versions; wheels downloaded on the host, the build offline), and the same runtime code, model record
  and model files copied into the final stage. Uncompressed is podman's `.Size`; compressed as for ours, by the same
  skopeo command from podman's storage.

So both sides hold the same files; the difference is how they get there (pip's installed layout and its metadata,
`__pycache__` written at install time, the extra layers of a Dockerfile). Everything it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Dict, List, Tuple

from dockerfile_build import BASE_DOCKERFILE, BUILD_FLAGS, CA_BUNDLE, DOCKERIGNORE, PODMAN, log, run, third_party_pins
from repo_copy import copy_repo

DOCKERFILE = """FROM {base} AS build
RUN --mount=type=bind,source=wheels,target=/wheels ["/usr/bin/python3.11", "/wheels/{pip_wheel}/pip", "install", \
"--no-index", "--find-links", "/wheels", "--no-cache-dir", "--disable-pip-version-check", "--root-user-action=ignore", \
"--target", "/opt/omi/site-packages", "-r", "/wheels/requirements.txt"]

FROM {base}
COPY --from=build /opt/omi/site-packages /opt/omi/site-packages
COPY app /opt/omi/app
COPY models /models
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/bin/python3.11", "-m", "omi_runtime"]
"""


def examples(root: Path) -> List[Tuple[str, str]]:
    """(spec path, target name) of every omi_model under examples/."""
    _, proc = run(["./pants", "--no-pantsd", "list", "--filter-target-type=omi_model", "examples::"], cwd=root)
    return [(address.split(":")[0], address.split(":")[1]) for address in proc.stdout.split()]


def record(root: Path, spec: str, name: str) -> Dict:
    return json.loads((root / "dist" / spec.replace("/", ".") / f"{name}.omi.json").read_text())


def compressed_size(source: str, tmp: Path) -> int:
    """Sum of the layer blobs after a gzip -6 copy by skopeo (config and manifest left out: a few KB)."""
    dest = tmp / f"gz-{uuid.uuid4().hex[:8]}"
    run(["skopeo", "copy", "--quiet", "--dest-compress-format", "gzip", "--dest-compress-level", "6", source,
         f"oci:{dest}:x"])
    index = json.loads((dest / "index.json").read_text())
    manifest = json.loads((dest / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())
    size = sum(layer["size"] for layer in manifest["layers"])
    shutil.rmtree(dest)
    return size


def theirs_size(root: Path, spec: str, name: str, tmp: Path, run_id: str) -> Tuple[int, int]:
    rec = record(root, spec, name)
    layout = root / "dist" / spec.replace("/", ".") / f"{name}.oci"
    blob = lambda digest: layout / "blobs/sha256" / digest.split(":", 1)[1]  # noqa: E731
    ctx = tmp / f"ctx-{name}"
    (ctx / "wheels").mkdir(parents=True)
    pins = sorted(third_party_pins(blob, rec))
    (ctx / "wheels/requirements.txt").write_text("".join(p + "\n" for p in pins))
    log(f"{name}: downloading {len(pins)} pinned wheels on the host")
    run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--cert", CA_BUNDLE,
         "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi",
         "abi3", "--abi", "none", *[a for p in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64",
                                               "manylinux2014_x86_64", "any") for a in ("--platform", p)],
         "-d", str(ctx / "wheels"), "-r", str(ctx / "wheels/requirements.txt"), "pip"],
        env={**os.environ, "PIP_CONFIG_FILE": "/dev/null"})
    pip_wheel = sorted(p.name for p in (ctx / "wheels").glob("pip-*.whl"))[-1]
    layers = rec["layers"]
    base = f"localhost/omi-bench-sizes-base:{run_id}"
    shutil.copy(blob(layers[0]["digest"]), ctx / "debian-base.tar")
    shutil.copy(blob(layers[1]["digest"]), ctx / "stdlib-bytecode.tar")
    (ctx / "Base.Dockerfile").write_text(BASE_DOCKERFILE.format(run_id=run_id))
    run([*PODMAN, "build", *BUILD_FLAGS, "--network=none", "-t", base, "-f", str(ctx / "Base.Dockerfile"), str(ctx)])
    # Runtime code and models, exactly the files of our image's app and model layers.
    for layer in layers:
        if layer["created_by"].startswith(("omi: model file", "omi: model record", "omi: application code")):
            target = ctx / ("models" if "model" in layer["created_by"] else "app")
            target.mkdir(exist_ok=True)
            prefix = "models/" if "model" in layer["created_by"] else "opt/omi/app/"
            run(["tar", "-xf", str(blob(layer["digest"])), "-C", str(target), "--strip-components",
                 str(prefix.count("/")), prefix.rstrip("/")])
    (ctx / ".dockerignore").write_text(DOCKERIGNORE)
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base, pip_wheel=pip_wheel))
    tag = f"localhost/omi-bench-sizes-{name}:{run_id}"
    # --no-cache: buildah keys a RUN step by its command, not by the bind-mounted wheels, so a cached step of
    # another format's build would be reused.
    run([*PODMAN, "build", *BUILD_FLAGS, "--network=none", "--no-cache", "-t", tag, "-f", str(ctx / "Dockerfile"),
         str(ctx)])
    _, proc = run([*PODMAN, "image", "inspect", tag])
    size = json.loads(proc.stdout)[0]["Size"]
    compressed = compressed_size(f"containers-storage:{tag}", tmp)
    shutil.rmtree(ctx)
    return size, compressed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    run_id = uuid.uuid4().hex[:12]
    tmp = Path(tempfile.mkdtemp(prefix="omi-bench-sizes-"))
    root = tmp / "repo"
    try:
        copy_repo(root)
        env = {k: v for k, v in os.environ.items() if k != "PANTS_BUILDROOT_OVERRIDE"}
        log("packaging the examples as shipped (compressed layers)")
        run(["./pants", "--no-dynamic-ui", "--no-pantsd", "package", "examples::"], cwd=root, env=env)
        shipped = {name: sum(layer["size"] for layer in record(root, spec, name)["layers"])
                   for spec, name in examples(root)}
        log("packaging the examples with uncompressed layers")
        run(["./pants", "--no-dynamic-ui", "--no-pantsd", "--omi-layer-compression=none",
             "--omi-model-compression=none", "package", "examples::"], cwd=root, env=env)
        rows = []
        for spec, name in examples(root):
            rec = record(root, spec, name)
            ours = sum(layer["size"] for layer in rec["layers"])
            layout = root / "dist" / spec.replace("/", ".") / f"{name}.oci"
            ours_gz = compressed_size(f"oci:{layout}:{rec['tags'][0]}", tmp)
            theirs, theirs_gz = theirs_size(root, spec, name, tmp, run_id)
            rows.append((name, ours, theirs, ours_gz, theirs_gz, shipped[name]))
            log(f"{name}: ours {ours / 1e6:.1f} MB ({ours_gz / 1e6:.1f} MB gzip), theirs {theirs / 1e6:.1f} MB "
                f"({theirs_gz / 1e6:.1f} MB gzip)")
        print("| example | ours uncompressed | Dockerfile uncompressed | ratio | ours gzip -6 | Dockerfile gzip -6 | ratio "
              "| ours as shipped | vs Dockerfile gzip -6 |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, ours, theirs, ours_gz, theirs_gz, ours_shipped in rows:
            print(f"| {name} | {ours / 1e6:.1f} MB | {theirs / 1e6:.1f} MB | {ours / theirs:.2f} | "
                  f"{ours_gz / 1e6:.1f} MB | {theirs_gz / 1e6:.1f} MB | {ours_gz / theirs_gz:.2f} | "
                  f"{ours_shipped / 1e6:.1f} MB | {ours_shipped / theirs_gz:.2f} |")
    finally:
        _, proc = run(["podman", "images", "-a", "-q", "--no-trunc", "--filter", f"label=omi.bench.run={run_id}"],
                      check=False)
        ids = sorted(set(proc.stdout.split()))
        if ids:
            run(["podman", "rmi", "-f", *ids], check=False)
        run(["podman", "rmi", "-f", f"localhost/omi-bench-sizes-base:{run_id}"], check=False)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
