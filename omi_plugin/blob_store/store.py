"""The machine-wide content-addressed blob store: every model layer omi writes, once, at `blobs/sha256/<hex>`.

Rules of the store (what makes it safe to share between builds, clones and `dist/` directories):
- A blob is written to a private temporary file beside the store and *linked* into place, never renamed over an
  existing name: two builds writing the same blob both succeed, and a blob already in place is never replaced
  under a reader or under a `dist/` hard link.
- Blobs are read-only. Each has a `verified/<hex>` record of the file's identity when its bytes were last known to
  match its name (inode, size, mtime, ctime). A blob whose identity no longer matches its record is hashed again
  before use; one whose bytes no longer match its name is removed, so the caller rebuilds it. A blob without a
  record (copied in by hand, left by a crashed build) is hashed before its first use.
- Everything else in the store (records of sources and layers, temporary files) is a cache: deleting the whole
  store is always safe, and `dist/` keeps its own hard links.
- `prune` keeps the store under a size bound, removing the least recently used blobs first but never one used in
  the last hour (another build may be about to link it).

Standard library only: it runs inside Pants and in the layer writer.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from omi_plugin.oci.descriptor import digest_hex
from omi_plugin.oci.hashing import HashingWriter, file_sha256

RECENT_SECONDS = 3600  # a blob used this recently is never pruned


def omi_cache_dir(env: Mapping[str, str]) -> str:
    """omi's cache directory, by the rule `./pants` bootstraps into: `$OMI_CACHE_DIR`, else `$XDG_CACHE_HOME/omi`,
    else `~/.cache/omi`."""
    if env.get("OMI_CACHE_DIR"):
        return os.path.abspath(env["OMI_CACHE_DIR"])
    cache = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(cache), "omi")


def default_root(env: Mapping[str, str]) -> str:
    """Where the store is when `[omi].blob_store` is empty: `store/` in omi's cache directory."""
    return os.path.join(omi_cache_dir(env), "store")


class BlobStoreError(Exception):
    """The store cannot be used: its directory is not writable, a blob cannot be linked, ..."""


@dataclass(frozen=True)
class Identity:
    """What identifies a file's bytes without reading them, as git's index does."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @staticmethod
    def of(st: os.stat_result) -> "Identity":
        return Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def to_json(self) -> Dict[str, int]:
        return {"device": self.device, "inode": self.inode, "size": self.size, "mtime_ns": self.mtime_ns,
                "ctime_ns": self.ctime_ns}

    @staticmethod
    def from_json(data: Dict[str, int]) -> "Identity":
        return Identity(int(data["device"]), int(data["inode"]), int(data["size"]), int(data["mtime_ns"]),
                        int(data["ctime_ns"]))


def write_json_atomically(path: str, data: object) -> None:
    """A small record, replaced whole or not at all (a reader never sees half of it)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".partial-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, sort_keys=True)
        os.replace(partial, path)
    except BaseException:
        _unlink_quietly(partial)
        raise


def read_json(path: str) -> Optional[Dict[str, object]]:
    """A record, or None when it is missing or unreadable (a record is only ever a cache)."""
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _hashed(f: BinaryIO, produce: Callable[[HashingWriter], object]) -> Tuple[str, int, object]:
    sink = HashingWriter(f)
    result = produce(sink)
    return "sha256:" + sink.sha256.hexdigest(), sink.size, result


class BlobStore:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(os.path.expanduser(root))
        self.problems: List[str] = []  # what was found wrong and mended, one line each, for the caller

    # -- paths -------------------------------------------------------------------------------------------------
    def blob(self, digest: str) -> str:
        return os.path.join(self.root, "blobs", "sha256", digest_hex(digest))

    def digest_of(self, path: str) -> Optional[str]:
        """The digest a path of a blob of this store names ("sha256:<hex>"), or None for any other path."""
        directory, name = os.path.split(os.path.abspath(path))
        if directory != os.path.join(self.root, "blobs", "sha256") or len(name) != 64 or \
                not all(c in "0123456789abcdef" for c in name):
            return None
        return f"sha256:{name}"

    def _verified(self, digest: str) -> str:
        return os.path.join(self.root, "verified", digest_hex(digest))

    def record_path(self, kind: str, key: str) -> str:
        """Where a cache record of `kind` (e.g. `sources`, `layers`) for `key` lives."""
        name = hashlib.sha256(key.encode()).hexdigest()
        return os.path.join(self.root, kind, name[:2], name)

    def _tmp(self) -> str:
        path = os.path.join(self.root, "tmp")
        os.makedirs(path, exist_ok=True)
        return path

    # -- reading -----------------------------------------------------------------------------------------------
    def has(self, digest: str) -> bool:
        """The blob is in the store and its bytes match its name (hashed again when its file changed identity)."""
        path = self.blob(digest)
        try:
            identity = Identity.of(os.stat(path))
        except FileNotFoundError:
            return False
        record = read_json(self._verified(digest))
        if record is not None and record.get("identity") == identity.to_json():
            self._touch(digest)
            return True
        actual, _ = file_sha256(path)
        if actual == digest:
            self._mark_verified(digest)
            return True
        self.problems.append(f"the omi blob store's {path} no longer matches its name (its sha256 is {actual}); "
                                   "removed and rebuilt")
        _unlink_quietly(path)
        _unlink_quietly(self._verified(digest))
        return False

    def _touch(self, digest: str) -> None:
        """Mark the blob used now, for `prune` (the record's mtime; the blob's own times are its identity)."""
        try:
            os.utime(self._verified(digest))
        except OSError:
            pass

    def _mark_verified(self, digest: str) -> None:
        identity = Identity.of(os.stat(self.blob(digest)))
        write_json_atomically(self._verified(digest), {"digest": digest, "identity": identity.to_json()})

    # -- writing -----------------------------------------------------------------------------------------------
    def write(self, produce: Callable[[HashingWriter], object]) -> Tuple[str, int, object]:
        """Write a new blob: `produce(sink)` writes its bytes; the blob is placed under the sha256 of what was
        written. Returns (digest, size, what `produce` returned). Nothing is left behind when `produce` fails."""
        return self._write(lambda f: _hashed(f, produce))

    def write_hashed(self, produce: Callable[[BinaryIO], Tuple[str, int]]) -> Tuple[str, int]:
        """`write`, for a producer that hashes what it writes itself (the tar writer of an uncompressed layer, whose
        diff_id is the blob's digest): `produce(sink)` returns the sha256 digest and size of exactly the bytes it
        wrote to `sink`, so they are not hashed twice."""
        digest, size, _ = self._write(lambda f: (*produce(f), None))
        return digest, size

    def _write(self, produce: Callable[[BinaryIO], Tuple[str, int, object]]) -> Tuple[str, int, object]:
        fd, partial = tempfile.mkstemp(dir=self._tmp(), prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as f:
                digest, size, result = produce(f)
            self._place(partial, digest)
        finally:
            _unlink_quietly(partial)
        return digest, size, result

    def _place(self, partial: str, digest: str) -> None:
        os.chmod(partial, 0o444)
        final = self.blob(digest)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        for _ in range(3):
            try:
                os.link(partial, final)  # never replaces: a blob in place may be linked from dist/ or being read
            except FileExistsError:
                if self.has(digest):
                    return  # another build wrote the same bytes first
                continue  # it was corrupt and is gone now: place ours
            # Dropping the temporary name changes the inode's ctime: the record is made after it, or the next
            # `has` would hash the whole blob again.
            _unlink_quietly(partial)
            self._mark_verified(digest)
            return
        raise BlobStoreError(f"{final}: cannot place the blob (it keeps reappearing with other bytes)")

    # -- linking out -------------------------------------------------------------------------------------------
    def link_out(self, digest: str, destination: str) -> None:
        """Make `destination` the blob (a hard link; a copy across file systems). An existing destination with
        other bytes is replaced atomically; one that already is the blob is left alone."""
        source = self.blob(digest)
        try:
            if os.path.samefile(source, destination):
                return
        except FileNotFoundError:
            pass
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=os.path.dirname(destination), prefix=".partial-")
        os.close(fd)
        os.unlink(partial)
        try:
            try:
                os.link(source, partial)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
                shutil.copyfile(source, partial)
                os.chmod(partial, 0o444)
            os.replace(partial, destination)
        finally:
            _unlink_quietly(partial)
        # A new link changes the blob's ctime: its bytes are the ones just verified, so the record follows.
        self._mark_verified(digest)

    # -- bounding ----------------------------------------------------------------------------------------------
    def blobs(self) -> Iterator[Tuple[str, int, float]]:
        """(digest, size, last used) of every blob."""
        directory = os.path.join(self.root, "blobs", "sha256")
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return
        for name in names:
            digest = f"sha256:{name}"
            try:
                size = os.stat(os.path.join(directory, name)).st_size
            except FileNotFoundError:
                continue
            try:
                used = os.stat(self._verified(digest)).st_mtime
            except FileNotFoundError:
                used = 0.0
            yield digest, size, used

    def prune(self, max_bytes: int, now: Optional[float] = None) -> List[str]:
        """Remove least recently used blobs until the store holds at most `max_bytes`; never a blob used in the last
        `RECENT_SECONDS`. Returns the removed digests. `dist/` keeps its own links to what it uses."""
        now = time.time() if now is None else now
        entries = sorted(self.blobs(), key=lambda e: e[2])
        total = sum(size for _, size, _ in entries)
        removed = []
        for digest, size, used in entries:
            if total <= max_bytes:
                break
            if now - used < RECENT_SECONDS:
                continue
            _unlink_quietly(self.blob(digest))
            _unlink_quietly(self._verified(digest))
            total -= size
            removed.append(digest)
        return removed
