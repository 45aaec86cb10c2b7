"""Map the members of several `.deb`s onto one merged-/usr filesystem, as layer `Entry`s.

What dpkg would do on a bookworm system, minus everything that only matters to a package manager:
- **Merged /usr.** bookworm systems have `/bin`, `/sbin`, `/lib`, `/lib32`, `/lib64`, `/libx32` as symlinks into
  `/usr`, but packages still ship files under the old paths. Those paths (and hardlink targets) are rewritten to
  `usr/...` and the top-level symlinks are added. Symlink targets are left alone: absolute ones resolve through the
  top-level symlinks, and relative ones move together with the directory they are in.
- **No documentation.** `usr/share/{doc,man,info,locale,lintian}` are dropped, except `usr/share/doc/*/copyright`
  (and the `usr/share/doc/<pkg>` symlinks to them), which license compliance needs.
- **Ownership and modes.** Everything is owned by root (packages name owners by group names such as `staff`, which
  the image's /etc/group does not define). Setuid/setgid bits are dropped from files: the image runs as a
  non-root user with nothing to escalate to, so they would only be attack surface.
- **Conflicts.** Two packages shipping the same directory is normal; the same file or symlink is accepted only if
  it is identical, otherwise the build fails naming both packages (dpkg would refuse to install them together).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

from omi_plugin.base_images.deb import Deb, DebMember
from omi_plugin.oci.tar import DIR, FILE, HARDLINK, SYMLINK, Entry

MERGED_USR_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Always linked, like Debian's usrmerge; the multilib ones only when something lives under them.
ALWAYS_LINKED = ("bin", "sbin", "lib")
DROPPED_TREES = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian")
SETID_BITS = 0o6000


class LayoutError(ValueError):
    """The packages cannot be laid out together (conflicting files, dangling hardlink, ...)."""


def merged_usr_path(path: str) -> str:
    """`lib/x86_64-linux-gnu/libc.so.6` -> `usr/lib/x86_64-linux-gnu/libc.so.6`; other paths unchanged."""
    top = path.split("/", 1)[0]
    return f"usr/{path}" if top in MERGED_USR_DIRS else path


def is_kept(path: str, kind: str) -> bool:
    """False for documentation; copyright files and the per-package doc directory symlinks are kept."""
    for tree in DROPPED_TREES:
        if path == tree or path.startswith(tree + "/"):
            if tree != "usr/share/doc":
                return False
            parts = path.split("/")
            if len(parts) == 4 and kind == SYMLINK:
                return True  # usr/share/doc/<pkg> -> <other pkg>: where that package's copyright is
            return len(parts) == 5 and parts[4] == "copyright" and kind in (FILE, HARDLINK, SYMLINK)
    return True


def _sort_key(path: str) -> List[str]:
    # The order the tar writer emits entries in: a hardlink must come after the file it links to.
    return path.split("/")


def package_entries(deb: Deb) -> List[Entry]:
    """The layer entries contributed by one package."""
    by_path: Dict[str, DebMember] = {}
    for member in deb.members:
        path = merged_usr_path(member.path)
        twin = by_path.get(path)
        if twin is not None and not (twin.kind == DIR and member.kind == DIR):
            raise LayoutError(f"{deb.name}: ships both {twin.path} and {member.path}, which are the same path on a "
                              f"merged-/usr system")
        by_path[path] = member
    entries: Dict[str, Entry] = {}
    links: Dict[str, List[str]] = {}  # hardlink target -> link paths, all kept and rewritten
    for path, member in by_path.items():
        if not is_kept(path, member.kind):
            continue
        if member.kind == FILE:
            entries[path] = _file_entry(deb, path, member)
        elif member.kind == DIR:
            entries[path] = Entry.directory(path, mode=member.mode & 0o7777)
        elif member.kind == SYMLINK:
            entries[path] = Entry.symlink(path, member.linkname)
        elif member.kind == HARDLINK:
            target = merged_usr_path(member.linkname)
            original = by_path.get(target)
            if original is None or original.kind != FILE:
                raise LayoutError(f"{deb.name}: {member.path} is a hardlink to {member.linkname}, which the package "
                                  f"does not ship as a regular file")
            if is_kept(target, FILE):
                links.setdefault(target, []).append(path)
            else:
                # The target was dropped (documentation): keep the link's content as a file of its own.
                entries[path] = _file_entry(deb, path, original)
    for target, link_paths in links.items():
        # The tar writer sorts by path, so the first path of the group carries the bytes and the rest link to it.
        group = sorted([target] + link_paths, key=_sort_key)
        leader = group[0]
        entries[leader] = _file_entry(deb, leader, by_path[target])
        for path in group[1:]:
            entries[path] = Entry.hardlink(path, leader)
    return [entries[p] for p in sorted(entries)]


def _file_entry(deb: Deb, path: str, member: DebMember) -> Entry:
    return Entry.file(path, functools.partial(deb.open_member, member), size=member.size,
                      mode=member.mode & 0o7777 & ~SETID_BITS)


@dataclass
class _Owner:
    entry: Entry
    package: str


def _digest(entry: Entry) -> Tuple[int, str]:
    content = entry.content
    if isinstance(content, bytes):
        return len(content), hashlib.sha256(content).hexdigest()
    assert callable(content)
    digest = hashlib.sha256()
    with content() as stream:
        digest.update(stream.read(entry.size))
    return entry.size, digest.hexdigest()


def _same(a: Entry, b: Entry) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind == DIR:
        return True
    if a.kind in (SYMLINK, HARDLINK):
        return a.linkname == b.linkname
    return a.mode == b.mode and a.size == b.size and _digest(a) == _digest(b)


def merge_packages(debs: Sequence[Deb]) -> List[Entry]:
    """All packages' entries on one filesystem plus the merged-/usr symlinks, sorted by path."""
    owners: Dict[str, _Owner] = {}
    for deb in debs:
        for entry in package_entries(deb):
            previous = owners.get(entry.path)
            if previous is None:
                owners[entry.path] = _Owner(entry, deb.name)
            elif not _same(previous.entry, entry):
                raise LayoutError(f"{entry.path} is shipped by both {previous.package} and {deb.name} with different "
                                  f"content; they cannot be installed together")
    used = {path.split("/", 2)[1] for path in owners if path.startswith("usr/")}
    for top in MERGED_USR_DIRS:
        if top in ALWAYS_LINKED or top in used:
            owners[top] = _Owner(Entry.symlink(top, f"usr/{top}"), "(merged /usr)")
    return [owners[p].entry for p in sorted(owners)]


def read_entry(entry: Entry) -> bytes:
    """The content of a file entry (for generated files that derive from package files, like the CA bundle)."""
    content = entry.content
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        with open(content, "rb") as f:
            return f.read()
    assert callable(content)
    with content() as stream:
        return stream.read(entry.size)


def index_entries(entries: Iterable[Entry]) -> Dict[str, Entry]:
    return {entry.path: entry for entry in entries}
