"""The version dpkg records for a Debian package in an image's layers: from `var/lib/dpkg/status` (Debian's own
images) or `var/lib/dpkg/status.d/<package>` (distroless and omi's bases), a later layer's record winning.

    python -m omi_plugin.oci.dpkg_version PACKAGE LAYERS.json   (prints the version, or nothing)

LAYERS.json: [{"path": "...", "media_type": "..."}] in the image's order. Pants-free.
"""

from __future__ import annotations

import json
import sys
import tarfile
from typing import Iterable, List, Mapping, Optional

from omi_plugin.oci import compression

STATUS = "var/lib/dpkg/status"
STATUS_DIR = "var/lib/dpkg/status.d/"


def version_in_records(text: str, package: str) -> Optional[str]:
    """The `Version` of `package`'s stanza in dpkg control records (a status file, or one package's record)."""
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        if fields.get("Package") == package and "Version" in fields:
            return fields["Version"]
    return None


def package_version(layers: Iterable[Mapping[str, str]], package: str) -> Optional[str]:
    found: Optional[str] = None
    for layer in layers:
        with compression.open_uncompressed(layer["path"], layer["media_type"]) as f, \
                tarfile.open(fileobj=f, mode="r|") as archive:
            for member in archive:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if member.isfile() and name in (STATUS, STATUS_DIR + package):
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    version = version_in_records(extracted.read().decode("utf-8", errors="replace"), package)
                    found = version or found
    return found


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        print(package_version(json.load(f), argv[0]) or "")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
