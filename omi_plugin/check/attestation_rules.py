"""Attestation rules (OMI501-507): the SBOM, provenance and signature referrers `pants package` wrote beside the image.

Each referrer must name this build's image or model artifact as its subject; the SBOM must be valid SPDX 2.3 and
list exactly the Python distributions the image's dependency layer holds (read from the layer's `.dist-info`
directories); the provenance must be a SLSA v1 statement whose subjects are the image and the model artifact.
With `[omi].verify_key`, every signature must verify with that key, the image, the model files and the provenance
must all be signed, and the model files' signature must list exactly the files of the model artifact.
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
import tarfile
from typing import Any, Dict, Mapping, Optional, Set, cast

import jsonschema

from omi_contract.image import DEPENDENCY_LAYER_NOTE, SITE_PACKAGES_DIR
from omi_contract.violation import Collector
from omi_plugin.check.json_fields import object_field
from omi_plugin.check.layout_rules import LayoutScan, ManifestEntry, verify_blob
from omi_plugin.oci import compression, layer_slices
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.hashing import stream_sha256
from omi_plugin.supply_chain import provenance, sbom, signing

FIX = "run `pants package` for the target again"
_DIST_INFO_RE = re.compile(r"^(?P<name>[^/]+?)-(?P<version>[^-/]+)\.dist-info$")


def _digests(scan: Optional[LayoutScan]) -> Set[str]:
    return {e.digest for e in scan.manifests if e.manifest is not None} if scan else set()


def check_attestations(out: Collector, scan: LayoutScan, image: Optional[LayoutScan],
                       model: Optional[LayoutScan], verify_key: Optional[bytes] = None,
                       foreign: Optional[LayoutScan] = None) -> None:
    """`model`: the model artifact this build made, or None when the model came from a registry artifact,
    `foreign` (the provenance then speaks of the image alone; the model files' signature refers to that artifact)."""
    image_digests, model_digests = _digests(image), _digests(model)
    foreign_digests = _digests(foreign)
    # A several-platform build: the index is a subject too, and each platform's image has its own SBOM.
    indexes = {i.digest: set(i.children) for i in image.indexes} if image else {}
    products = image_digests | set(indexes)
    sbom_subjects: Set[str] = set()
    attested: Set[str] = set()  # subjects of provenance statements
    signed_images: Set[str] = set()  # subjects of image signatures
    kinds: Dict[str, int] = {}
    public_key = None
    if verify_key is not None:
        try:
            public_key = signing.load_public_key(verify_key, "[omi].verify_key")
        except signing.SigningError as e:
            out.add("OMI505", "(key)", str(e), "point [omi].verify_key at the PEM public key of the signing key",
                    where=scan.name)
            return
    signed: Set[str] = set()
    unreadable = 0  # signatures already reported: what is missing because of them is not reported again
    for entry in scan.manifests:
        manifest = entry.manifest
        if manifest is None:
            continue
        subject = object_field(manifest, "subject").get("digest")
        if subject not in products | model_digests | foreign_digests:
            out.add("OMI501", "subject.digest", f"is {subject!r}, neither the image nor the model artifact of this "
                    "build", FIX, where=entry.where)
        artifact_type = manifest.get("artifactType")
        layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)]
        if artifact_type not in (mt.SPDX_JSON, mt.IN_TOTO_JSON, signing.BUNDLE_MEDIA_TYPE) or len(layers) != 1:
            out.add("OMI501", "artifactType", f"is {artifact_type!r} with {len(layers)} layer(s), not an SBOM "
                    f"({mt.SPDX_JSON}), a provenance statement ({mt.IN_TOTO_JSON}) or a signature bundle "
                    f"({signing.BUNDLE_MEDIA_TYPE}) of one layer", FIX, where=entry.where)
            continue
        if not verify_blob(out, scan, layers[0], entry.where, "layers[0]"):
            continue
        payload_where = scan.where("payload", str(layers[0]["digest"]))
        if artifact_type == signing.BUNDLE_MEDIA_TYPE:
            statement = _signed_statement(out, scan, str(layers[0]["digest"]), public_key, payload_where)
            if statement is None:
                unreadable += 1
                continue
            predicate = statement.get("predicateType")
            signed.add(str(predicate))
            if predicate == provenance.SLSA_PROVENANCE_V1:
                kinds[mt.IN_TOTO_JSON] = kinds.get(mt.IN_TOTO_JSON, 0) + 1
                attested.add(str(subject))
                _check_provenance(out, statement, payload_where, entry, image_digests, model_digests, indexes)
            elif predicate == signing.IMAGE_SIGNATURE_PREDICATE:
                signed_images.add(str(subject))
                named = provenance.subject_digests(statement)
                if named != [subject] or subject not in products:
                    out.add("OMI507", "subject", f"names {', '.join(named) or 'nothing'}, not the image "
                            f"({', '.join(sorted(products))})", FIX, where=payload_where)
            elif predicate == signing.MODEL_SIGNING_PREDICATE:
                if model is not None or foreign is not None:
                    _check_model_signature(out, statement, payload_where, model_file_digests(model) if model
                                           else artifact_file_digests(cast(LayoutScan, foreign)))
            else:
                out.add("OMI501", "predicateType", f"is {predicate!r}, which omi does not sign", FIX,
                        where=payload_where)
            continue
        kinds[artifact_type] = kinds.get(artifact_type, 0) + 1
        rule = "OMI502" if artifact_type == mt.SPDX_JSON else "OMI504"
        document = scan.read_json(out, rule, str(layers[0]["digest"]), payload_where)
        if document is None:
            continue
        if artifact_type == mt.SPDX_JSON:
            sbom_subjects.add(str(subject))
            _check_sbom(out, document, payload_where, image, str(subject))
        else:
            attested.add(str(subject))
            _check_provenance(out, document, payload_where, entry, image_digests, model_digests, indexes)
    if not kinds.get(mt.SPDX_JSON):
        out.add("OMI501", "manifests", "no SBOM refers to the image", FIX, where=scan.name)
    elif indexes:
        for digest in sorted(image_digests - sbom_subjects):
            out.add("OMI501", "manifests", f"no SBOM refers to the image {digest} of the index", FIX, where=scan.name)
    if unreadable:
        return
    # An index: each platform's image and the index itself have their provenance, and (signed) their signature.
    for digest in sorted(products - attested) if indexes else []:
        out.add("OMI501", "manifests", f"no provenance refers to {digest}, "
                f"{'the index' if digest in indexes else 'an image of the index'}", FIX, where=scan.name)
    if indexes and public_key is not None:
        for digest in sorted(products - signed_images):
            out.add("OMI505", "manifests", f"{digest}, {'the index' if digest in indexes else 'an image of the index'}"
                    ", is not signed, though [omi].verify_key asks for signatures",
                    "set [omi].signing_key and run `pants package` again", where=scan.name)
    if kinds.get(mt.IN_TOTO_JSON, 0) < (1 if model is None else 2):
        out.add("OMI501", "manifests", "the provenance does not refer to both the image and the model artifact",
                FIX, where=scan.name)
    if public_key is not None:
        missing = [what for what, predicate in (("the image", signing.IMAGE_SIGNATURE_PREDICATE),
                                                ("the model files", signing.MODEL_SIGNING_PREDICATE),
                                                ("the provenance", provenance.SLSA_PROVENANCE_V1))
                   if predicate not in signed and (model is not None or foreign is not None
                                                   or predicate != signing.MODEL_SIGNING_PREDICATE)]
        if missing:
            out.add("OMI505", "manifests", f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not signed, "
                    "though [omi].verify_key asks for signatures", "set [omi].signing_key and run `pants package` "
                    "again", where=scan.name)


def _signed_statement(out: Collector, scan: LayoutScan, digest: str, public_key: Any,
                      where: str) -> Optional[Dict[str, Any]]:
    """The statement of a signature bundle: verified when a key is configured, else only read."""
    try:
        bundle = scan.store.read_small(digest)
        if public_key is not None:
            return signing.verify(bundle, public_key)
        envelope = json.loads(bundle)["dsseEnvelope"]
        statement = json.loads(base64.b64decode(envelope["payload"]))
        return statement if isinstance(statement, dict) else None
    except signing.SigningError as e:
        out.add("OMI505", "dsseEnvelope", str(e), "sign again with the key whose public half [omi].verify_key names "
                "(`pants package`)", where=where)
    except (OSError, ValueError, KeyError, TypeError):
        out.add("OMI505", "dsseEnvelope", "is not a readable signature bundle", FIX, where=where)
    return None


def model_file_digests(model: LayoutScan) -> Dict[str, str]:
    """(path as unpacked -> sha256 hex) of every file in the model artifact's layers."""
    found: Dict[str, str] = {}
    for entry in model.manifests:
        for layer in (entry.manifest or {}).get("layers") or []:
            if not isinstance(layer, dict) or model.store.facts(str(layer.get("digest"))) is None:
                continue
            found.update(_tar_file_digests(model.store.path(str(layer["digest"])), str(layer.get("mediaType"))))
    return found


def artifact_file_digests(artifact: LayoutScan) -> Dict[str, str]:
    """(path in the artifact -> sha256 hex) of every file of a registry artifact: a raw layer is one file, named by
    its annotation, whose digest is the layer's (its blob may be left to the registry); a tar layer holds files."""
    found: Dict[str, str] = {}
    for entry in artifact.manifests:
        for layer in (entry.manifest or {}).get("layers") or []:
            if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
                continue
            packing, _ = mt.modelpack_packing(str(layer.get("mediaType")))
            name = layer_slices.annotated_path(object_field(layer, "annotations"))
            if packing == "raw" and name:
                found[name] = layer["digest"].split(":", 1)[-1]
            elif packing == "tar" and artifact.store.facts(layer["digest"]) is not None:
                found.update(_tar_file_digests(artifact.store.path(layer["digest"]), str(layer.get("mediaType"))))
    return found


def _tar_file_digests(path: str, media_type: str) -> Dict[str, str]:
    found: Dict[str, str] = {}
    with compression.open_uncompressed(path, media_type) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                found[posixpath.normpath(member.name)] = stream_sha256(extracted)[0].split(":")[1]
    return found


def _check_model_signature(out: Collector, statement: Mapping[str, Any], where: str, actual: Mapping[str, str]) -> None:
    resources = {str(r.get("name")): str(r.get("digest")) for r in
                 (statement.get("predicate") or {}).get("resources") or [] if isinstance(r, dict)}
    for name in sorted(set(resources) | set(actual)):
        if name not in actual:
            out.add("OMI506", "predicate.resources", f"signs {name}, which the model artifact does not hold", FIX,
                    where=where)
        elif name not in resources:
            out.add("OMI506", "predicate.resources", f"does not sign {name}, a file of the model artifact", FIX,
                    where=where)
        elif resources[name] != actual[name]:
            out.add("OMI506", "predicate.resources", f"signs {name} with sha256 {resources[name][:12]}…, the file in "
                    f"the model artifact has {actual[name][:12]}…", FIX, where=where)


def _check_sbom(out: Collector, document: Dict[str, Any], where: str, image: Optional[LayoutScan],
                subject: Optional[str] = None) -> None:
    for error in sorted(jsonschema.Draft7Validator(sbom.schema()).iter_errors(document), key=lambda e: list(e.path)):
        field = ".".join(str(p) for p in error.absolute_path) or "(document)"
        out.add("OMI502", field, f"is not valid SPDX 2.3: {error.message}", FIX, where=where)
    installed = dependency_layer_distributions(image, subject) if image else None
    if installed is None:
        return
    listed = sbom.python_distributions_in(document)
    for name, version in sorted(installed.items()):
        if listed.get(name) != version:
            shown = f"lists {name} {listed[name]}" if name in listed else f"does not list {name}"
            out.add("OMI503", "packages", f"{shown}, but the dependency layer holds {name} {version}", FIX,
                    where=where)
    for name in sorted(set(listed) - set(installed)):
        out.add("OMI503", "packages", f"lists {name} {listed[name]}, which the dependency layer does not hold", FIX,
                where=where)


def dependency_layer_distributions(image: LayoutScan, digest: Optional[str] = None) -> Optional[Dict[str, str]]:
    """(PEP 503 name -> version) of every `.dist-info` directory in the image's dependency layer (of the image
    `digest` names, in a layout of several), or None when the image has no such layer (the image rules report
    why)."""
    for entry in image.manifests:
        if digest is not None and entry.digest != digest and len(image.manifests) > 1:
            continue
        manifest = entry.manifest or {}
        config_digest = object_field(manifest, "config").get("digest")
        layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)]
        if not isinstance(config_digest, str) or image.store.facts(config_digest) is None:
            continue
        try:
            history = json.loads(image.store.read_small(config_digest)).get("history") or []
        except (OSError, ValueError):
            continue
        notes = [h.get("created_by") for h in history if isinstance(h, dict)]
        if DEPENDENCY_LAYER_NOTE not in notes or len(notes) != len(layers):
            continue
        layer = layers[notes.index(DEPENDENCY_LAYER_NOTE)]
        path = image.store.path(str(layer.get("digest")))
        return _dist_infos(path, str(layer.get("mediaType")))
    return None


def _dist_infos(path: str, media_type: str) -> Dict[str, str]:
    """Every `<name>-<version>.dist-info` directly under site-packages, whether the tar lists the directory or only
    the files in it."""
    found: Dict[str, str] = {}
    site = SITE_PACKAGES_DIR.strip("/") + "/"
    with compression.open_uncompressed(path, media_type) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            name = member.name[2:] if member.name.startswith("./") else member.name
            if not name.startswith(site):
                continue
            match = _DIST_INFO_RE.match(name[len(site):].split("/", 1)[0])
            if match:
                found[sbom.canonical_pypi_name(match["name"])] = match["version"]
    return found


def _check_provenance(out: Collector, document: Mapping[str, Any], where: str, entry: ManifestEntry,
                      image_digests: Set[str], model_digests: Set[str],
                      indexes: Optional[Mapping[str, Set[str]]] = None) -> None:
    if document.get("_type") != provenance.STATEMENT_TYPE or document.get("predicateType") != \
            provenance.SLSA_PROVENANCE_V1:
        out.add("OMI504", "predicateType", f"is {document.get('predicateType')!r} in a {document.get('_type')!r}, not "
                f"SLSA provenance v1 in an in-toto v1 statement", FIX, where=where)
        return
    subjects = set(provenance.subject_digests(document))
    # What one statement may be about: one image and the model artifact; or an index, each of its images and the
    # model artifact.
    groups = [{image} | model_digests for image in sorted(image_digests)] if indexes else [image_digests | model_digests]
    groups += [{index} | children | model_digests for index, children in sorted((indexes or {}).items())]
    if subjects not in groups:
        expected = next((g for g in groups if g & subjects - model_digests), groups[0] if groups else model_digests)
        out.add("OMI504", "subject", f"names {', '.join(sorted(subjects)) or 'nothing'}, not the image and the model "
                f"artifact ({', '.join(sorted(expected))})", FIX, where=where)
    referred = object_field(entry.manifest or {}, "subject").get("digest")
    if referred is not None and referred not in subjects:
        out.add("OMI504", "subject", f"does not name {referred}, the artifact this statement is attached to", FIX,
                where=where)
