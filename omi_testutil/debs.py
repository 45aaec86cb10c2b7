"""Synthetic `.deb` files and `Packages` indexes, built with the standard library, for the tests.

Real packages would make the tests slow and dependent on the mirror; these are byte-for-byte valid `.deb`s
(`ar` + `tar.xz`, or `tar.gz`) small enough to build in microseconds.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import tarfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from omi_plugin.base_images.lock import Lock, LockedPackage, Source, dump_lock


@dataclass(frozen=True)
class Member:
    """A member of a synthetic data archive: `kind` is file, dir, symlink or hardlink."""

    path: str
    kind: str = "file"
    data: bytes = b""
    mode: Optional[int] = None  # default 0755 for directories, 0644 otherwise
    linkname: str = ""


def _tar(members: Sequence[Member], mtime: int = 1700000000) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.path)
            mode = member.mode if member.mode is not None else (0o755 if member.kind == "dir" else 0o644)
            info.mode, info.mtime, info.uname, info.gname = mode, mtime, "root", "root"
            if member.kind == "file":
                info.size = len(member.data)
                tar.addfile(info, io.BytesIO(member.data))
                continue
            if member.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif member.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, member.linkname
            elif member.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, member.linkname
            else:
                info.type = tarfile.FIFOTYPE
            tar.addfile(info)
    return buffer.getvalue()


def _ar(members: Sequence[tuple]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode() + b"`\n"
        out.append(header + data + (b"\n" if len(data) % 2 else b""))
    return b"".join(out)


def control_text(name: str, version: str, extra: Optional[Dict[str, str]] = None) -> str:
    fields = {"Package": name, "Version": version, "Architecture": "amd64", "Maintainer": "Test <t@example.org>",
              "Description": "synthetic test package"}
    fields.update(extra or {})
    return "".join(f"{k}: {v}\n" for k, v in fields.items())


def make_deb(name: str, version: str, members: Sequence[Member], compression: str = "xz",
             extra_control: Optional[Dict[str, str]] = None, md5sums: bytes = b"") -> bytes:
    """A `.deb` whose data archive holds `members` (paths written with a `./` prefix, as dpkg-deb does)."""
    control_members = [Member("./control", data=control_text(name, version, extra_control).encode())]
    if md5sums:
        control_members.append(Member("./md5sums", data=md5sums))
    data_members = [Member("./" + m.path if not m.path.startswith("./") else m.path, m.kind, m.data, m.mode,
                           ("./" + m.linkname) if m.kind == "hardlink" else m.linkname) for m in members]
    compressors: Dict[str, Callable[[bytes], bytes]] = {
        "xz": lzma.compress, "gz": lambda b: gzip.compress(b, mtime=0), "zst": lambda b: b}
    compress = compressors[compression]
    return _ar([
        ("debian-binary", b"2.0\n"),
        (f"control.tar.{compression}", compress(_tar(control_members))),
        (f"data.tar.{compression}", compress(_tar(data_members))),
    ])


def write_debs(directory: str, debs: Dict[str, bytes], versions: Dict[str, str], suite: str = "bookworm",
               mirror: str = "http://deb.example.org/debian") -> Lock:
    """Write `{name: deb bytes}` into `directory` and return a lock pinning them."""
    os.makedirs(directory, exist_ok=True)
    packages: List[LockedPackage] = []
    for name in sorted(debs):
        filename = f"{name}_{versions[name]}_amd64.deb"
        with open(os.path.join(directory, filename), "wb") as f:
            f.write(debs[name])
        packages.append(LockedPackage(name, versions[name], "amd64", f"{mirror}/pool/main/{name[0]}/{name}/{filename}",
                                      hashlib.sha256(debs[name]).hexdigest(), len(debs[name])))
    return Lock(suite, "amd64", (Source(mirror, suite),), tuple(sorted(debs)), (), tuple(packages))


def write_lock(path: str, lock: Lock) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump_lock(lock))
    return path


def packages_index(paragraphs: Sequence[Dict[str, str]]) -> str:
    """A `Packages` file: each paragraph gets Filename/Size/SHA256/Architecture defaults."""
    out = []
    for fields in paragraphs:
        full = {"Architecture": "amd64", "Filename": f"pool/main/{fields['Package']}.deb", "Size": "100",
                "SHA256": "0" * 64}
        full.update(fields)
        out.append("".join(f"{k}: {v}\n" for k, v in full.items()))
    return "\n".join(out)
