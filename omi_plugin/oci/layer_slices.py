"""A file's bytes inside an uncompressed one-file image layer: where a raw layer of a registry artifact is found again
when the build wrote it only into the image's layer of its file (`pants publish` sends it from there, `pants check`
verifies it there). Standard library only."""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
from typing import Any, Collection, Iterable, Mapping, Optional, Tuple

from omi_plugin.oci import media_types

_CHUNK = 1 << 20
_FILE_PATH_ANNOTATIONS = (media_types.ANNOTATION_MODEL_FILEPATH, media_types.ANNOTATION_TITLE)


def annotated_path(annotations: Mapping[str, Any]) -> str:
    """The path a raw layer's annotations give its file (ModelPack's, else omlmd's title), normalised; "" if none."""
    name = next((annotations[k] for k in _FILE_PATH_ANNOTATIONS if isinstance(annotations.get(k), str)
                 and annotations[k]), "")
    return posixpath.normpath(name) if name else ""


def _names(member: str, path: str) -> bool:
    member = posixpath.normpath(member)
    return member == path or member.endswith("/" + path)


def find_file(layer_blobs: Iterable[str], size: int, paths: Collection[str]) -> Optional[Tuple[str, int]]:
    """(blob, offset) of the first of these uncompressed layer blobs that is one file of `size` bytes at a path
    ending in one of `paths` (any path when `paths` is empty), and where its bytes start in it."""
    for blob in layer_blobs:
        try:
            with tarfile.open(blob, "r:") as archive:
                member = next((m for m in archive if not m.isdir()), None)
        except (tarfile.TarError, OSError):
            continue
        if member is not None and member.isreg() and member.size == size and \
                (not paths or any(_names(member.name, p) for p in paths)):
            return blob, member.offset_data
    return None


def slice_sha256(blob: str, offset: int, size: int) -> str:
    """"sha256:<hex>" of `size` bytes of a file from `offset`."""
    sha256, left = hashlib.sha256(), size
    with open(blob, "rb") as f:
        f.seek(offset)
        while left:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:
                break
            sha256.update(chunk)
            left -= len(chunk)
    return "sha256:" + sha256.hexdigest()


def uncompressed_layers(manifests: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    """The digests of the uncompressed layers of these image manifests."""
    for manifest in manifests:
        for layer in manifest.get("layers") or []:
            if isinstance(layer, dict) and layer.get("mediaType") == media_types.LAYER_TAR and \
                    isinstance(layer.get("digest"), str):
                yield layer["digest"]
