"""Sandbox entry point: build one normalised layer blob from files in the sandbox.

    python -m omi_plugin.oci.build_layer SPEC.json OUT_DIR

SPEC lists what goes in, each item mapping sandbox files to paths in the image:
  {"created_by": "...",
   "files": [{"src": "a/model.bin", "dest": "models/m/model.bin"}],
   "trees": [{"src": "pex", "dest": "opt/omi/app", "exclude": [".deps", "PEX-INFO"]}],
   "zips":  [{"src": "pex/.deps", "dest": "opt/omi/site-packages", "skip": [".layout.json", ".prefix/"]}],
   "uid": 0, "gid": 0}
and OUT_DIR receives `blobs/sha256/<hex>` plus `layer.json` (the layer's descriptor, diff_id and history note).
Modes come from the executable bit only, as Pants digests keep nothing else.
"""

from __future__ import annotations

import os
import sys
import zipfile
from typing import Any, BinaryIO, Callable, Dict, Iterator, List, Mapping

from omi_plugin.oci.image import Layer
from omi_plugin.oci.layer_output import run_spec_tool, write_layer_output
from omi_plugin.oci.tar import Entry


def _file_mode(path: str) -> int:
    return 0o755 if os.stat(path).st_mode & 0o111 else 0o644


def _join(dest: str, rel: str) -> str:
    return f"{dest.rstrip('/')}/{rel}" if dest else rel


def _excluded(rel: str, exclude: List[str]) -> bool:
    return any(rel == e or rel.startswith(e + "/") for e in exclude)


def _tree_entries(src: str, dest: str, exclude: List[str], uid: int, gid: int) -> Iterator[Entry]:
    """Files under `src`; `exclude` holds paths relative to `src` (a directory excludes all below it)."""
    for root, dirs, files in os.walk(src):
        rel_root = os.path.relpath(root, src).replace(os.sep, "/")
        prefix = "" if rel_root == "." else rel_root + "/"
        dirs[:] = [d for d in dirs if not _excluded(prefix + d, exclude)]
        for name in dirs + files:
            rel = prefix + name
            if _excluded(rel, exclude):
                continue
            full = os.path.join(root, name)
            path = _join(dest, rel)
            if os.path.islink(full):
                yield Entry.symlink(path, os.readlink(full))
            elif os.path.isdir(full):
                yield Entry.directory(path, uid=uid, gid=gid)
            else:
                yield Entry.file(path, full, mode=_file_mode(full), uid=uid, gid=gid)


class _OpenZips:
    """Archives stay open while the layer is written: reopening a wheel for each member re-reads its whole
    central directory, which is quadratic for packages with thousands of files."""

    def __init__(self) -> None:
        self._open: Dict[str, zipfile.ZipFile] = {}

    def opener(self, archive_path: str, member: str) -> Callable[[], BinaryIO]:
        def open_member() -> BinaryIO:
            archive = self._open.get(archive_path)
            if archive is None:
                archive = self._open[archive_path] = zipfile.ZipFile(archive_path)
            return archive.open(member)  # type: ignore[return-value]

        return open_member

    def close(self) -> None:
        for archive in self._open.values():
            archive.close()
        self._open.clear()


def _zip_entries(src: str, dest: str, skip: List[str], uid: int, gid: int, zips: _OpenZips) -> Iterator[Entry]:
    """Unpack every zip under `src` (e.g. a packed PEX's installed wheels) into `dest`."""
    for name in sorted(os.listdir(src)):
        archive_path = os.path.join(src, name)
        with zipfile.ZipFile(archive_path) as archive:
            infos = archive.infolist()
        for info in infos:
            if any(info.filename == s or info.filename.startswith(s) for s in skip):
                continue
            path = _join(dest, info.filename)
            if info.is_dir():
                yield Entry.directory(path, uid=uid, gid=gid)
                continue
            executable = (info.external_attr >> 16) & 0o111
            yield Entry.file(path, zips.opener(archive_path, info.filename), size=info.file_size,
                             mode=0o755 if executable else 0o644, uid=uid, gid=gid)


def entries_from_spec(spec: Mapping[str, Any], zips: _OpenZips) -> Iterator[Entry]:
    uid, gid = int(spec.get("uid", 0)), int(spec.get("gid", 0))
    for item in spec.get("files", []):
        yield Entry.file(item["dest"], item["src"], mode=_file_mode(item["src"]), uid=uid, gid=gid)
    for item in spec.get("dirs", []):
        yield Entry.directory(item["dest"], mode=int(item.get("mode", 0o755)), uid=uid, gid=gid)
    for item in spec.get("trees", []):
        yield from _tree_entries(item["src"], item["dest"], list(item.get("exclude", [])), uid, gid)
    for item in spec.get("zips", []):
        yield from _zip_entries(item["src"], item["dest"], list(item.get("skip", [])), uid, gid, zips)


def build(spec: Mapping[str, Any], out_dir: str) -> Layer:
    zips = _OpenZips()
    try:
        return write_layer_output(entries_from_spec(spec, zips), out_dir, str(spec.get("created_by", "")))
    finally:
        zips.close()


def main(argv: List[str]) -> int:
    return run_spec_tool(argv, __doc__ or "", build)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
