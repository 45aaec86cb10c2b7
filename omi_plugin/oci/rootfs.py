"""An image's root filesystem unpacked on the build machine, and its interpreter started from there: through the
image's own dynamic loader and libraries, so nothing of the build machine's Python or libc is used (bytecode
compiled by the image's interpreter, or its twin's; the smoke test of an image of another platform, under qemu).

Pants-free.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from typing import List, Mapping, Sequence, Union

from omi_plugin.oci import compression


class RootfsError(RuntimeError):
    """The unpacked layers do not hold what was asked of them."""


def resolve_in_root(root: str, path: str, depth: int = 0) -> str:
    """Follow symlinks inside an unpacked root filesystem, reading absolute targets relative to `root`."""
    if depth > 40:
        raise RootfsError(f"too many symlinks resolving {path}")
    parts = [p for p in path.split("/") if p]
    resolved = ""
    for i, part in enumerate(parts):
        candidate = posixpath.join(resolved, part) if resolved else part
        full = os.path.join(root, candidate)
        if os.path.islink(full):
            target = os.readlink(full)
            base = "" if target.startswith("/") else resolved
            rest = "/".join(parts[i + 1:])
            joined = posixpath.normpath(posixpath.join(base, target.lstrip("/"), rest))
            return resolve_in_root(root, joined, depth + 1)
        resolved = candidate
    return resolved


def unpack_layer(layer: Union[str, Mapping[str, str]], root: str, only_python: bool = False) -> None:
    """Unpack a layer given as its path (an uncompressed tar) or as {"path", "media_type"} (any compression)."""
    path, media_type = (layer, "") if isinstance(layer, str) else (layer["path"], layer["media_type"])
    with compression.open_uncompressed(path, media_type) as f, tarfile.open(fileobj=f, mode="r|") as archive:
        for member in archive:
            if only_python and not (member.isfile() and member.name.endswith(".py")):
                continue
            if member.isdev():
                continue
            archive.extract(member, root, set_attrs=False)


def interpreter_argv(root: str, loader: str, library_path: Sequence[str], python: str) -> List[str]:
    """argv that starts the image's `python` (a path inside the image) from `root` through the image's `loader`."""
    started = os.path.join(root, resolve_in_root(root, loader))
    interpreter = os.path.join(root, resolve_in_root(root, python))
    for executable in (started, interpreter):
        if not os.path.isfile(executable):
            raise RootfsError(f"the image has no {loader if executable == started else python}")
        os.chmod(executable, 0o755)  # unpacked without attributes: only these two need to run
    libraries = ":".join(os.path.join(root, resolve_in_root(root, p)) for p in library_path)
    return [started, "--library-path", libraries, interpreter]
