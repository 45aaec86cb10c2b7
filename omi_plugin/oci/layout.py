"""OCI image layout directories (`oci-layout`, `index.json`, `blobs/sha256/…`): writing and reading."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from omi_plugin.oci import media_types
from omi_plugin.oci.descriptor import Descriptor, digest_hex

OCI_LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"


def oci_layout_bytes() -> bytes:
    return b'{"imageLayoutVersion":"' + media_types.OCI_LAYOUT_VERSION.encode() + b'"}'


def blob_path(digest: str) -> str:
    """Relative path of a blob inside a layout."""
    return f"blobs/sha256/{digest_hex(digest)}"


class LayoutError(ValueError):
    """A layout directory is missing a file or is malformed."""


@dataclass(frozen=True)
class Layout:
    """A read-only view of an image layout directory on disk."""

    root: str

    def index(self) -> Dict[str, Any]:
        return self._json(INDEX_FILE)

    def blob_file(self, digest: str) -> str:
        return os.path.join(self.root, blob_path(digest))

    def read_blob(self, digest: str) -> bytes:
        path = self.blob_file(digest)
        if not os.path.exists(path):
            raise LayoutError(f"{self.root}: missing blob {digest}")
        with open(path, "rb") as f:
            return f.read()

    def read_json_blob(self, digest: str) -> Dict[str, Any]:
        try:
            return json.loads(self.read_blob(digest))
        except json.JSONDecodeError as e:
            raise LayoutError(f"{self.root}: blob {digest} is not JSON: {e}") from None

    def manifests(self) -> List[Tuple[Descriptor, str]]:
        """(descriptor, ref name) for every entry of index.json."""
        out = []
        for entry in self.index().get("manifests", []):
            descriptor = Descriptor.from_json(entry)
            out.append((descriptor, descriptor.annotations.get(media_types.ANNOTATION_REF_NAME, "")))
        return out

    def _json(self, name: str) -> Dict[str, Any]:
        path = os.path.join(self.root, name)
        try:
            with open(path, "rb") as f:
                return json.load(f)
        except FileNotFoundError:
            raise LayoutError(f"{self.root}: not an OCI image layout (no {name})") from None
        except json.JSONDecodeError as e:
            raise LayoutError(f"{path}: malformed JSON: {e}") from None
