"""OCI layout archives (`oci-archive:` in skopeo/podman terms): unpack one into a layout, verifying every blob.

    python -m omi_plugin.oci.archive ARCHIVE.tar OUT_DIR

A blob whose bytes do not hash to its name is refused, so a base image read from an archive is exactly what its
digests say, as with a pull from a registry.
"""

from __future__ import annotations

import os
import posixpath
import sys
import tarfile
from typing import List

from omi_plugin.oci.hashing import stream_sha256
from omi_plugin.oci.layout import INDEX_FILE, OCI_LAYOUT_FILE


class ArchiveError(ValueError):
    """The archive is not an OCI layout, or a blob is not what its name says."""


def unpack(archive_path: str, out_dir: str) -> int:
    """Unpack `archive_path` into `out_dir`; returns the number of blobs verified."""
    verified = 0
    seen = set()
    try:
        archive = tarfile.open(archive_path)
    except (OSError, tarfile.TarError) as e:
        raise ArchiveError(f"{archive_path}: not a tar archive ({e})") from None
    with archive:
        for member in archive:
            name = posixpath.normpath(member.name.lstrip("./")) if member.name not in (".", "./") else "."
            if member.isdir() or name == ".":
                continue
            if not member.isfile():
                raise ArchiveError(f"{archive_path}: {member.name}: only regular files belong in an OCI layout")
            if name.startswith("..") or name.startswith("/"):
                raise ArchiveError(f"{archive_path}: {member.name}: path escapes the layout")
            target = os.path.join(out_dir, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            stream = archive.extractfile(member)
            assert stream is not None
            with open(target + ".partial", "wb") as out:
                digest, _ = stream_sha256(stream, copy_to=out)
            parts = name.split("/")
            if len(parts) == 3 and parts[0] == "blobs" and parts[1] == "sha256":
                if digest != f"sha256:{parts[2]}":
                    os.unlink(target + ".partial")
                    raise ArchiveError(f"{archive_path}: {name}: content hashes to {digest}, "
                                       "not to its name (the archive is corrupt or was tampered with)")
                verified += 1
            os.replace(target + ".partial", target)
            seen.add(name)
    for required in (OCI_LAYOUT_FILE, INDEX_FILE):
        if required not in seen:
            raise ArchiveError(f"{archive_path}: no {required}: not an OCI layout archive "
                               "(make one with `skopeo copy <source> oci-archive:FILE.tar`)")
    return verified


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        count = unpack(argv[0], argv[1])
    except ArchiveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{argv[0]}: {count} blobs verified", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
