"""What a model artifact in a registry holds: each model file's path in it and the layer that carries it.

A model pushed by someone else (KitOps, modctl, `modelpack-client`, omlmd, or omi's own `-model` artifact) is named
by digest, never by tag. Its manifest is fetched, verified against that digest and read here:

- ModelPack (`artifactType` or config `application/vnd.cncf.model.*`): every layer whose media type is
  `application/vnd.cncf.model.<weight|weight.config|doc|code|dataset>.v1.<raw|tar|tar+gzip|tar+zstd>`, at the path
  its `org.cncf.model.filepath` annotation gives (`org.opencontainers.image.title` when that is missing);
- omlmd (a layer `application/x-mlmodel`): the model file and its metadata files, at their titles.

A container image, an index, or anything else is one line naming the media types found. `fetch_blob_to_store`
downloads a layer straight into the blob store, verified while it streams, once: the next build finds it there by
digest; `fetch_blob_into_layer` downloads a raw layer straight into the image layer of its file. Pants-free; its
tests use a real registry.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from dataclasses import dataclass
from typing import Any, BinaryIO, Dict, List, Mapping, Optional, Tuple

from omi_contract.record import points_outside
from omi_plugin.blob_store import file_layer
from omi_plugin.blob_store.store import BlobStore
from omi_plugin.oci import media_types
from omi_plugin.oci.descriptor import Descriptor, DescriptorError
from omi_plugin.registry.client import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Registry, iter_verified
from omi_plugin.registry.errors import RegistryError
from omi_plugin.registry.pull import require_digest, verified_manifest, with_retries
from omi_plugin.registry.reference import Reference

OMLMD_MODEL = "application/x-mlmodel"
OMLMD_CONFIG = "application/x-config"
_IMAGE_CONFIGS = (media_types.CONFIG, "application/vnd.docker.container.image.v1+json")
_FIX = "name the digest of a ModelPack or omlmd model artifact's manifest"


@dataclass(frozen=True)
class ArtifactFile:
    """One file of a model artifact, as model.yaml's `files` names it."""

    path: str  # relative, normalised: what the artifact's annotations say
    layer: Descriptor
    packing: str  # "raw": the layer is the file's bytes; "tar": a tar holding it
    compression: str  # "", "gzip" or "zstd" (tar layers only)


@dataclass(frozen=True)
class ModelArtifact:
    reference: str  # registry/repository@sha256:...
    kind: str  # "modelpack" or "omlmd"
    files: Tuple[ArtifactFile, ...]
    config: Descriptor
    layers: Tuple[Descriptor, ...]  # every layer, model files or not
    artifact_type: Optional[str]  # `artifactType`, else the config's media type
    media_type: str = media_types.MANIFEST
    manifest_data: bytes = b""  # the manifest's bytes, when fetched

    def file(self, path: str) -> Optional[ArtifactFile]:
        wanted = posixpath.normpath(path)
        return next((f for f in self.files if f.path == wanted), None)


def _path(layer: Mapping[str, Any], index: int, where: str, keys: Tuple[str, ...]) -> str:
    annotations = layer.get("annotations") or {}
    value = next((annotations[k] for k in keys if isinstance(annotations.get(k), str) and annotations[k]), None)
    if value is None:
        raise RegistryError(where, f"layers[{index}] ({layer.get('mediaType')}) has no {keys[0]} annotation: omi "
                            "cannot tell which model file it is", "push the artifact with a tool that names each "
                            "file (KitOps, modctl, modelpack-client, omlmd)")
    path = posixpath.normpath(value)
    if points_outside(value) or path == ".":
        raise RegistryError(where, f"layers[{index}]: path {value!r} is not inside the model directory",
                            "push the artifact with relative file paths")
    return path


def read_model_artifact(manifest: Mapping[str, Any], reference: str, where: str) -> ModelArtifact:
    """The model files of a fetched manifest; RegistryError (one line) when it is not a model artifact omi reads."""
    media_type = str(manifest.get("mediaType") or "")
    if media_type in (media_types.INDEX, DOCKER_MANIFEST_LIST) or "manifests" in manifest:
        raise RegistryError(where, f"{reference} is an index ({media_type or 'no mediaType'}), not a model "
                            "artifact", _FIX)
    config = manifest.get("config") or {}
    layers: List[Dict[str, Any]] = [l for l in manifest.get("layers") or [] if isinstance(l, dict)]
    config_type = str(config.get("mediaType") or "")
    if media_type == DOCKER_MANIFEST or config_type in _IMAGE_CONFIGS:
        raise RegistryError(where, f"{reference} is a container image (config {config_type}), not a model artifact",
                            _FIX)
    types = [str(l.get("mediaType")) for l in layers]
    if any(media_types.MODELPACK_LAYER.match(t) for t in types):
        kind = "modelpack"
        keys: Tuple[str, ...] = (media_types.ANNOTATION_MODEL_FILEPATH, media_types.ANNOTATION_TITLE)
        chosen = [bool(media_types.MODELPACK_LAYER.match(t)) for t in types]
    elif OMLMD_MODEL in types:
        kind, keys = "omlmd", (media_types.ANNOTATION_TITLE,)
        chosen = [t in (OMLMD_MODEL, OMLMD_CONFIG) for t in types]
    else:
        found = sorted(set(types))
        raise RegistryError(where, f"{reference} holds no model files omi reads: layers of "
                            f"{', '.join(found) or 'no'} media type{'s' if len(found) != 1 else ''} (config "
                            f"{config_type or 'none'})", "expected ModelPack application/vnd.cncf.model.*.v1.* "
                            "layers or an omlmd application/x-mlmodel layer; " + _FIX)
    files: Dict[str, ArtifactFile] = {}
    try:
        config_descriptor = Descriptor.from_json(config)
        descriptors = [Descriptor.from_json(layer) for layer in layers]
    except DescriptorError as e:
        raise RegistryError(where, f"the manifest holds a descriptor that is not valid: {e}", _FIX) from None
    for index, layer in enumerate(layers):
        if not chosen[index]:
            continue
        descriptor = descriptors[index]
        path = _path(layer, index, where, keys)
        if path in files:
            raise RegistryError(where, f"layers[{index}]: path {path!r} is also layer "
                                f"{files[path].layer.digest}", "push each model file once")
        packing, compression = media_types.modelpack_packing(descriptor.media_type)
        files[path] = ArtifactFile(path, descriptor, packing, compression)
    artifact_type = manifest.get("artifactType") or config_type or None
    return ModelArtifact(reference, kind, tuple(files.values()), config_descriptor, tuple(descriptors),
                         str(artifact_type) if artifact_type else None, media_type or media_types.MANIFEST)


def fetch_model_artifact(reference: str, client: Registry) -> ModelArtifact:
    """Fetch `registry/repository@sha256:...`'s manifest, verify it against the digest, and read its model files."""
    ref = require_digest(reference)
    assert ref.digest is not None
    manifest = verified_manifest(client, ref, ref.digest)
    try:
        document = json.loads(manifest.data)
    except ValueError:
        raise RegistryError(ref.where, f"manifest {ref.digest} is not JSON", _FIX) from None
    if not isinstance(document, dict):
        raise RegistryError(ref.where, f"manifest {ref.digest} is not a JSON object", _FIX)
    return dataclasses.replace(read_model_artifact(document, reference, ref.where), manifest_data=manifest.data)


def fetch_blob_to_store(client: Registry, ref: Reference, descriptor: Descriptor, store: BlobStore) -> bool:
    """Stream one blob into the blob store, verified while it streams; False if the store already had it (then
    nothing is asked of the registry). A blob that fails verification or a download cut for good leaves nothing."""
    if store.has(descriptor.digest):
        return False

    def attempt() -> None:
        response = client.open_blob(ref.repository, descriptor.digest)
        try:
            def copy(sink: BinaryIO) -> Tuple[str, int]:
                for chunk in iter_verified(response, descriptor, ref.where):
                    sink.write(chunk)
                return descriptor.digest, descriptor.size  # iter_verified raised unless the bytes are exactly these

            store.write_hashed(copy)
        finally:
            response.close()

    with_retries(client, ref, descriptor, attempt)
    return True


def fetch_blob_into_layer(client: Registry, ref: Reference, descriptor: Descriptor, store: BlobStore,
                          dest: str) -> Descriptor:
    """Stream a raw layer (one file's bytes) straight into the image layer that holds that file at `dest`, verified
    while it streams: the file is written once, as the layer, never as a blob of its own. A download that fails
    verification or is cut for good leaves nothing."""
    written: List[Descriptor] = []

    def attempt() -> None:
        response = client.open_blob(ref.repository, descriptor.digest)
        try:
            written.append(file_layer.write_streamed(store, dest, descriptor.size,
                                                     iter_verified(response, descriptor, ref.where)))
        finally:
            response.close()

    with_retries(client, ref, descriptor, attempt)
    return written[-1]
