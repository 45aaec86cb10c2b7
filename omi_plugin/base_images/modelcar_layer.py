"""The KServe ModelCar layer: a static busybox for the sidecar's shell, and the model files at the top of /models.

    python -m omi_plugin.base_images.modelcar_layer --lock LOCK.json --debs DIR --model NAME --entry FILE ... \
        --out OUTDIR

KServe serves an `oci://` model by running its image as a sidecar with
`sh -c "ln -sf /proc/$$/root/models /mnt/models && sleep infinity"`, and its model servers read the model files
from `/mnt/models/`. An omi image has no shell and keeps its files under `/models/<name>/`, so this layer adds
`/usr/bin/busybox` from the locked `busybox-static` package with `sh`, `ln`, `mkdir`, `sleep`, `cat` and `ls` linked
to it (replacing those of a base that has its own), and for the first path component of each of model.yaml's
`files` entries a relative link `/models/<component> -> <name>/<component>` (relative, so it resolves through
`/proc/<pid>/root/models` too). The image itself starts the server as its `Cmd` (see `omi_image.runtime_config`), so
that KServe's `args` replace it. The layer depends only on the lock, the `.deb` and the names.
"""

from __future__ import annotations

import argparse
import posixpath
import sys
import tempfile
from typing import List, Optional, Sequence

from omi_plugin.base_images.build_layer import BuildError, read_packages, verify_debs
from omi_plugin.base_images.deb import DebError
from omi_plugin.base_images.lock import LockError, load_lock
from omi_plugin.oci.image import Layer
from omi_plugin.oci.layer_output import write_layer_output
from omi_plugin.oci.tar import FILE, Entry, LayerError

BUSYBOX = "bin/busybox"  # where busybox-static installs it
APPLETS = ("sh", "ln", "mkdir", "sleep", "cat", "ls")  # KServe's LLMInferenceService also runs `mkdir -p`
INSTALL_DIR = "usr/bin"  # on PATH in every base, and not behind the merged-/usr `bin` link


def model_links(model: str, entries: Sequence[str]) -> List[Entry]:
    """`models/<top> -> <model>/<top>` for the first path component of each entry, once each."""
    tops: List[str] = []
    for entry in entries:
        top = posixpath.normpath(entry).split("/", 1)[0]
        if top in (model, "..", ".", ""):
            raise BuildError(f"files entry {entry!r}: its first path component {top!r} cannot be linked as "
                             f"/models/{top} (rename it: it is the model's own directory or not a path in it)")
        if top not in tops:
            tops.append(top)
    return [Entry.symlink(f"models/{top}", f"{model}/{top}") for top in sorted(tops)]


def build_layer(lock_path: str, debs_dir: str, model: str, entries: Sequence[str], out_dir: str) -> Layer:
    lock = load_lock(lock_path)
    paths = verify_debs(lock, lock_path, debs_dir)
    with tempfile.TemporaryDirectory(prefix="omi-debs-") as spool:
        debs = read_packages(lock, paths, spool)
        found = [(deb, m) for deb in debs for m in deb.members if m.path == BUSYBOX and m.kind == FILE]
        if not found:
            raise BuildError(f"{lock_path}: no locked package installs /{BUSYBOX} (lock busybox-static)")
        deb, member = found[0]
        layer_entries = [Entry.file(f"{INSTALL_DIR}/busybox", deb.read_member(member), mode=0o755),
                         *(Entry.symlink(f"{INSTALL_DIR}/{applet}", "busybox") for applet in APPLETS),
                         *model_links(model, entries)]
        created_by = (f"omi: KServe ModelCar ({deb.name} {deb.version}: {', '.join(APPLETS)}; "
                      f"/models/<file> links to /models/{model}/)")
        return write_layer_output(layer_entries, out_dir, created_by)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omi_plugin.base_images.modelcar_layer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lock", required=True, help="the lock file pinning busybox-static")
    parser.add_argument("--debs", required=True, help="directory holding the locked .deb files")
    parser.add_argument("--model", required=True, help="the model's name (its directory under /models)")
    parser.add_argument("--entry", action="append", default=[], help="a `files` entry of model.yaml (repeatable)")
    parser.add_argument("--out", required=True, help="output directory (blobs/sha256/<hex> and layer.json)")
    args = parser.parse_args(argv)
    try:
        layer = build_layer(args.lock, args.debs, args.model, args.entry, args.out)
    except (LockError, BuildError, DebError, LayerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{layer.descriptor.digest} {layer.descriptor.size} bytes ({layer.created_by})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
