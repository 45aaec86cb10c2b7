"""The omlmd flavour of a model artifact: the same model files, in the form omlmd clients read.

omlmd ("OCI Artifact for ML model & metadata") clients expect: each model file as a raw layer
`application/x-mlmodel`; `model_metadata.omlmd.json` and `model_metadata.omlmd.yaml` as `application/x-config`
layers; the JSON also as the manifest's config (its `get config` looks for the config among the layers); an
`org.opencontainers.image.title` on every layer (its `pull` names files by it); the metadata fields as manifest
annotations (strings bare, anything else as `<key>+json`). A ModelPack manifest has tar layers and a ModelPack
config, so omlmd needs this separate manifest; its `subject` is the ModelPack artifact. Pure: from the ModelPack
config and the model files' digests to JSON blobs, so the flavour's digest is reproducible.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from omi_plugin.oci import media_types
from omi_plugin.oci.descriptor import Blob, Descriptor, sha256_digest
from omi_plugin.oci.image import build_index, build_manifest

MLMODEL = "application/x-mlmodel"
CONFIG = "application/x-config"
METADATA_JSON = "model_metadata.omlmd.json"
METADATA_YAML = "model_metadata.omlmd.yaml"
# omlmd's ModelMetadata fields, in its order; `ModelMetadata(**json)` rejects any other key.
FIELDS = ("name", "description", "author", "customProperties", "uri", "model_format_name", "model_format_version")


class OmlmdError(ValueError):
    """The model cannot be written in omlmd's form (one line)."""


@dataclass(frozen=True)
class ModelFileBlob:
    """A model file as an omlmd layer: the file's own bytes are the blob."""

    relpath: str
    digest: str
    size: int


@dataclass(frozen=True)
class OmlmdArtifact:
    manifest: Blob
    metadata_blobs: Tuple[Blob, ...]  # the JSON (also the config) and the YAML
    index_json: bytes


def metadata_from_modelpack(config: Mapping[str, Any]) -> Dict[str, Any]:
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


def build(modelpack_config: Mapping[str, Any], files: Sequence[ModelFileBlob], subject: Descriptor,
          tags: Sequence[str]) -> OmlmdArtifact:
    """The omlmd manifest (subject: the ModelPack manifest), its metadata blobs and its layout's index.json."""
    if not files:
        raise OmlmdError("the model has no file to publish for omlmd")
    titles = [posixpath.basename(f.relpath) for f in files]
    clashes = sorted({t for t in titles if titles.count(t) > 1} | ({METADATA_JSON, METADATA_YAML} & set(titles)))
    if clashes:
        raise OmlmdError(f"omlmd names files by their base name, and {', '.join(clashes)} would clash (rename the "
                         "files, or turn the omlmd flavour off)")
    metadata = metadata_from_modelpack(modelpack_config)
    json_bytes, yaml_bytes = metadata_json(metadata), metadata_yaml(metadata)
    json_blob = Blob(Descriptor(CONFIG, sha256_digest(json_bytes), len(json_bytes),
                                {media_types.ANNOTATION_TITLE: METADATA_JSON}), json_bytes)
    yaml_blob = Blob(Descriptor(CONFIG, sha256_digest(yaml_bytes), len(yaml_bytes),
                                {media_types.ANNOTATION_TITLE: METADATA_YAML}), yaml_bytes)
    file_layers = tuple(Descriptor(MLMODEL, f.digest, f.size, {media_types.ANNOTATION_TITLE: title})
                        for f, title in zip(files, titles))
    config_descriptor = Descriptor(CONFIG, json_blob.descriptor.digest, json_blob.descriptor.size)
    manifest = build_manifest(config_descriptor, [*file_layers, json_blob.descriptor, yaml_blob.descriptor],
                              annotations=manifest_annotations(metadata), subject=subject)
    return OmlmdArtifact(manifest, (json_blob, yaml_blob),
                         build_index([(manifest.descriptor, tuple(tags))]))
