"""Test support: build a small, valid OMI image layout and ModelPack layout, and tamper with copies of them.

The layouts are assembled with the project's own writer (`omi_plugin.oci` + `omi_image.assemble`) from a few
tiny files, so the tests never depend on `dist/`. Tampering is data-driven (tests/check_fixtures/*/*.yaml):
each op edits a JSON document or a blob and, unless told otherwise, re-links digests up to index.json so that
only the rule under test fires.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from omi_contract.image import DEPENDENCY_LAYER_NOTE, RECORD_FILE
from omi_plugin.metadata.model_yaml import ModelMetadata, load_model_yaml
from omi_plugin.oci import canonical_json, compression
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.descriptor import Descriptor, sha256_digest
from omi_plugin.oci.hashing import stream_sha256
from omi_plugin.oci.image import Layer, RuntimeConfig
from omi_plugin.oci.layout import oci_layout_bytes
from omi_plugin.oci.platforms import AMD64, Platform
from omi_plugin.oci.tar import Entry, write_layer
from omi_plugin.omi_image import AssembledImage, BaseImageConfig, assemble, assemble_index, model_layer_path

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES_DIR = os.path.join(REPO_ROOT, "tests", "check_fixtures")
TARGET = "tests/check:tiny"
MODEL_YAML_PATH = "tests/check/model.yaml"
IMAGE_NAME = "tiny.oci"
MODELPACK_NAME = "tiny.modelpack.oci"
MODEL_YAML = """\
name: tiny
version: 1.0.0
run_id: tiny-run-1
format: sklearn
files: [model.joblib, vocab/labels.txt]
inputs: [{name: x, datatype: FP32, shape: [-1, 2]}]
outputs: [{name: predict, datatype: INT64, shape: [-1]}]
interfaces: [kfserving.v1, kfserving.v2, modzy.v2]
samples:
  - inputs: {x: [[0, 1]]}
    outputs: {predict: [1]}
"""
MODEL_FILES = {"model.joblib": b"not really a joblib, but bytes all the same\n", "vocab/labels.txt": b"0\n1\n"}
SOURCE_FILES = ["omi_runtime/__init__.py", "omi_runtime/handlers/__init__.py", "omi_runtime/handlers/sklearn.py"]
DISTRIBUTIONS = ("dep-1.0", "Other_Dist-2.5")  # the dependency layer's .dist-info directories
BASE = BaseImageConfig("tests/base", sha256_digest(b"base manifest"),
                       RuntimeConfig(env=(("PATH", "/usr/bin:/bin"),)), "/usr/bin/python3.11")


def metadata(text: str = MODEL_YAML) -> ModelMetadata:
    return load_model_yaml(text, MODEL_YAML_PATH)


def _layer(entries: List[Entry], created_by: str) -> Tuple[Layer, bytes]:
    buffer = io.BytesIO()
    info = write_layer(entries, buffer)
    return Layer(Descriptor(mt.LAYER_TAR, info.digest, info.size), info.digest, created_by), buffer.getvalue()


def _write_blob(root: str, data: bytes) -> str:
    digest = sha256_digest(data)
    path = os.path.join(root, "blobs", "sha256", digest.split(":", 1)[1])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return digest


def _write_layout(root: str, blobs: List[bytes], index_json: bytes) -> None:
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "wb") as f:
        f.write(oci_layout_bytes())
    with open(os.path.join(root, "index.json"), "wb") as f:
        f.write(index_json)
    for data in blobs:
        _write_blob(root, data)


def build_layouts(directory: str, spec_version: str = "1.0",
                  platforms: Sequence[Platform] = ()) -> Tuple[str, str]:
    """A valid image layout and ModelPack layout for MODEL_YAML under `directory`; returns their paths. With
    `platforms`, the image layout holds an image index of one image per platform (each with its own base and
    dependency layers), as a several-platform `pants package` writes it."""
    meta = metadata()
    model_layers, model_bytes = [], []
    for rel, data in MODEL_FILES.items():
        layer, raw = _layer([Entry.file(model_layer_path(meta, rel), data)], f"omi: model file {rel}")
        model_layers.append((rel, layer))
        model_bytes.append(raw)
    record, record_bytes = _layer([Entry.file(model_layer_path(meta, RECORD_FILE), meta.record_json())],
                                  "omi: model record omi-model.json")
    app, app_bytes = _layer([Entry.file(f"opt/omi/app/{p}", b"# source\n") for p in SOURCE_FILES], "app")
    image_blobs: List[bytes] = []
    images: List[Tuple[Platform, AssembledImage]] = []
    for platform in platforms or (AMD64,):
        arch = f"# {platform.architecture}\n".encode() if platforms else b""  # each platform's own bytes
        base, base_bytes = _layer([Entry.file("etc/os-release", b"ID=tests\n" + arch)], "base")
        deps, deps_bytes = _layer([Entry.file("opt/omi/site-packages/dep.py", b"X = 1\n" + arch),
                                   *(Entry.file(f"opt/omi/site-packages/{d}.dist-info/METADATA",
                                                b"Metadata-Version: 2.1\n") for d in DISTRIBUTIONS)],
                                  DEPENDENCY_LAYER_NOTE)
        image = assemble(meta, dataclasses.replace(BASE, platform=platform) if platforms else BASE, [base],
                         [deps, app], model_layers, record, http_port="8080", spec_version=spec_version,
                         extra_tags=[])
        images.append((platform, image))
        image_blobs += [base_bytes, deps_bytes, image.config.data, image.manifest.data]
    image = images[0][1]
    image_dir, modelpack_dir = os.path.join(directory, IMAGE_NAME), os.path.join(directory, MODELPACK_NAME)
    index_json = image.index_json
    if platforms:
        index = assemble_index(images)
        image_blobs.append(index.index.data)
        index_json = index.index_json
    _write_layout(image_dir, [*image_blobs, *model_bytes, record_bytes, app_bytes], index_json)
    _write_layout(modelpack_dir, [*model_bytes, record_bytes, image.modelpack_config.data,
                                  image.modelpack_manifest.data], image.modelpack_index_json)
    return image_dir, modelpack_dir


# --- tampering --------------------------------------------------------------------------------------------------

def _blob_path(root: str, digest: str) -> str:
    return os.path.join(root, "blobs", "sha256", digest.split(":", 1)[1])


def _read_json(path: str) -> Any:
    with open(path, "rb") as f:
        return json.load(f)


def _pointer(path: str) -> List[Any]:
    return [int(p) if p.isdigit() else p for p in path.split("/") if p != ""]


def _set(document: Any, path: str, value: Any) -> None:
    parts = _pointer(path)
    for part in parts[:-1]:
        document = document[part]
    document[parts[-1]] = value


def _repoint_index(root: str, old: str, new: str, size: int) -> None:
    """Every index.json entry naming manifest `old` names `new` instead."""
    index_path = os.path.join(root, "index.json")
    index = _read_json(index_path)
    for entry in index["manifests"]:
        if entry["digest"] == old:
            entry["digest"], entry["size"] = new, size
    with open(index_path, "wb") as f:
        f.write(canonical_json.dumps(index))


def _delete(document: Any, path: str) -> None:
    parts = _pointer(path)
    for part in parts[:-1]:
        document = document[part]
    del document[parts[-1]]


@dataclass
class Layouts:
    """Where the two layouts of one test are, with helpers to find and rewrite their documents."""

    image: str
    modelpack: str

    def root(self, prefix: str) -> str:
        return self.modelpack if prefix == "mp_" else self.image

    def manifest_digest(self, prefix: str = "") -> str:
        return str(_read_json(os.path.join(self.root(prefix), "index.json"))["manifests"][0]["digest"])

    def manifest(self, prefix: str = "") -> Dict[str, Any]:
        return _read_json(_blob_path(self.root(prefix), self.manifest_digest(prefix)))

    def relink_manifest(self, prefix: str, manifest: Mapping[str, Any], follow_subject: bool = True) -> None:
        """Write a new manifest blob and point every index.json entry at it (and, for the model artifact, the
        image's `subject`, unless the test is about that link)."""
        root = self.root(prefix)
        data = canonical_json.dumps(manifest)
        old = self.manifest_digest(prefix)
        new = _write_blob(root, data)
        if new != old:
            os.remove(_blob_path(root, old))
        _repoint_index(root, old, new, len(data))
        image = self.manifest("")
        if prefix == "mp_" and follow_subject and image.get("subject", {}).get("digest") == old:
            image["subject"] = {**image["subject"], "digest": new, "size": len(data)}
            self.relink_manifest("", image)

    def replace_blob(self, prefix: str, field: str, data: bytes, media_type: Optional[str] = None) -> None:
        """Put `data` where the manifest's `field` (config or layers/N) points, fixing the descriptor."""
        manifest = self.manifest(prefix)
        descriptor = manifest
        for part in _pointer(field):
            descriptor = descriptor[part]
        old = descriptor["digest"]
        new = _write_blob(self.root(prefix), data)
        if new != old and old not in json.dumps(self.manifest("" if prefix else "mp_")):
            os.remove(_blob_path(self.root(prefix), old))
        descriptor["digest"], descriptor["size"] = new, len(data)
        if media_type:
            descriptor["mediaType"] = media_type
        self.relink_manifest(prefix, manifest)

    def blob_of(self, name: str) -> str:
        """Path of a named blob: config, layers/N, mp_config, mp_layers/N."""
        prefix = "mp_" if name.startswith("mp_") else ""
        descriptor: Any = self.manifest(prefix)
        for part in _pointer(name[len(prefix):]):
            descriptor = descriptor[part]
        return _blob_path(self.root(prefix), descriptor["digest"])


def apply(layouts: Layouts, op: Mapping[str, Any]) -> None:
    """One tampering step from a fixture file."""
    kind = op["op"]
    if kind == "edit":
        _edit(layouts, op)
    elif kind == "flip_byte":
        path = layouts.blob_of(op["blob"])
        with open(path, "r+b") as f:
            f.seek(op.get("offset", 0))
            byte = f.read(1)
            f.seek(op.get("offset", 0))
            f.write(bytes([byte[0] ^ 0xFF]))
    elif kind == "remove_blob":
        os.remove(layouts.blob_of(op["blob"]))
    elif kind == "compress_layer":
        # The layer compressed with omi's own compressor; `append` changes the bytes first (a diff-id mismatch).
        prefix = "mp_" if op["blob"].startswith("mp_") else ""
        field = op["blob"][len(prefix):]
        with open(layouts.blob_of(op["blob"]), "rb") as f:
            raw = f.read() + op.get("append", "").encode()
        algorithm = op.get("algorithm", compression.GZIP)
        media_type = op.get("media_type", compression.with_algorithm(mt.LAYER_TAR, algorithm))
        layouts.replace_blob(prefix, field, compression.compress_bytes(raw, compression.Setting(algorithm)),
                             media_type)
    elif kind == "write_file":
        root = layouts.root("mp_" if op.get("layout") == "modelpack" else "")
        with open(os.path.join(root, op["path"]), "w", encoding="utf-8") as f:
            f.write(op["content"])
    elif kind == "remove_file":
        root = layouts.root("mp_" if op.get("layout") == "modelpack" else "")
        os.remove(os.path.join(root, op["path"]))
    else:
        raise ValueError(f"unknown tamper op {kind!r}")


def _edit(layouts: Layouts, op: Mapping[str, Any]) -> None:
    """Edit a JSON document (index, manifest, config, with mp_ prefix for the ModelPack layout)."""
    target = op["doc"]
    prefix = "mp_" if target.startswith("mp_") else ""
    doc_name = target[len(prefix):]
    root = layouts.root(prefix)
    if doc_name == "index":
        path = os.path.join(root, "index.json")
        document = _read_json(path)
    elif doc_name == "image_index":  # the image index index.json names, in a layout of several platforms
        path = _blob_path(root, layouts.manifest_digest(prefix))
        document = _read_json(path)
    elif doc_name == "manifest":
        document = layouts.manifest(prefix)
    else:
        path = layouts.blob_of(target)
        document = _read_json(path)
    for pointer, value in (op.get("set") or {}).items():
        _set(document, pointer, value)
    for pointer in op.get("delete") or []:
        _delete(document, pointer)
    data = canonical_json.dumps(document)
    if doc_name == "index":
        with open(path, "wb") as f:
            f.write(data)
    elif doc_name == "image_index":
        old, new = layouts.manifest_digest(prefix), _write_blob(root, data)
        os.remove(path)
        _repoint_index(root, old, new, len(data))
    elif not op.get("relink", True):
        # Rewrite in place: the stored bytes no longer match the digest that names them.
        path = _blob_path(root, layouts.manifest_digest(prefix)) if doc_name == "manifest" else path
        with open(path, "wb") as f:
            f.write(data)
    elif doc_name == "manifest":
        layouts.relink_manifest(prefix, document, follow_subject=op.get("follow_subject", True))
    else:
        layouts.replace_blob(prefix, doc_name, data)


def placeholders(layouts: Layouts) -> Dict[str, str]:
    """Values fixture expectations refer to as {name}, read from the (tampered) layouts."""
    values = {"target": TARGET, "model_yaml": MODEL_YAML_PATH, "image": IMAGE_NAME, "modelpack": MODELPACK_NAME}
    for prefix, name in (("", IMAGE_NAME), ("mp_", MODELPACK_NAME)):
        try:
            digest = layouts.manifest_digest(prefix)
            manifest = _read_json(_blob_path(layouts.root(prefix), digest))
            if manifest.get("mediaType") == mt.INDEX:  # a layout of several platforms: the index, its images
                values[f"{prefix}index"] = f"{name} index {digest[:19]}"
                for i, child in enumerate(manifest.get("manifests") or []):
                    values[f"{prefix}image{i}_digest"] = child["digest"]
                continue
            values[f"{prefix}manifest"] = f"{name} manifest {digest[:19]}"
            values[f"{prefix}manifest_digest"] = digest
            if isinstance(manifest.get("subject"), dict):
                values[f"{prefix}subject"] = manifest["subject"].get("digest", "")
            values[f"{prefix}config"] = f"{name} config {manifest['config']['digest'][:19]}"
            values[f"{prefix}config_digest"] = manifest["config"]["digest"]
            values[f"{prefix}config_size"] = str(manifest["config"]["size"])
            config_path = _blob_path(layouts.root(prefix), manifest["config"]["digest"])
            if os.path.exists(config_path):
                with open(config_path, "rb") as f:
                    data = f.read()
                values[f"{prefix}config_sha"] = "sha256:" + hashlib.sha256(data).hexdigest()
                values[f"{prefix}config_bytes"] = str(len(data))
            for i, layer in enumerate(manifest["layers"]):
                values[f"{prefix}layer{i}"] = layer["digest"]
                path = _blob_path(layouts.root(prefix), layer["digest"])
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        data = f.read()
                    values[f"{prefix}layer{i}_sha"] = "sha256:" + hashlib.sha256(data).hexdigest()
                    values[f"{prefix}layer{i}_size"] = str(len(data))
                    with compression.open_uncompressed(path, layer["mediaType"]) as plain:
                        values[f"{prefix}layer{i}_uncompressed"] = stream_sha256(plain)[0]
            if os.path.exists(config_path):
                for i, diff_id in enumerate(_read_json(config_path).get("rootfs", {}).get("diff_ids", [])):
                    values[f"{prefix}diff_id{i}"] = diff_id
        except (OSError, ValueError, KeyError, IndexError):
            pass  # a fixture that breaks these documents does not refer to them
    return values


ATTESTATIONS_NAME = "tiny.attestations.oci"


def build_attestations(directory: str, image_dir: str, modelpack_dir: str,
                       distributions: Tuple[str, ...] = DISTRIBUTIONS, key: Any = None,
                       model_files: Optional[Dict[str, bytes]] = None) -> str:
    """The SBOM and provenance referrers of two `build_layouts` layouts, as `pants package` writes them; with a
    `key`, signed (and the model files' signature made over `model_files`, by default the real ones)."""
    from omi_plugin.supply_chain import provenance, referrers, sbom, signing

    def top(root: str) -> Descriptor:
        return Descriptor.from_json(_read_json(os.path.join(root, "index.json"))["manifests"][0])

    image, model = top(image_dir), top(modelpack_dir)
    image = Descriptor(image.media_type, image.digest, image.size)
    model = Descriptor(model.media_type, model.digest, model.size)
    python = tuple(sbom.PythonDistribution(d.rsplit("-", 1)[0], d.rsplit("-", 1)[1], f"{d}-py3-none-any.whl")
                   for d in distributions)
    facts = provenance.BuildFacts(TARGET, "tiny-run-1", "tiny", "1.0.0", (), (), None, (("omi", "0.0.0"),))

    def sbom_of(subject: Descriptor) -> referrers.Referrer:
        contents = sbom.ImageContents("tests/tiny", "tiny-run-1", subject.digest, BASE.name, BASE.manifest_digest,
                                      (), python, (), "0.0.0")
        return referrers.referrer(mt.SPDX_JSON, sbom.spdx_bytes(sbom.spdx_document(contents, ["Tool: tests"])),
                                  subject)

    def statement_of(*subjects: Descriptor) -> bytes:
        return json.dumps(provenance.statement([provenance.Subject("tests/tiny", s.digest) for s in subjects],
                                               facts)).encode()

    if image.media_type == mt.INDEX:  # each platform's image as a one-platform build attests it, and the index
        index = image
        images = [Descriptor.from_json(m) for m in _read_json(_blob_path(image_dir, index.digest))["manifests"]]
        made = [sbom_of(Descriptor(i.media_type, i.digest, i.size)) for i in images]
        for i in images:
            plain = Descriptor(i.media_type, i.digest, i.size)
            made += [referrers.referrer(mt.IN_TOTO_JSON, statement_of(plain, model), subject)
                     for subject in (plain, model)]
        made.append(referrers.referrer(mt.IN_TOTO_JSON, statement_of(index, *images, model), index))
        root = os.path.join(directory, ATTESTATIONS_NAME)
        _write_layout(root, [data for _, data in referrers.layout_files(made)], referrers.layout_index(made))
        return root
    statement = statement_of(image, model)
    made = [sbom_of(image)]
    if key is None:
        made += [referrers.referrer(mt.IN_TOTO_JSON, statement, image),
                 referrers.referrer(mt.IN_TOTO_JSON, statement, model)]
    else:
        meta = metadata()
        files = {**(model_files if model_files is not None else MODEL_FILES)}
        signed_files = [(model_layer_path(meta, rel), hashlib.sha256(data).hexdigest()) for rel, data in files.items()]
        signed_files.append((model_layer_path(meta, RECORD_FILE), hashlib.sha256(meta.record_json()).hexdigest()))
        signed_provenance = signing.sign(json.loads(statement), key)
        made += [referrers.referrer(signing.BUNDLE_MEDIA_TYPE, signed_provenance, image),
                 referrers.referrer(signing.BUNDLE_MEDIA_TYPE, signed_provenance, model),
                 referrers.referrer(signing.BUNDLE_MEDIA_TYPE,
                                    signing.sign(signing.image_statement("tests/tiny", image.digest), key), image),
                 referrers.referrer(signing.BUNDLE_MEDIA_TYPE,
                                    signing.sign(signing.model_files_statement("tiny", signed_files), key), model)]
    root = os.path.join(directory, ATTESTATIONS_NAME)
    _write_layout(root, [data for _, data in referrers.layout_files(made)], referrers.layout_index(made))
    return root


def rewrite_referrer_payload(root: str, manifest_digest: str, edit: Any) -> str:
    """Edit the JSON payload of one referrer in a layout of referrers and re-link its manifest and index.json, as
    someone forging an attestation would, so that only its content is wrong. Returns the new manifest digest."""
    manifest_path = _blob_path(root, manifest_digest)
    manifest = _read_json(manifest_path)
    layer = manifest["layers"][0]
    document = _read_json(_blob_path(root, layer["digest"]))
    edit(document)
    data = json.dumps(document).encode()
    layer["digest"], layer["size"] = _write_blob(root, data), len(data)
    manifest_data = canonical_json.dumps(manifest)
    new = _write_blob(root, manifest_data)
    _repoint_index(root, manifest_digest, new, len(manifest_data))
    return new
