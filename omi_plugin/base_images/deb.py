"""Read a Debian binary package (`.deb`) without dpkg: its control fields and the members of its data archive.

A `.deb` is an `ar` archive of `debian-binary` ("2.0\\n"), `control.tar.{xz,gz,zst}` and `data.tar.{xz,gz,zst}`.
The control archive is small and read into memory. The data archive is decompressed once into a spool file so its
members can be streamed into the layer later straight from their offsets (no extraction to disk, flat memory).
Only the `ar` and `tar` formats are parsed here; mapping members onto the image filesystem is `layout.py`'s job.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Dict, List, Optional, Tuple

from omi_plugin.base_images.debian_index import parse_deb822
from omi_plugin.oci.tar import DIR, FILE, HARDLINK, SYMLINK

AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60


class DebError(ValueError):
    """A `.deb` is malformed or uses something we cannot read; the message names the file."""


@dataclass(frozen=True)
class DebMember:
    """One member of the data archive. `path` is normalised (`usr/bin/x`); `offset` is into the spool file."""

    path: str
    kind: str
    mode: int
    size: int = 0
    linkname: str = ""
    offset: int = 0


@dataclass
class Deb:
    """A package read from disk: its control paragraph, raw control files and data members."""

    path: str
    control: Dict[str, str]
    control_text: str
    md5sums: Optional[bytes]
    members: List[DebMember]
    data_spool: str = field(repr=False)

    @property
    def name(self) -> str:
        return self.control["Package"]

    @property
    def version(self) -> str:
        return self.control["Version"]

    def open_member(self, member: DebMember) -> BinaryIO:
        """A stream positioned at the member's bytes (the caller reads exactly `member.size` bytes)."""
        stream = open(self.data_spool, "rb")
        stream.seek(member.offset)
        return stream

    def read_member(self, member: DebMember) -> bytes:
        with self.open_member(member) as stream:
            return stream.read(member.size)


class _Slice(io.RawIOBase):
    """A read-only window onto part of a file, so a decompressor can read one `ar` member in place."""

    def __init__(self, stream: BinaryIO, start: int, size: int) -> None:
        self._stream, self._start, self._size, self._pos = stream, start, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        count = min(len(buffer), self._size - self._pos)
        if count <= 0:
            return 0
        self._stream.seek(self._start + self._pos)
        data = self._stream.read(count)
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)


def ar_members(stream: BinaryIO, label: str) -> List[Tuple[str, int, int]]:
    """[(name, offset, size)] of the members of an `ar` archive."""
    if stream.read(len(AR_MAGIC)) != AR_MAGIC:
        raise DebError(f"{label}: not a .deb (no ar archive header)")
    members: List[Tuple[str, int, int]] = []
    while True:
        header = stream.read(_AR_HEADER)
        if not header:
            return members
        if len(header) < _AR_HEADER or header[58:60] != b"`\n":
            raise DebError(f"{label}: truncated or corrupt ar member header")
        name = header[0:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(f"{label}: bad size in ar member {name!r}") from None
        offset = stream.tell()
        members.append((name, offset, size))
        stream.seek(offset + size + (size % 2))  # members are padded to an even offset


def _decompressor(name: str, label: str) -> Callable[[BinaryIO], BinaryIO]:
    if name.endswith(".tar.xz"):
        return lambda raw: lzma.LZMAFile(raw)  # type: ignore[return-value]
    if name.endswith(".tar.gz"):
        return lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if name.endswith(".tar.zst"):
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            raise DebError(f"{label}: {name} is zstd-compressed and the `zstandard` Python module is not "
                           f"installed; install it where the base layer is built") from None
        return lambda raw: zstandard.ZstdDecompressor().stream_reader(raw)  # type: ignore[no-any-return]
    if name.endswith(".tar"):
        return lambda raw: raw
    raise DebError(f"{label}: unsupported member {name}")


def normalize_member_name(name: str) -> str:
    """`./usr/bin/x` -> `usr/bin/x`; the archive root (`./`) becomes ``."""
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def _members(tar: tarfile.TarFile, label: str) -> List[DebMember]:
    members = []
    for info in tar:
        path = normalize_member_name(info.name)
        if not path or path == ".":
            continue
        if ".." in path.split("/"):
            raise DebError(f"{label}: member {info.name!r} escapes the root")
        if info.isreg():
            members.append(DebMember(path, FILE, info.mode, info.size, offset=info.offset_data))
        elif info.isdir():
            members.append(DebMember(path, DIR, info.mode))
        elif info.issym():
            members.append(DebMember(path, SYMLINK, 0o777, linkname=info.linkname))
        elif info.islnk():
            members.append(DebMember(path, HARDLINK, info.mode, linkname=normalize_member_name(info.linkname)))
        else:
            raise DebError(f"{label}: member {path} is a device, fifo or other special file, which a base layer "
                           f"cannot hold")
    return members


def read_deb(deb_path: str, spool_dir: str) -> Deb:
    """Parse `deb_path`, decompressing its data archive into a new file under `spool_dir`."""
    label = os.path.basename(deb_path)
    with open(deb_path, "rb") as stream:
        members = {name: (offset, size) for name, offset, size in ar_members(stream, label)}
        control_name = next((n for n in members if n.startswith("control.tar")), None)
        data_name = next((n for n in members if n.startswith("data.tar")), None)
        if "debian-binary" not in members or control_name is None or data_name is None:
            raise DebError(f"{label}: not a .deb (needs debian-binary, control.tar.* and data.tar.*; "
                           f"has {', '.join(sorted(members))})")
        offset, size = members["debian-binary"]
        stream.seek(offset)
        if not stream.read(size).startswith(b"2."):
            raise DebError(f"{label}: unsupported .deb format version")

        offset, size = members[control_name]
        raw = io.BufferedReader(_Slice(stream, offset, size))
        with _decompressor(control_name, label)(raw) as decompressed:
            control_tar = io.BytesIO(decompressed.read())
        control_files: Dict[str, bytes] = {}
        with tarfile.open(fileobj=control_tar, mode="r:") as tar:
            for info in tar:
                if info.isreg():
                    extracted = tar.extractfile(info)
                    assert extracted is not None
                    control_files[normalize_member_name(info.name)] = extracted.read()
        if "control" not in control_files:
            raise DebError(f"{label}: control archive has no control file")
        control_text = control_files["control"].decode("utf-8")
        paragraphs = list(parse_deb822(control_text))
        if len(paragraphs) != 1 or "Package" not in paragraphs[0] or "Version" not in paragraphs[0]:
            raise DebError(f"{label}: control file is not one paragraph with Package and Version")

        offset, size = members[data_name]
        os.makedirs(spool_dir, exist_ok=True)
        spool = os.path.join(spool_dir, f"{paragraphs[0]['Package']}.data.tar")
        raw = io.BufferedReader(_Slice(stream, offset, size))
        try:
            with _decompressor(data_name, label)(raw) as decompressed, open(spool, "wb") as out:
                shutil.copyfileobj(decompressed, out, 1 << 20)
        except Exception as e:  # each decompressor has its own error types (LZMAError, BadGzipFile, ZstdError)
            raise DebError(f"{label}: cannot decompress {data_name} ({e})") from None
    try:
        with tarfile.open(spool, mode="r:") as tar:
            data_members = _members(tar, label)
    except tarfile.TarError as e:
        raise DebError(f"{label}: corrupt {data_name} ({e})") from None
    return Deb(deb_path, paragraphs[0], control_text, control_files.get("md5sums"), data_members, spool)
