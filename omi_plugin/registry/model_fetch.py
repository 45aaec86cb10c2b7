"""A model artifact of a registry, whole, in the blob store: its manifest, its config, every layer, and each model
file as a blob of its own bytes, found there by the manifest's digest with no network on the next build.

A raw layer is its file's bytes. Given the model's directory in the image, a raw layer is downloaded straight into the
image layer of its file (header, the bytes, padding), which is then the only copy of those bytes in the store: the
file is a slice of that layer (`StoredFile.within`), read in place, copied out as a blob of its own only when a
process needs it as a file (`pants check`, `pants run`), and left out of the copy of the artifact in `dist/` (the
registry holds it; `pants publish` mounts it or sends it from the image's layer). Otherwise the layer blob is the
file. A tar layer (ModelPack's form for a directory, gzip or
zstd compressed or not) is kept as it came, for a copy of the artifact, and each regular file in it is written to
the store once more as a blob of its own, so the image's model layers are written from files as for a model in the
repository. The record of what the artifact holds is written last: until it is, the next build fetches again, so a
download cut half way leaves nothing anyone reads. Pants-free.
"""

from __future__ import annotations

import functools
import posixpath
import shutil
import sys
import tarfile
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from omi_contract.record import points_outside
from omi_plugin.blob_store import file_layer
from omi_plugin.blob_store.file_blob import open_slice
from omi_plugin.blob_store.store import BlobStore, read_json, write_json_atomically
from omi_plugin.oci.compression import open_uncompressed
from omi_plugin.oci.descriptor import Descriptor, DescriptorError
from omi_plugin.oci.hashing import HashingWriter
from omi_plugin.oci.tar import LayerError, normalize_path
from omi_plugin.registry.client import Registry
from omi_plugin.registry.errors import RegistryError
from omi_plugin.registry.model_artifact import (
    ArtifactFile,
    fetch_blob_into_layer,
    fetch_blob_to_store,
    fetch_model_artifact,
)
from omi_plugin.registry.pull import require_digest

# The record's form: a record of another form (an older, looser extractor's) is not read, and the artifact is fetched
# again.
RECORDS = "model-artifacts"
FORMAT = 2
_MAX_MEMBERS = 100_000
# A tar layer may unpack to this many times its compressed size, plus 64 MiB: text files compress well, more than
# this is a decompression bomb in a digest-pinned artifact.
_MAX_EXPANSION = 100
_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredFile:
    path: str  # inside the model directory, as model.yaml's `files` names it
    digest: str  # the sha256 of its bytes: the blob of its bytes in the store, unless `within` is set
    size: int
    # The uncompressed one-file image layer of the store that holds the bytes from `offset` (a raw layer downloaded
    # straight into it); "": the bytes are the blob `digest`.
    within: str = ""
    offset: int = 0

    def to_json(self) -> List[Any]:
        return [self.path, self.digest, self.size, *((self.within, self.offset) if self.within else ())]

    @staticmethod
    def from_json(data: Sequence[Any]) -> "StoredFile":
        path, digest, size, *within = data
        return StoredFile(str(path), str(digest), int(size), *((str(within[0]), int(within[1])) if within else ()))

    def held_in(self, store: BlobStore) -> str:
        """The blob of the store its bytes are in."""
        return store.blob(self.within or self.digest)

    def open(self, store: BlobStore) -> BinaryIO:
        """Its bytes, as a file (a slice of its layer, or its own blob)."""
        return open_slice(self.held_in(store), self.offset, self.size) if self.within else \
            open(store.blob(self.digest), "rb")


@dataclass(frozen=True)
class StoredArtifact:
    """A model artifact in the blob store: what the image names as its subject, and the model files it holds."""

    reference: str  # registry/repository@sha256:...
    kind: str  # "modelpack" or "omlmd"
    manifest: Descriptor  # the artifact's manifest (media type, digest, size, artifact type)
    config: Descriptor
    blobs: Tuple[str, ...]  # every blob of the artifact: manifest, config, layers
    files: Tuple[StoredFile, ...]

    def to_json(self) -> Dict[str, Any]:
        return {"reference": self.reference, "kind": self.kind, "manifest": self.manifest.to_json(),
                "config": self.config.to_json(), "blobs": list(self.blobs),
                "files": [f.to_json() for f in self.files]}

    @staticmethod
    def from_json(data: Dict[str, Any]) -> "StoredArtifact":
        return StoredArtifact(str(data["reference"]), str(data["kind"]), Descriptor.from_json(data["manifest"]),
                              Descriptor.from_json(data["config"]), tuple(str(b) for b in data["blobs"]),
                              tuple(StoredFile.from_json(f) for f in data["files"]))


def _record_path(store: BlobStore, manifest_digest: str) -> str:
    return store.record_path(RECORDS, f"{FORMAT}:{manifest_digest}")


def find_stored(store: BlobStore, reference: str) -> Optional[StoredArtifact]:
    """The artifact as an earlier build stored it, when every blob of it is still there (no network). A record that
    does not describe this digest, names a path out of the model directory, or cannot be read is not trusted."""
    ref = require_digest(reference)
    assert ref.digest is not None
    data = read_json(_record_path(store, ref.digest))
    if data is None:
        return None
    try:
        found = StoredArtifact.from_json(data)
        sound = found.manifest.digest == ref.digest and ref.digest in found.blobs and \
            all(not points_outside(f.path) and f.path not in ("", ".") for f in found.files) and \
            all(store.has(d) for d in (*found.blobs, *(f.within or f.digest for f in found.files)))
    except (KeyError, IndexError, TypeError, ValueError, DescriptorError, OSError):
        return None
    # The same bytes may be named by another repository: the record speaks for the digest, the reference is ours.
    return StoredArtifact(reference, found.kind, found.manifest, found.config, found.blobs, found.files) \
        if sound else None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fetch_to_store(client: Registry, reference: str, store: BlobStore,
                   log: Callable[[str], None] = _stderr, model_dir: str = "") -> StoredArtifact:
    """Download the artifact into the store (what is there already is not asked for again) and record it. With
    `model_dir` (the model's directory in the image, `models/<name>`), each raw layer becomes its file's image layer."""
    ref = require_digest(reference)
    assert ref.digest is not None
    artifact = fetch_model_artifact(reference, client)
    manifest = Descriptor(artifact.media_type, ref.digest, len(artifact.manifest_data),
                          artifact_type=artifact.artifact_type)
    store.write(lambda sink: sink.write(artifact.manifest_data))
    raw = {f.layer.digest: f for f in artifact.files if f.packing == "raw"} if model_dir else {}
    within: Dict[str, Tuple[str, int]] = {}  # a raw layer's digest -> the image layer holding it, where its bytes start
    for blob in (artifact.config, *artifact.layers):
        # The config is a blob of its own, always (omlmd's is a layer too: that layer is then the same blob).
        file = raw.get(blob.digest) if blob is not artifact.config else None
        if file is not None and not store.has(blob.digest):
            dest = posixpath.join(model_dir, file.path)
            layer = file_layer.find_tar(store, blob.digest, dest, file_layer.ARTIFACT_FILE_MODE)
            if layer is None:
                layer = fetch_blob_into_layer(client, ref, blob, store, dest)
                file_layer.remember_tar(store, blob.digest, dest, file_layer.ARTIFACT_FILE_MODE, layer)
                log(f"{ref.where}: blob {blob.digest[:19]} {blob.size} bytes downloaded, verified, written as the "
                    f"image layer of {file.path}")
            within[blob.digest] = (layer.digest, file_layer.data_offset(dest, blob.size))
        elif fetch_blob_to_store(client, ref, blob, store):
            log(f"{ref.where}: blob {blob.digest[:19]} {blob.size} bytes downloaded, verified")
    files: Dict[str, StoredFile] = {}
    for file in artifact.files:
        for stored in _files_of(store, file, ref.where, within):
            if stored.path in files:
                raise RegistryError(ref.where, f"{stored.path!r} is in the artifact twice (layer {file.layer.digest} "
                                    "holds it again)", "push each model file once")
            files[stored.path] = stored
    blobs = tuple(dict.fromkeys([ref.digest, artifact.config.digest,
                                 *(layer.digest for layer in artifact.layers if layer.digest not in within)]))
    found = StoredArtifact(reference, artifact.kind, manifest, artifact.config, blobs,
                           tuple(sorted(files.values(), key=lambda f: f.path)))
    write_json_atomically(_record_path(store, ref.digest), found.to_json())
    return found


def _files_of(store: BlobStore, file: ArtifactFile, where: str,
              within: Mapping[str, Tuple[str, int]]) -> List[StoredFile]:
    if file.packing == "raw":
        return [StoredFile(file.path, file.layer.digest, file.layer.size, *within.get(file.layer.digest, ()))]
    out: Dict[str, StoredFile] = {}
    budget = [_MAX_EXPANSION * file.layer.size + (64 << 20)]
    what = f"layer {file.layer.digest} ({file.path})"
    try:
        with open_uncompressed(store.blob(file.layer.digest), file.layer.media_type) as stream, \
                tarfile.open(fileobj=stream, mode="r|") as archive:
            for count, member in enumerate(archive, start=1):
                if count > _MAX_MEMBERS:
                    raise RegistryError(where, f"{what} holds over {_MAX_MEMBERS} entries",
                                        "pack the directory into fewer files")
                if member.isdir():
                    continue
                try:
                    path = normalize_path(member.name)
                except LayerError as e:
                    raise RegistryError(where, f"{what}: {e}", "push the artifact with relative file paths") from None
                if not member.isreg():
                    raise RegistryError(where, f"{what}: {member.name!r} is not a regular file (a link or a device)",
                                        "push the model with regular files only")
                if path in out:
                    raise RegistryError(where, f"{what} holds {path!r} twice", "push each model file once")
                budget[0] -= member.size
                if budget[0] < 0:
                    raise RegistryError(where, f"{what} unpacks to over {_MAX_EXPANSION} times its size",
                                        "push the files uncompressed, or as raw layers")
                source = archive.extractfile(member)
                assert source is not None  # a regular file
                digest, size, _ = store.write(functools.partial(_copy, source))
                out[path] = StoredFile(path, digest, size)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise RegistryError(where, f"{what} is not a readable {file.layer.media_type} layer: {e}",
                            "push the artifact again") from None
    return list(out.values())


def _copy(source: IO[bytes], sink: HashingWriter) -> None:
    shutil.copyfileobj(source, sink, _CHUNK)
