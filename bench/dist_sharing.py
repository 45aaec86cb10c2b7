"""Disk use of dist/ and time per model for many similar models, against one image, measured in the same run.

    python3 bench/dist_sharing.py --copies 20          # --keep leaves the temp dir

In a fresh copy of the repository, writes N copies of the digits example (same base, same dependencies, same model
file; each its own run id, so the images differ only in their record and config), then:

1. `pants package` of one copy (untimed: it builds the base and the shared layers, as a developer's machine has
   them), and measures the image as a registry stores it: the sum of its blob sizes (`size of one image`);
2. `pants package` of copy 1 alone again, after a change to its run id (the time of one model's image, warm);
3. `pants package` of all N copies (warm), and `du` of dist/ (real disk use: shared files counted once).

Prints dist/'s disk use as a ratio of one image, and the time per extra model:
(time of N - time of one) / (N - 1). pantsd is on, as on a developer's machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from repo_copy import copy_repo

BUILD = 'omi_model(name="m", model_files=["model.joblib"], repository="bench/copy-{i}")\n'


def pants(root: Path, *args: str) -> float:
    started = time.monotonic()
    subprocess.run(["./pants", "--no-dynamic-ui", *args], cwd=root, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def disk_use(path: Path) -> int:
    """Bytes of disk the tree really takes, each hard-linked or shared file once (`du -s --block-size=1`)."""
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def write_copies(root: Path, copies: int) -> None:
    source = root / "examples" / "digits"
    model_yaml = (source / "model.yaml").read_text()
    for i in range(copies):
        target = root / "bench_models" / "copies" / f"c{i:02d}"
        target.mkdir(parents=True)
        shutil.copy2(source / "model.joblib", target / "model.joblib")
        (target / "model.yaml").write_text(model_yaml.replace("run_id: digits-lr-20261123-d227f2f2",
                                                              f"run_id: copy-{i:02d}"))
        (target / "BUILD").write_text(BUILD.format(i=i))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="omi-dist-sharing-"))
    root = work / "repo"
    try:
        root.mkdir()
        copy_repo(root)
        write_copies(root, args.copies)
        pants(root, "package", "bench_models/copies/c00:m")
        record = json.loads((root / "dist" / "bench_models.copies.c00" / "m.omi.json").read_text())
        one_image = sum(layer["size"] for layer in record["layers"])
        model_yaml = root / "bench_models" / "copies" / "c00" / "model.yaml"
        model_yaml.write_text(model_yaml.read_text().replace("run_id: copy-00", "run_id: copy-00-again"))
        one = pants(root, "package", "bench_models/copies/c00:m")
        shutil.rmtree(root / "dist")
        model_yaml.write_text(model_yaml.read_text().replace("run_id: copy-00-again", "run_id: copy-00-third"))
        many = pants(root, "package", "bench_models/copies::")
        dist = disk_use(root / "dist")
        per_extra = (many - one) / max(args.copies - 1, 1)
        print(f"one image (its blobs): {one_image / 1e6:.1f} MB; dist/ after {args.copies} images: "
              f"{dist / 1e6:.1f} MB on disk = {dist / one_image:.2f}x one image")
        print(f"time: one model {one:.1f} s, {args.copies} models {many:.1f} s; per extra model {per_extra:.2f} s")
        return 0
    finally:
        subprocess.run(["pkill", "-f", f"pantsd \\[{root}\\]"], check=False)
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
