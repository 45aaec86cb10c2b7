"""Normalised, streaming tar layers: the only place that knows the tar format.

Every layer omi writes goes through `write_layer`, which makes the bytes a function of the entries alone:
entries sorted by path, parent directories added, fixed mtime, uid/gid and empty user/group names, modes reduced
to permission bits, and a hand-written ustar encoder (with PAX headers only for long names) so that the output does
not depend on which Python's `tarfile` runs it. File contents are streamed in chunks and hashed on the way out, so a
multi-gigabyte model file never sits in memory.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Dict, Iterable, Iterator, List, Optional, Union

from omi_plugin.oci.hashing import HashingWriter

BLOCK = 512
CHUNK = 1 << 20
DEFAULT_MTIME = 0

FILE = "file"
DIR = "dir"
SYMLINK = "symlink"
HARDLINK = "hardlink"
_TYPEFLAGS = {FILE: b"0", HARDLINK: b"1", SYMLINK: b"2", DIR: b"5"}

# A file's content: raw bytes, a path on disk, or a callable opening a binary stream.
Content = Union[bytes, str, Callable[[], BinaryIO], None]


class LayerError(ValueError):
    """An entry cannot be written as given (bad path, duplicate with different content, ...)."""


@dataclass(frozen=True)
class Entry:
    """One member of a layer. `path` is relative and POSIX (`usr/bin/python3`), without `./` or `/`."""

    path: str
    kind: str = FILE
    mode: int = 0o644
    size: int = 0
    content: Content = field(default=None, compare=False)
    linkname: str = ""
    uid: int = 0
    gid: int = 0

    @staticmethod
    def file(path: str, content: Content, *, size: Optional[int] = None, mode: int = 0o644,
             uid: int = 0, gid: int = 0) -> "Entry":
        if size is None:
            if isinstance(content, bytes):
                size = len(content)
            elif isinstance(content, str):
                size = os.stat(content).st_size
            else:
                raise LayerError(f"{path}: size is required for streamed content")
        return Entry(path, FILE, mode, size, content, uid=uid, gid=gid)

    @staticmethod
    def directory(path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> "Entry":
        return Entry(path, DIR, mode, uid=uid, gid=gid)

    @staticmethod
    def symlink(path: str, target: str) -> "Entry":
        return Entry(path, SYMLINK, 0o777, linkname=target)

    @staticmethod
    def hardlink(path: str, target: str) -> "Entry":
        return Entry(path, HARDLINK, 0o644, linkname=target)


@dataclass(frozen=True)
class LayerInfo:
    """What the writer learnt while streaming: the uncompressed tar's sha256 and size."""

    digest: str  # "sha256:<hex>"
    size: int


def normalize_path(path: str) -> str:
    """`./a//b/` -> `a/b`; refuses absolute escapes and `..` so a layer can never write outside its root."""
    clean = posixpath.normpath(path.replace(os.sep, "/")).lstrip("/")
    if clean in ("", "."):
        raise LayerError(f"{path!r}: empty path")
    if clean == ".." or clean.startswith("../"):
        raise LayerError(f"{path!r}: path escapes the layer root")
    return clean


def normalize_mode(entry_kind: str, mode: int) -> int:
    """Keep the permission bits that carry meaning; Pants digests keep only the exec bit for files."""
    if entry_kind == SYMLINK:
        return 0o777
    if entry_kind == DIR:
        return mode & 0o7777 or 0o755
    return mode & 0o7777


def _with_parents(entries: Iterable[Entry]) -> List[Entry]:
    by_path: Dict[str, Entry] = {}
    for raw in entries:
        entry = Entry(normalize_path(raw.path), raw.kind, normalize_mode(raw.kind, raw.mode), raw.size,
                      raw.content, raw.linkname, raw.uid, raw.gid)
        previous = by_path.get(entry.path)
        if previous is not None and previous != entry:
            if previous.kind == DIR and entry.kind == DIR:
                continue  # the first declaration of a directory wins
            raise LayerError(f"{entry.path}: declared twice with different metadata")
        by_path[entry.path] = entry
    for path in list(by_path):
        parent = posixpath.dirname(path)
        while parent and parent not in by_path:
            by_path[parent] = Entry.directory(parent)
            parent = posixpath.dirname(parent)
    return [by_path[p] for p in sorted(by_path, key=lambda p: p.split("/"))]


def _octal(value: int, width: int) -> bytes:
    text = b"%0*o" % (width - 1, value)
    if len(text) > width - 1:
        raise OverflowError
    return text + b"\0"


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body)
    while True:
        record = str(length).encode() + body
        if len(record) == length:
            return record
        length = len(record)


def _header(name: bytes, size: int, mode: int, typeflag: bytes, linkname: bytes, uid: int, gid: int,
            mtime: int) -> bytes:
    prefix = b""
    if len(name) > 100:
        # ustar can split a long name at a slash into prefix (155) + name (100).
        cut = name.rfind(b"/", 0, 156)
        prefix, name = name[:cut], name[cut + 1:]
    header = bytearray(BLOCK)
    header[0:len(name)] = name
    header[100:108] = _octal(mode, 8)
    header[108:116] = _octal(uid, 8)
    header[116:124] = _octal(gid, 8)
    header[124:136] = _octal(size, 12)
    header[136:148] = _octal(mtime, 12)
    header[148:156] = b" " * 8
    header[156:157] = typeflag
    header[157:157 + len(linkname)] = linkname
    header[257:265] = b"ustar\x0000"
    header[345:345 + len(prefix)] = prefix
    checksum = sum(header)
    header[148:156] = b"%06o\0 " % checksum
    return bytes(header)


def _fits_ustar(name: bytes, linkname: bytes, size: int) -> bool:
    if len(linkname) > 100 or size >= 8 ** 11:
        return False
    if len(name) <= 100:
        return True
    cut = name.rfind(b"/", 0, 156)
    return cut > 0 and len(name) - cut - 1 <= 100


def _open(entry: Entry) -> BinaryIO:
    content = entry.content
    if isinstance(content, str):
        return open(content, "rb")
    if callable(content):
        return content()
    raise LayerError(f"{entry.path}: no readable content")


def _member_segments(entry: Entry, mtime: int) -> Iterator[Segment]:
    name = entry.path.encode("utf-8") + (b"/" if entry.kind == DIR else b"")
    linkname = entry.linkname.encode("utf-8")
    size = entry.size if entry.kind == FILE else 0
    if not _fits_ustar(name, linkname, size):
        records = [_pax_record("path", name.decode("utf-8"))]
        if len(linkname) > 100:
            records.append(_pax_record("linkpath", entry.linkname))
        if size >= 8 ** 11:
            records.append(_pax_record("size", str(size)))
        pax = b"".join(records)
        yield _header(b"PaxHeader", len(pax), 0o644, b"x", b"", 0, 0, mtime)
        yield pax + b"\0" * (-len(pax) % BLOCK)
        name, linkname = name[-100:], linkname[:100]
        size_field = 0 if size >= 8 ** 11 else size
    else:
        size_field = size
    yield _header(name, size_field, entry.mode, _TYPEFLAGS[entry.kind], linkname, entry.uid, entry.gid, mtime)
    if entry.kind != FILE or size == 0:
        return
    yield entry
    yield b"\0" * (-size % BLOCK)


# A run of a layer's bytes: literal tar structure, or a file entry whose `size` bytes of content go there.
Segment = Union[bytes, Entry]


def layer_segments(entries: Iterable[Entry], *, mtime: int = DEFAULT_MTIME) -> Iterator[Segment]:
    """The layer `write_layer` writes, as its runs of bytes: what a reader needs to see the tar without writing it
    (the compressibility probe samples a layer this way)."""
    for entry in _with_parents(entries):
        yield from _member_segments(entry, mtime)
    yield b"\0" * (2 * BLOCK)


def _write_content(out: HashingWriter, entry: Entry) -> None:
    size = entry.size
    if isinstance(entry.content, bytes):
        if len(entry.content) != size:
            raise LayerError(f"{entry.path}: content is {len(entry.content)} bytes, declared {size}")
        out.write(entry.content)
        return
    remaining = size
    with _open(entry) as stream:
        while remaining:
            chunk = stream.read(min(CHUNK, remaining))
            if not chunk:
                raise LayerError(f"{entry.path}: file is shorter than its declared {size} bytes")
            out.write(chunk)
            remaining -= len(chunk)


def write_layer(entries: Iterable[Entry], out: BinaryIO, *, mtime: int = DEFAULT_MTIME) -> LayerInfo:
    """Write `entries` as one normalised tar to `out`; return its digest and size."""
    writer = HashingWriter(out)
    for segment in layer_segments(entries, mtime=mtime):
        if isinstance(segment, bytes):
            writer.write(segment)
        else:
            _write_content(writer, segment)
    return LayerInfo(f"sha256:{writer.sha256.hexdigest()}", writer.size)
