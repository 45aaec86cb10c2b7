"""The blob store behind `pants package`: model layers hard-linked from it into dist/, a corrupted store blob
detected and rebuilt, two clones packaging at once into one store, a model file changed in place with its mtime
restored still picked up by a warm pantsd, and the omlmd flavour's raw model file taken from the store and pushed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Dict

from conftest import Clone

from omi_testutil.registry import registry  # noqa: F401 - pytest fixture

DIGITS = ("examples/digits", "digits")
TARGET = "examples/digits:digits"


def _model_hex(record: Dict) -> str:
    layer = next(lay for lay in record["layers"] if lay["created_by"] == "omi: model file model.joblib")
    return layer["digest"].split(":")[1]


def _package(clone: Clone, store: Path) -> str:
    return clone.pants(f"--omi-blob-store={store}", "package", TARGET).output


def test_the_model_layer_is_one_file_in_the_store_and_in_dist(clone_factory, tmp_path: Path) -> None:
    clone, store = clone_factory("clone-store"), tmp_path / "store"
    _package(clone, store)
    hex_ = _model_hex(clone.record(*DIGITS))
    in_store, in_dist = store / "blobs/sha256" / hex_, clone.root / "dist/omi-blobs/sha256" / hex_
    assert in_store.stat().st_ino == in_dist.stat().st_ino  # a hard link: no second copy of the bytes
    assert hashlib.sha256(in_dist.read_bytes()).hexdigest() == hex_
    for layout in (clone.layout(*DIGITS), clone.root / "dist/examples.digits/digits.modelpack.oci"):
        assert (layout / "blobs/sha256" / hex_).resolve() == in_dist


def test_a_corrupted_store_blob_is_reported_rebuilt_and_never_shipped(clone_factory, tmp_path: Path) -> None:
    clone, store = clone_factory("clone-corrupt-store"), tmp_path / "store"
    _package(clone, store)
    record = clone.record(*DIGITS)
    hex_ = _model_hex(record)
    blob = store / "blobs/sha256" / hex_
    blob.chmod(0o644)
    with open(blob, "r+b") as f:
        f.seek(600)
        f.write(b"\xff\xff\xff")
    output = _package(clone, store)
    assert "no longer matches its name" in output and "removed and rebuilt" in output
    assert clone.record(*DIGITS)["image_digest"] == record["image_digest"]
    for path in (blob, clone.root / "dist/omi-blobs/sha256" / hex_):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == hex_


def test_two_clones_package_at_once_into_one_store(clone_factory, tmp_path: Path) -> None:
    store = tmp_path / "shared-store"
    clones = [clone_factory("clone-concurrent-a"), clone_factory("clone-concurrent-b")]
    for clone in clones:  # a model neither has built before: both write the same new blob at the same time
        model = clone.root / "examples/digits/model.joblib"
        model.write_bytes(model.read_bytes() + b"\0retrained together")
    env = {k: v for k, v in os.environ.items() if k != "PANTS_BUILDROOT_OVERRIDE"}
    procs = [subprocess.Popen(["./pants", "--no-dynamic-ui", "--no-pantsd", f"--omi-blob-store={store}", "package",
                               TARGET], cwd=c.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in clones]
    outputs = [p.communicate(timeout=1500)[0] for p in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-4000:]
    a, b = (c.record(*DIGITS) for c in clones)
    assert a["image_digest"] == b["image_digest"] and a["model_digest"] == b["model_digest"]
    hex_ = _model_hex(a)
    inodes = {(c.root / "dist/omi-blobs/sha256" / hex_).stat().st_ino for c in clones}
    assert inodes == {(store / "blobs/sha256" / hex_).stat().st_ino}
    assert not list((store / "tmp").iterdir())


def test_a_model_changed_in_place_with_its_mtime_restored_is_picked_up(clone_factory, tmp_path: Path) -> None:
    """The stat cache keys on ctime too, which no one but the kernel sets: restoring the mtime hides nothing."""
    clone, store = clone_factory("clone-mtime-restored", pantsd=True), tmp_path / "store"
    _package(clone, store)
    before = _model_hex(clone.record(*DIGITS))
    model = clone.root / "examples/digits/model.joblib"
    st = model.stat()
    time.sleep(2.5)  # past the racy window, so that the first build's record is trusted
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, same mtime below: only the ctime tells
    model.write_bytes(bytes(data))
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert model.stat().st_mtime_ns == st.st_mtime_ns and model.stat().st_size == st.st_size
    _package(clone, store)
    assert _model_hex(clone.record(*DIGITS)) != before
    assert hashlib.sha256(bytes(data)).hexdigest() in (clone.root / "dist/examples.digits/digits.spdx.json").read_text()


def test_the_omlmd_flavour_takes_the_model_file_from_the_store_and_pushes_it(clone_factory, registry,  # noqa: F811
                                                                             tmp_path: Path) -> None:
    clone, store = clone_factory("clone-omlmd-store"), tmp_path / "store"
    env = {"PANTS_OMI_OMLMD_ARTIFACT": "true",
           "PANTS_OMI_REGISTRIES": repr({"local": {"address": registry.host, "default": True}})}
    clone.pants(f"--omi-blob-store={store}", "package", TARGET, env=env)
    model_bytes = (clone.root / "examples/digits/model.joblib").read_bytes()
    hex_ = hashlib.sha256(model_bytes).hexdigest()
    record = clone.record(*DIGITS)
    in_layout = clone.root / "dist" / record["omlmd_layout"] / "blobs/sha256" / hex_
    assert in_layout.is_symlink() and not os.path.isabs(os.readlink(in_layout))
    assert in_layout.stat().st_ino == (store / "blobs/sha256" / hex_).stat().st_ino  # linked, not copied, into dist/
    assert in_layout.read_bytes() == model_bytes

    clone.pants(f"--omi-blob-store={store}", "publish", TARGET, env=env)
    with urllib.request.urlopen(f"http://{registry.host}/v2/examples/digits/blobs/sha256:{hex_}") as response:
        assert response.read() == model_bytes
