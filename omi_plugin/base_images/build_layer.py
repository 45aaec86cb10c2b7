"""Build the base-image layer from a lock and its downloaded `.deb`s: a sandboxed, deterministic step.

    python -m omi_plugin.base_images.build_layer --lock LOCK.json --debs DIR --out OUTDIR

`DIR` holds each locked package under the basename of its `url`. Every one is checked against the lock's size and
sha256 before it is read. The result is one uncompressed tar layer, streamed to `OUTDIR/blobs/sha256/<hex>` while
hashing, and `OUTDIR/layer.json` describing it (see omi_plugin/oci/layer_output.py).

The layer bytes depend only on the lock and the `.deb` contents: no clocks, umask, user, path or Python version
reach them (the tar writer fixes mtimes, owners and ordering; package files keep only their mode bits).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from omi_plugin.base_images.deb import Deb, DebError, read_deb
from omi_plugin.base_images.layout import LayoutError, index_entries, merge_packages
from omi_plugin.base_images.lock import Lock, LockError, load_lock, locked_packages
from omi_plugin.base_images.rootfs import apply, rootfs_entries
from omi_plugin.oci.hashing import file_sha256
from omi_plugin.oci.image import Layer
from omi_plugin.oci.layer_output import write_layer_output
from omi_plugin.oci.tar import LayerError


class BuildError(RuntimeError):
    """The inputs do not match the lock or cannot be laid out; the message says which file and why."""


def verify_debs(lock: Lock, lock_path: str, debs_dir: str) -> Dict[str, str]:
    """{package name: path} after checking every locked `.deb` is present with the pinned size and sha256."""
    paths = {}
    for package in locked_packages(lock):
        path = os.path.join(debs_dir, package.filename)
        if not os.path.isfile(path):
            raise BuildError(f"{path}: missing; it is pinned by {lock_path} ({package.name} {package.version})")
        digest, size = file_sha256(path)
        hex_digest = digest.split(":", 1)[1]
        if size != package.size or hex_digest != package.sha256:
            raise BuildError(f"{path}: sha256 {hex_digest} ({size} bytes) does not match {lock_path}, which "
                             f"pins {package.name} {package.version} at sha256 {package.sha256} ({package.size} bytes)")
        paths[package.name] = path
    return paths


def read_packages(lock: Lock, paths: Dict[str, str], spool_dir: str) -> List[Deb]:
    debs = []
    for package in locked_packages(lock):
        deb = read_deb(paths[package.name], spool_dir)
        if deb.name != package.name or deb.version != package.version:
            raise BuildError(f"{paths[package.name]}: contains {deb.name} {deb.version}, but the lock says "
                             f"{package.name} {package.version}")
        debs.append(deb)
    return debs


def build_layer(lock_path: str, debs_dir: str, out_dir: str) -> Layer:
    """Verify, lay out and write the layer (`OUTDIR/blobs/sha256/<hex>` and `OUTDIR/layer.json`)."""
    lock = load_lock(lock_path)
    paths = verify_debs(lock, lock_path, debs_dir)
    with tempfile.TemporaryDirectory(prefix="omi-debs-") as spool:
        debs = read_packages(lock, paths, spool)
        files = index_entries(merge_packages(debs))
        entries = apply(files, rootfs_entries(files, debs, lock.suite))
        created_by = f"omi_debian_base {os.path.basename(lock_path)}: {len(debs)} packages"
        return write_layer_output(entries, out_dir, created_by)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omi_plugin.base_images.build_layer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lock", required=True, help="the lock file")
    parser.add_argument("--debs", required=True, help="directory holding the locked .deb files")
    parser.add_argument("--out", required=True, help="output directory (blobs/sha256/<hex> and layer.json)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        record = build_layer(args.lock, args.debs, args.out)
    except (LockError, BuildError, DebError, LayoutError, LayerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{record.descriptor.digest} {record.descriptor.size} bytes ({record.created_by}) "
          f"in {time.monotonic() - start:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
