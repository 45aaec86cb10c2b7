"""The stat cache of model source files: a file whose identity (device, inode, size, mtime, ctime) is unchanged
since it was last hashed is not read again, as git's index does.

Racy files: a file changed within `RACY_NS` of when it was recorded may be changed again without any visible
change of identity (file systems keep times at a coarse tick), so such a record is never trusted; the file is hashed
again on the next build, when the record is written anew and no longer racy. A file changed in place with its
mtime restored is still seen: its ctime moved, and nothing but the kernel sets a ctime.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Optional

from omi_plugin.blob_store.store import BlobStore, Identity, read_json, write_json_atomically
from omi_plugin.oci.hashing import file_sha256

RACY_NS = 2_000_000_000
KIND = "sources"


class SourceChangedError(Exception):
    """The file changed while it was read: what was written does not describe one state of it."""


def identity(path: str) -> Identity:
    return Identity.of(os.stat(path))


def is_racy(file: Identity, recorded_ns: int) -> bool:
    return max(file.mtime_ns, file.ctime_ns) >= recorded_ns - RACY_NS


@dataclass(frozen=True)
class Known:
    digest: str
    trusted: bool  # False: racy, the bytes must be hashed to confirm it


def known_digest(store: BlobStore, path: str) -> Optional[Known]:
    """The file's sha256 as last recorded, if its identity is unchanged; untrusted when the record is racy."""
    record = read_json(store.record_path(KIND, os.path.realpath(path)))
    if record is None:
        return None
    now = identity(path)
    digest, recorded_ns = record.get("digest"), record.get("recorded_ns")
    if record.get("identity") != now.to_json() or not isinstance(recorded_ns, int) or not isinstance(digest, str):
        return None
    return Known(digest, not is_racy(now, recorded_ns))


def remember(store: BlobStore, path: str, before: Identity, digest: str) -> None:
    """Record that the file, as it was at `before`, has `digest`; refuse when it changed while being read."""
    after = identity(path)
    if after != before:
        raise SourceChangedError(f"{path}: changed while it was being read (build again once it is written)")
    write_json_atomically(store.record_path(KIND, os.path.realpath(path)),
                          {"path": os.path.realpath(path), "identity": before.to_json(), "digest": digest,
                           "recorded_ns": time.time_ns()})


def file_digest(store: BlobStore, path: str) -> str:
    """The file's sha256: from its record when the record is trusted, else hashed (and recorded)."""
    known = known_digest(store, path)
    if known is not None and known.trusted:
        return known.digest
    before = identity(path)
    digest, _ = file_sha256(path)
    remember(store, path, before, digest)
    return digest
