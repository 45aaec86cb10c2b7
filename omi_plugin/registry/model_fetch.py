"""A model artifact of a registry, whole, in the blob store: its manifest, its config, every layer, and each model
file as a blob of its own bytes, found there by the manifest's digest with no network on the next build.

A raw layer is its file's bytes, so the layer blob is the file. A tar layer (ModelPack's form for a directory, gzip or
zstd compressed or not) is kept as it came, for a copy of the artifact, and each regular file in it is written to
the store once more as a blob of its own, so the image's model layers are written from files as for a model in the
repository. The record of what the artifact holds is written last: until it is, the next build fetches again, so a
download cut half way leaves nothing anyone reads. Pants-free.
"""

from __future__ import annotations

import functools
import json
import posixpath
import sys
import tarfile
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, List, Optional, Tuple

from omi_plugin.blob_store.store import BlobStore, read_json, write_json_atomically
from omi_plugin.oci.compression import open_uncompressed
from omi_plugin.oci.descriptor import Descriptor
from omi_plugin.oci.hashing import HashingWriter
from omi_plugin.registry.client import Registry
from omi_plugin.registry.errors import RegistryError
from omi_plugin.registry.model_artifact import ArtifactFile, fetch_blob_to_store, read_model_artifact
from omi_plugin.registry.pull import require_digest, verified_manifest

RECORDS = "model-artifacts"
_MAX_MEMBERS = 100_000


@dataclass(frozen=True)
class StoredFile:
    path: str  # inside the model directory, as model.yaml's `files` names it
    digest: str  # the blob of its bytes in the store
    size: int


@dataclass(frozen=True)
class StoredArtifact:
    """A model artifact in the blob store: what the image names as its subject, and the model files it holds."""

    reference: str  # registry/repository@sha256:...
    kind: str  # "modelpack" or "omlmd"
    manifest: Descriptor  # the artifact's manifest (media type, digest, size, artifact type)
    blobs: Tuple[str, ...]  # every blob of the artifact: manifest, config, layers
    files: Tuple[StoredFile, ...]

    def to_json(self) -> Dict[str, Any]:
        return {"reference": self.reference, "kind": self.kind, "manifest": self.manifest.to_json(),
                "blobs": list(self.blobs), "files": [[f.path, f.digest, f.size] for f in self.files]}

    @staticmethod
    def from_json(data: Dict[str, Any]) -> "StoredArtifact":
        return StoredArtifact(str(data["reference"]), str(data["kind"]), Descriptor.from_json(data["manifest"]),
                              tuple(data["blobs"]), tuple(StoredFile(p, d, int(s)) for p, d, s in data["files"]))


def _record_path(store: BlobStore, manifest_digest: str) -> str:
    return store.record_path(RECORDS, manifest_digest)


def find_stored(store: BlobStore, reference: str) -> Optional[StoredArtifact]:
    """The artifact as an earlier build stored it, when every blob of it is still there (no network)."""
    ref = require_digest(reference)
    assert ref.digest is not None
    data = read_json(_record_path(store, ref.digest))
    if data is None:
        return None
    try:
        found = StoredArtifact.from_json(data)
    except (KeyError, TypeError, ValueError):
        return None
    if not all(store.has(d) for d in (*found.blobs, *(f.digest for f in found.files))):
        return None
    # The same bytes may be named by another repository: the record speaks for the digest, the reference is ours.
    return StoredArtifact(reference, found.kind, found.manifest, found.blobs, found.files)


def _artifact_type(manifest: Dict[str, Any]) -> Optional[str]:
    kind = manifest.get("artifactType") or (manifest.get("config") or {}).get("mediaType")
    return str(kind) if kind else None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fetch_to_store(client: Registry, reference: str, store: BlobStore,
                   log: Callable[[str], None] = _stderr) -> StoredArtifact:
    """Download the artifact into the store (what is there already is not asked for again) and record it."""
    ref = require_digest(reference)
    assert ref.digest is not None
    manifest = verified_manifest(client, ref, ref.digest)
    try:
        document = json.loads(manifest.data)
    except ValueError:
        raise RegistryError(ref.where, f"manifest {ref.digest} is not JSON",
                            "name the digest of a ModelPack or omlmd model artifact's manifest") from None
    if not isinstance(document, dict):
        raise RegistryError(ref.where, f"manifest {ref.digest} is not a JSON object", "name a model artifact")
    artifact = read_model_artifact(document, reference, ref.where)
    media_type = str(document.get("mediaType") or manifest.media_type)
    descriptor = Descriptor(media_type, ref.digest, len(manifest.data), artifact_type=_artifact_type(document))
    store.write(lambda sink: sink.write(manifest.data))
    config = Descriptor.from_json(document["config"])
    layers = [Descriptor.from_json(layer) for layer in document.get("layers") or []]
    for blob in (config, *layers):
        if fetch_blob_to_store(client, ref, blob, store):
            log(f"{ref.where}: blob {blob.digest[:19]} {blob.size} bytes downloaded, verified")
    files: Dict[str, StoredFile] = {}
    for file in artifact.files:
        for stored in _files_of(store, file, ref.where):
            if stored.path in files:
                raise RegistryError(ref.where, f"{stored.path!r} is in layer {file.layer.digest} and in another "
                                    "layer", "push each model file once")
            files[stored.path] = stored
    blobs = tuple(dict.fromkeys([ref.digest, config.digest, *(layer.digest for layer in layers)]))
    found = StoredArtifact(reference, artifact.kind, descriptor, blobs, tuple(sorted(files.values(),
                                                                                    key=lambda f: f.path)))
    write_json_atomically(_record_path(store, ref.digest), found.to_json())
    return found


def _files_of(store: BlobStore, file: ArtifactFile, where: str) -> List[StoredFile]:
    if file.packing == "raw":
        return [StoredFile(file.path, file.layer.digest, file.layer.size)]
    out: List[StoredFile] = []
    try:
        with open_uncompressed(store.blob(file.layer.digest), file.layer.media_type) as stream, \
                tarfile.open(fileobj=stream, mode="r|") as archive:
            for count, member in enumerate(archive):
                if count > _MAX_MEMBERS:
                    raise RegistryError(where, f"layer {file.layer.digest} ({file.path}) holds over "
                                        f"{_MAX_MEMBERS} entries", "pack the directory into fewer files")
                if member.isdir():
                    continue
                path = _member_path(member.name, file, where)
                if not member.isreg():
                    raise RegistryError(where, f"layer {file.layer.digest}: {member.name!r} is not a regular file "
                                        "(a link or a device)", "push the model with regular files only")
                source = archive.extractfile(member)
                assert source is not None  # a regular file
                digest, size, _ = store.write(functools.partial(_copy, source))
                out.append(StoredFile(path, digest, size))
    except (tarfile.TarError, EOFError, OSError) as e:
        raise RegistryError(where, f"layer {file.layer.digest} ({file.path}) is not a readable "
                            f"{file.layer.media_type} layer: {e}", "push the artifact again") from None
    return out


def _member_path(name: str, file: ArtifactFile, where: str) -> str:
    path = posixpath.normpath(name)
    if name.startswith("/") or path == ".." or path.startswith("../"):
        raise RegistryError(where, f"layer {file.layer.digest}: {name!r} is not inside the model directory",
                            "push the artifact with relative file paths")
    return path


def _copy(source: IO[bytes], sink: HashingWriter) -> None:
    while True:
        chunk = source.read(1 << 20)
        if not chunk:
            return
        sink.write(chunk)
