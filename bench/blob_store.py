"""The blob store's model layer writer on a large file, against `cp` + sha256 and against olot, in the same run.

    python3 bench/blob_store.py --size 1G [--olot /path/to/venv]      # --olot: a venv with PyPI modelcar-maker

Writes a random model file, then times: the baseline (`cp` of the file plus one Python sha256 of it); the store
writing the file's layer (one read of the file, one write of the tar, the file and the tar hashed on the way); a
second build (the file hashed again, not rewritten, when it was recorded within 2 s of its last change) and a third
(the stat cache: no read, no write); and, given a venv with `olot` and `modelcar-base-image`, olot adding the same
file as a layer to a fresh OCI layout. Prints each time and its ratio to the baseline and to olot, and the store's
disk growth. This is the writer alone, outside Pants (`large_model.py` measures `pants package` over it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from large_model import parse_size, write_random  # noqa: E402

from omi_plugin.blob_store import file_layer  # noqa: E402
from omi_plugin.blob_store.store import BlobStore  # noqa: E402
from omi_plugin.oci import compression  # noqa: E402
from omi_plugin.oci.hashing import file_sha256  # noqa: E402


def disk_use(path: Path) -> int:
    return sum(os.lstat(os.path.join(r, f)).st_blocks * 512 for r, _, fs in os.walk(path) for f in fs)


def timed(action) -> float:  # type: ignore[no-untyped-def]
    os.sync()
    start = time.perf_counter()
    action()
    os.sync()  # everyone's writes reach the disk inside their own time
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1G")
    parser.add_argument("--olot", help="a venv with modelcar-maker (olot) and modelcar-base-image")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="omi-bench-store-", dir="/var/tmp"))
    try:
        model = work / "weights.bin"
        write_random(model, parse_size(args.size))
        baseline = timed(lambda: (shutil.copyfile(model, work / "copy.bin"), file_sha256(str(work / "copy.bin"))))
        os.unlink(work / "copy.bin")

        store = BlobStore(str(work / "store"))
        spec = file_layer.FileLayerSpec(str(model), "models/big/weights.bin", "omi: model file weights.bin",
                                        compression.Setting("none"))  # weights: `auto` leaves them so
        first = timed(lambda: file_layer.build(store, spec))
        growth = disk_use(work / "store")
        time.sleep(2.5)  # past the racy window: as a rebuild some seconds later sees it
        racy = timed(lambda: file_layer.build(store, spec))  # recorded right after the write: hashed once more
        unchanged = timed(lambda: file_layer.build(store, spec))
        regrowth = disk_use(work / "store") - growth

        olot = None
        if args.olot:
            layout = work / "olot-layout"
            python = os.path.join(args.olot, "bin", "python")
            subprocess.run([python, "-c", "from modelcar_base_image.embedded_oci_layout import embedded_oci_layout; "
                            f"embedded_oci_layout({str(layout)!r})"], check=True)
            olot = timed(lambda: subprocess.run([os.path.join(args.olot, "bin", "olot"), str(layout), str(model)],
                                                check=True, stdout=subprocess.DEVNULL))
        size = model.stat().st_size
        print(f"model file {size / 1e9:.2f} GB; baseline cp + sha256 {baseline:.2f} s"
              + (f"; olot {olot:.2f} s ({olot / baseline:.2f}x baseline)" if olot else ""))
        for name, seconds in (("store, first write", first), ("store, second build", racy),
                              ("store, unchanged", unchanged)):
            vs_olot = f", {seconds / olot:.2f}x olot" if olot else ""
            print(f"  {name}: {seconds:.2f} s ({seconds / baseline:.2f}x baseline{vs_olot})")
        print(f"  store disk growth: first write {growth / size:.3f}x the model; unchanged rebuilds {regrowth} bytes")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
