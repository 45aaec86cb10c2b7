"""ModelPack artifact rules (OMI301-311): the model as an OCI artifact, checked against model-spec v0.0.7.

The upstream config schema is applied as is (with date-time formats really checked); then what it cannot say:
the paramSize and diffId patterns, one diffId per layer in order, the filepath annotation, ModelPack layer media
types, the artifact type, that the artifact's blobs are the very blobs of the serving image's model layers, and
that the serving image names this artifact as its `subject`. A model taken from a registry artifact is served as
that artifact: the layout must be a copy of it, whole but for raw layers left to the registry (OMI311), and the
image's subject (OMI310); how it was pushed is its publisher's concern.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Mapping, Optional, Sequence, Set, cast

from omi_contract.violation import Collector
from omi_plugin.check import schemas
from omi_plugin.check.blobs import SHA256_DIGEST_RE
from omi_plugin.check.diff_ids import DiffIdWording, check_diff_ids
from omi_plugin.check.expectations import Expectations
from omi_plugin.check.image_rules import check_run_id_annotation
from omi_plugin.check.json_fields import object_field
from omi_plugin.check.layout_rules import LayoutScan, ManifestEntry, verify_blob
from omi_plugin.oci import layer_slices
from omi_plugin.oci import media_types as mt

PARAM_SIZE_RE = re.compile(r"^\d+(\.\d)?[QqTtBbMmKk]\Z")
LAYER_MEDIA_TYPE_RE = re.compile(
    r"^application/vnd\.cncf\.model\.(weight|weight\.config|doc|code|dataset)\.v1\.(raw|tar|tar\+gzip|tar\+zstd)$")
MODELS_DIR = "models"


def _shown(value: Any) -> str:
    return "missing" if value is None else repr(value)


def image_layer_digests(image: Optional[LayoutScan]) -> Optional[Set[str]]:
    """Digests of every layer of every image manifest, or None when there is no image to compare with."""
    if image is None:
        return None
    digests: Set[str] = set()
    for entry in image.manifests:
        for layer in (entry.manifest or {}).get("layers") or []:
            if isinstance(layer, dict) and isinstance(layer.get("digest"), str):
                digests.add(layer["digest"])
    return digests


def check_modelpack(out: Collector, scan: LayoutScan, expect: Expectations, image: Optional[LayoutScan],
                    source_artifact: Optional[str] = None) -> None:
    """`source_artifact`: the registry artifact (`registry/repo@sha256:...`) the target takes its model files from;
    the layout is then a copy of it, judged as such (OMI311), not as a ModelPack artifact omi wrote."""
    shared = image_layer_digests(image)
    for entry in scan.manifests:
        if entry.manifest is None:
            continue
        if source_artifact is not None:
            _check_source_copy(out, scan, entry, source_artifact, image)
        else:
            _check_artifact(out, scan, entry, expect, shared, image.name if image else "")
    if image is not None:
        check_image_subjects(out, image, scan)


def check_image_subjects(out: Collector, image: LayoutScan, artifact: LayoutScan) -> None:
    """OMI310: every image manifest names the model artifact of this build as its `subject`."""
    artifacts = {entry.digest: entry for entry in artifact.manifests if entry.manifest is not None}
    if not artifacts:
        return  # the layout rules report why
    for entry in image.manifests:
        if entry.manifest is None:
            continue
        subject = entry.manifest.get("subject")
        fix = "rebuild the image and the artifact together (`pants package`)"
        if not isinstance(subject, dict):
            out.add("OMI310", "subject", f"is {_shown(subject)}: the image does not name its model artifact", fix,
                    where=entry.where)
            continue
        digest = subject.get("digest")
        if digest not in artifacts:
            out.add("OMI310", "subject.digest", f"is {_shown(digest)}, which is not the model artifact in "
                    f"{artifact.name} ({', '.join(sorted(artifacts))})", fix, where=entry.where)
            continue
        if subject.get("mediaType") != mt.MANIFEST:
            out.add("OMI310", "subject.mediaType", f"is {_shown(subject.get('mediaType'))}, not {mt.MANIFEST}", fix,
                    where=entry.where)
        size = len(artifact.store.read_small(str(digest)))
        if subject.get("size") != size:
            out.add("OMI310", "subject.size", f"is {_shown(subject.get('size'))}, the artifact manifest has {size} "
                    "bytes", fix, where=entry.where)


def _check_source_copy(out: Collector, scan: LayoutScan, entry: ManifestEntry, reference: str,
                       image: Optional[LayoutScan]) -> None:
    """OMI311: the layout holds the very artifact the target names, every blob of it whole, but the raw layers the
    build wrote only into the image's layers."""
    manifest, where = entry.manifest or {}, entry.where
    wanted = reference.rsplit("@", 1)[-1]
    if entry.digest != wanted:
        out.add("OMI311", "manifest", f"is {entry.digest}, not the model artifact {reference}",
                "package the target again: the artifact is copied from the blob store by its digest", where=where)
    verify_blob(out, scan, object_field(manifest, "config"), where, "config")
    layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)]
    for i, layer in enumerate(layers):
        digest = layer.get("digest")
        if isinstance(digest, str) and scan.store.facts(digest) is None and \
                mt.modelpack_packing(str(layer.get("mediaType")))[0] == "raw" and SHA256_DIGEST_RE.match(digest):
            _check_left_in_registry(out, layers, i, image, where)
        else:
            verify_blob(out, scan, layer, where, f"layers[{i}]")


def _check_left_in_registry(out: Collector, layers: Sequence[Mapping[str, Any]], i: int, image: Optional[LayoutScan],
                            where: str) -> None:
    """A file's own bytes (a raw layer) may be left to the registry the artifact came from (the OCI layout spec lets
    blobs be "fulfilled by an external blob store") when the build wrote them into the image's layer of that file:
    that layer must hold them, byte for byte."""
    layer = layers[i]
    digest, size = str(layer["digest"]), layer.get("size")
    paths = {layer_slices.annotated_path(other.get("annotations") or {}) for other in layers
             if other.get("digest") == digest} - {""}
    manifests = [e.manifest for e in image.manifests if e.manifest is not None] if image is not None else []
    blobs = [image.store.path(d) for d in layer_slices.uncompressed_layers(manifests)
             if image is not None and image.store.facts(d) is not None]
    found = layer_slices.find_file(blobs, size, paths) if isinstance(size, int) else None
    fix = "package the target again: a raw layer left out of the copy is the data of the image's layer of its file"
    if found is None:
        out.add("OMI311", f"layers[{i}].digest", f"blob {digest} is missing from blobs/sha256, and no uncompressed "
                f"layer of the image holds {', '.join(sorted(paths)) or 'its file'}", fix, where=where)
    elif layer_slices.slice_sha256(found[0], found[1], int(cast(int, size))) != digest:
        out.add("OMI311", f"layers[{i}].digest", f"blob {digest} is missing from blobs/sha256, and the image's layer "
                f"holding {', '.join(sorted(paths)) or 'its file'} has other bytes", fix, where=where)


def _check_artifact(out: Collector, scan: LayoutScan, entry: ManifestEntry, expect: Expectations,
                    image_digests: Optional[Set[str]], image_name: str) -> None:
    manifest, where = entry.manifest or {}, entry.where
    if manifest.get("artifactType") != mt.MODELPACK_ARTIFACT:
        out.add("OMI307", "artifactType", f"is {_shown(manifest.get('artifactType'))}, not the ModelPack artifact type",
                f"set artifactType to {mt.MODELPACK_ARTIFACT}", where=where)
    config_descriptor = object_field(manifest, "config")
    if config_descriptor.get("mediaType") != mt.MODELPACK_CONFIG:
        shown = _shown(config_descriptor.get("mediaType"))
        out.add("OMI307", "config.mediaType", f"is {shown}, not the ModelPack config type",
                f"use {mt.MODELPACK_CONFIG}", where=where)
    check_run_id_annotation(out, object_field(manifest, "annotations"), expect, where)
    layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)]
    present = [verify_blob(out, scan, layer, where, f"layers[{i}]") for i, layer in enumerate(layers)]
    _check_layers(out, layers, where, expect, image_digests, image_name)
    if not verify_blob(out, scan, config_descriptor, where, "config"):
        return
    config_where = scan.where("config", str(config_descriptor["digest"]))
    config = scan.read_json(out, "OMI301", str(config_descriptor["digest"]), config_where)
    if config is None:
        return
    for field_path, problem, fix in schemas.schema_errors(schemas.MODELPACK_CONFIG, config):
        out.add("OMI301", field_path, problem, fix, where=config_where)
    model_config = object_field(config, "config")
    param_size = model_config.get("paramSize")
    if isinstance(param_size, str) and not PARAM_SIZE_RE.match(param_size):
        out.add("OMI302", "config.paramSize", f"{param_size!r} has the wrong form",
                r"write a number and a unit letter, e.g. 8b or 1.5m, matching ^\d+(\.\d)?[QqTtBbMmKk]$",
                where=config_where)
    _check_diff_ids(out, scan, layers, present, config, config_where)


def _check_layers(out: Collector, layers: Sequence[Mapping[str, Any]], where: str, expect: Expectations,
                  image_digests: Optional[Set[str]], image_name: str) -> None:
    filepaths = set()
    for i, layer in enumerate(layers):
        media_type = layer.get("mediaType")
        if not isinstance(media_type, str) or not LAYER_MEDIA_TYPE_RE.match(media_type):
            out.add("OMI306", f"layers[{i}].mediaType", f"{media_type!r} is not a ModelPack layer type",
                    "use application/vnd.cncf.model.{weight,weight.config,doc,code,dataset}.v1.{raw,tar,tar+gzip,"
                    "tar+zstd}", where=where)
        annotations = object_field(layer, "annotations")
        filepath = annotations.get(mt.ANNOTATION_MODEL_FILEPATH)
        if not isinstance(filepath, str) or not filepath:
            out.add("OMI305", f"layers[{i}].annotations[{mt.ANNOTATION_MODEL_FILEPATH}]", "is missing",
                    "annotate every layer with the file's path; KitOps and modctl need it", where=where)
        else:
            filepaths.add(posixpath.normpath(filepath))
        digest = layer.get("digest")
        if image_digests is not None and isinstance(digest, str) and digest not in image_digests:
            out.add("OMI308", f"layers[{i}].digest", f"{digest} is not a layer of the image {image_name}",
                    "build the artifact from the image's model layers so both share the blobs", where=where)
    if expect.files is None or expect.model_name is None:
        return
    for rel in expect.files:
        path = posixpath.normpath(posixpath.join(MODELS_DIR, expect.model_name, rel))
        if path not in filepaths:
            out.add("OMI309", "layers", f"no layer has {mt.ANNOTATION_MODEL_FILEPATH}={path}, the model file {rel}",
                    "rebuild the artifact with one layer per model file", where=where)


MODELPACK_DIFF_IDS = DiffIdWording("OMI304", "modelfs.diffIds", "give one diffId per layer, in layer order",
                                   "use .raw, .tar or .tar+gzip layers",
                                   "rebuild the artifact so diffIds follow its layers, in order")


def _check_diff_ids(out: Collector, scan: LayoutScan, layers: Sequence[Mapping[str, Any]], present: Sequence[bool],
                    config: Mapping[str, Any], where: str) -> None:
    diff_ids = object_field(config, "modelfs").get("diffIds")
    if not isinstance(diff_ids, list):
        return  # OMI301 reports it
    for i, diff_id in enumerate(diff_ids):
        if isinstance(diff_id, str) and not SHA256_DIGEST_RE.match(diff_id):
            out.add("OMI303", f"modelfs.diffIds[{i}]", f"{diff_id!r} is not a sha256 digest",
                    "write sha256:<64 lowercase hex>", where=where)
    check_diff_ids(out, scan, layers, present, diff_ids, MODELPACK_DIFF_IDS, where)
