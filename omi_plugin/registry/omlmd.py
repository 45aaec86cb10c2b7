"""The omlmd flavour of a model artifact, derived from a ModelPack layout.

omlmd ("OCI Artifact for ML model & metadata") clients expect: each model file as a raw layer
`application/x-mlmodel`; `model_metadata.omlmd.json` and `model_metadata.omlmd.yaml` as `application/x-config`
layers; the JSON also as the manifest's config (its `get config` looks for the config among the layers); an
`org.opencontainers.image.title` on every layer (its `pull` names files by it); the metadata fields as manifest
annotations (strings bare, anything else as `<key>+json`). A ModelPack manifest has tar layers and a ModelPack
config, so omlmd needs this separate manifest. The model files are streamed out of the ModelPack tar layers into
a staging directory; every byte here is a function of the layout, so the flavour's digest is reproducible.
"""

from __future__ import annotations

import json
import os
import posixpath
import tarfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from omi_plugin.oci import compression, media_types
from omi_plugin.oci.descriptor import Blob, Descriptor, sha256_digest
from omi_plugin.oci.hashing import stream_sha256
from omi_plugin.oci.image import build_manifest
from omi_plugin.oci.layout import Layout, LayoutError

MLMODEL = "application/x-mlmodel"
CONFIG = "application/x-config"
METADATA_JSON = "model_metadata.omlmd.json"
METADATA_YAML = "model_metadata.omlmd.yaml"
# omlmd's ModelMetadata fields, in its order; `ModelMetadata(**json)` rejects any other key.
FIELDS = ("name", "description", "author", "customProperties", "uri", "model_format_name", "model_format_version")
_WEIGHT_PREFIX = "application/vnd.cncf.model.weight.v1."


@dataclass(frozen=True)
class StagedBlob:
    descriptor: Descriptor
    path: Optional[str] = None  # a file on disk (model files), or
    data: Optional[bytes] = None  # small bytes (metadata)


@dataclass(frozen=True)
class OmlmdArtifact:
    manifest: Blob
    blobs: Tuple[StagedBlob, ...]
    metadata: Dict[str, Any]


def metadata_from_modelpack(config: Dict[str, Any]) -> Dict[str, Any]:
    """omlmd metadata from a ModelPack config: descriptor and format map onto omlmd's fields."""
    descriptor = config.get("descriptor") or {}
    custom: Dict[str, Any] = {}
    for key in ("version", "revision", "licenses", "vendor", "family", "sourceURL", "docURL", "createdAt"):
        if descriptor.get(key):
            custom[key] = descriptor[key]
    model_config = config.get("config") or {}
    for key in ("architecture", "paramSize", "precision", "quantization"):
        if model_config.get(key):
            custom[key] = model_config[key]
    authors = descriptor.get("authors") or []
    return {
        "name": descriptor.get("name"),
        "description": descriptor.get("description"),
        "author": ", ".join(authors) if authors else None,
        "customProperties": custom,
        "uri": None,
        "model_format_name": model_config.get("format"),
        "model_format_version": None,
    }


def metadata_json(metadata: Dict[str, Any]) -> bytes:
    """The JSON omlmd itself writes (`json.dumps(indent=4)`, field order), so `omlmd push` of it matches."""
    return json.dumps({k: metadata.get(k) for k in FIELDS}, indent=4).encode("utf-8")


def _yaml_scalar(value: Any) -> str:
    # A JSON string/number/bool/null is also a valid YAML flow scalar, with no ambiguity about types.
    return json.dumps(value)


def metadata_yaml(metadata: Dict[str, Any]) -> bytes:
    """Block YAML with JSON-quoted scalars: readable by PyYAML and any YAML 1.2 parser, no YAML library needed."""
    lines: List[str] = []
    for key in sorted(FIELDS):
        value = metadata.get(key)
        if isinstance(value, dict):
            if not value:
                lines.append(f"{key}: {{}}")
                continue
            lines.append(f"{key}:")
            lines += [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(value.items())]
        else:
            lines.append(f"{key}: {_yaml_scalar(value)}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def manifest_annotations(metadata: Dict[str, Any]) -> Dict[str, str]:
    """omlmd's `to_annotations_dict`: strings as is, None dropped, anything else as `<key>+json`."""
    out: Dict[str, str] = {}
    for key in FIELDS:
        value = metadata.get(key)
        if isinstance(value, str):
            out[key] = value
        elif value is not None:
            out[f"{key}+json"] = json.dumps(value)
    return out


def _stage_stream(stream, size: int, staging_dir: str, title: str) -> StagedBlob:
    """Copy one file out of a layer into the staging directory, hashing it on the way."""
    tmp = os.path.join(staging_dir, f".partial-{len(os.listdir(staging_dir))}")
    with open(tmp, "wb") as out:
        digest, written = stream_sha256(stream, copy_to=out)
    if written != size:
        raise LayoutError(f"model file {title}: read {written} bytes, expected {size}")
    path = os.path.join(staging_dir, digest.split(":", 1)[1])
    os.replace(tmp, path)
    return StagedBlob(Descriptor(MLMODEL, digest, written, {media_types.ANNOTATION_TITLE: title}), path=path)


def _model_files(layout: Layout, layer: Descriptor, staging_dir: str) -> List[StagedBlob]:
    path = layout.blob_file(layer.digest)
    if not os.path.exists(path):
        raise LayoutError(f"{layout.root}: missing blob {layer.digest}")
    title = layer.annotations.get(media_types.ANNOTATION_TITLE) or posixpath.basename(
        layer.annotations.get(media_types.ANNOTATION_MODEL_FILEPATH, "") or layer.digest.split(":")[1][:12])
    suffix = layer.media_type[len(_WEIGHT_PREFIX):]
    if suffix == "raw":
        return [StagedBlob(Descriptor(MLMODEL, layer.digest, layer.size, {media_types.ANNOTATION_TITLE: title}),
                           path=path)]
    if suffix not in ("tar", "tar+gzip", "tar+zstd"):
        raise LayoutError(f"{layout.root}: cannot read model layer {layer.digest} of type {layer.media_type} "
                          "(only .raw, .tar, .tar+gzip and .tar+zstd)")
    staged: List[StagedBlob] = []
    with compression.open_uncompressed(path, layer.media_type) as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            extracted = tar.extractfile(member)
            assert extracted is not None
            staged.append(_stage_stream(extracted, member.size, staging_dir, posixpath.basename(member.name)))
    if not staged:
        raise LayoutError(f"{layout.root}: model layer {layer.digest} holds no file")
    return staged


def build(modelpack_dir: str, staging_dir: str, subject: Optional[Descriptor] = None) -> OmlmdArtifact:
    """The omlmd manifest and its blobs for the (first) model artifact of a ModelPack layout."""
    layout = Layout(modelpack_dir)
    entries = layout.manifests()
    if not entries:
        raise LayoutError(f"{modelpack_dir}: index.json lists no manifest")
    manifest = layout.read_json_blob(entries[0][0].digest)
    config = layout.read_json_blob(Descriptor.from_json(manifest["config"]).digest)
    model_blobs: List[StagedBlob] = []
    for raw in manifest.get("layers") or []:
        layer = Descriptor.from_json(raw)
        if layer.media_type.startswith(_WEIGHT_PREFIX):
            model_blobs += _model_files(layout, layer, staging_dir)
    if not model_blobs:
        raise LayoutError(f"{modelpack_dir}: the model artifact has no weight layer to publish for omlmd")
    titles = [b.descriptor.annotations[media_types.ANNOTATION_TITLE] for b in model_blobs]
    if len(set(titles)) != len(titles) or {METADATA_JSON, METADATA_YAML} & set(titles):
        raise LayoutError(f"{modelpack_dir}: model file names collide for omlmd (it names files by basename): "
                          f"{sorted(titles)}")
    metadata = metadata_from_modelpack(config)
    json_bytes, yaml_bytes = metadata_json(metadata), metadata_yaml(metadata)
    json_blob = StagedBlob(Descriptor(CONFIG, sha256_digest(json_bytes), len(json_bytes),
                                      {media_types.ANNOTATION_TITLE: METADATA_JSON}), data=json_bytes)
    yaml_blob = StagedBlob(Descriptor(CONFIG, sha256_digest(yaml_bytes), len(yaml_bytes),
                                      {media_types.ANNOTATION_TITLE: METADATA_YAML}), data=yaml_bytes)
    layers = [b.descriptor for b in model_blobs] + [json_blob.descriptor, yaml_blob.descriptor]
    config_descriptor = Descriptor(CONFIG, json_blob.descriptor.digest, json_blob.descriptor.size)
    omlmd_manifest = build_manifest(config_descriptor, layers, annotations=manifest_annotations(metadata), subject=subject)
    return OmlmdArtifact(omlmd_manifest, (*model_blobs, json_blob, yaml_blob), metadata)
