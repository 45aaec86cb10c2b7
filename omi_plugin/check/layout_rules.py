"""Layout rules shared by the image and the ModelPack artifact: layout marker, index, manifests, blob integrity,
ref names (OMI200-202, OMI204-206, OMI214-215).

`scan_layout` reports what is wrong and returns what it could read, so the image and ModelPack rules can go on
checking the manifests' content without re-reading anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from omi_contract.violation import Collector
from omi_plugin.check import schemas
from omi_plugin.check.blobs import SHA256_DIGEST_RE, BlobStore
from omi_plugin.check.json_fields import object_field
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.references import TAG_RE

# Nested indexes deeper than this are not followed (a cycle of indexes would otherwise never end).
MAX_INDEX_DEPTH = 4


@dataclass
class ManifestEntry:
    """One image manifest reachable from index.json, with the ref names that point at it."""

    digest: str
    where: str
    refs: List[str] = field(default_factory=list)
    manifest: Optional[Dict[str, Any]] = None
    platform: Optional[Dict[str, Any]] = None  # what the image index listing it says its platform is
    index_where: str = ""  # that index, for messages


@dataclass
class IndexEntry:
    """An image index reachable from index.json: the image manifests it lists, by digest."""

    digest: str
    where: str
    children: List[str] = field(default_factory=list)


@dataclass
class LayoutScan:
    root: str
    name: str
    store: BlobStore
    manifests: List[ManifestEntry] = field(default_factory=list)
    indexes: List[IndexEntry] = field(default_factory=list)

    def platform_images(self, index_digest: str) -> List[str]:
        """The image manifests an index of this layout lists."""
        return next((i.children for i in self.indexes if i.digest == index_digest), [])

    def where(self, kind: str, digest: str) -> str:
        return f"{self.name} {kind} {digest[:19]}"

    def read_json(self, out: Collector, rule: str, digest: str, where: str) -> Optional[Dict[str, Any]]:
        """Parse a present JSON blob, reporting it under `rule` when it is not a JSON object."""
        try:
            value = json.loads(self.store.read_small(digest))
        except (OSError, ValueError) as e:
            out.add(rule, "(document)", f"not readable as JSON: {e}", "rebuild the artifact", where=where)
            return None
        if not isinstance(value, dict):
            out.add(rule, "(document)", "expected a JSON object", "rebuild the artifact", where=where)
            return None
        return value


def verify_blob(out: Collector, scan: LayoutScan, descriptor: Any, where: str, field_path: str) -> bool:
    """OMI204-206: the blob a descriptor names is present, with that digest and size. True if present."""
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
        return False  # the schema rules report malformed descriptors
    digest = descriptor["digest"]
    if not SHA256_DIGEST_RE.match(digest):
        out.add("OMI205", f"{field_path}.digest", f"{digest!r} is not a sha256 digest this checker can verify",
                "use sha256 digests (sha256:<64 lowercase hex>)", where=where)
        return False
    facts = scan.store.facts(digest)
    if facts is None:
        out.add("OMI204", f"{field_path}.digest", f"blob {digest} is missing from blobs/sha256",
                "rebuild the layout; every descriptor's blob must be in it", where=where)
        return False
    if facts.digest != digest:
        out.add("OMI205", f"{field_path}.digest", f"blob content hashes to {facts.digest}, not {digest}",
                "the blob is corrupt or was edited: rebuild the layout", where=where)
    size = descriptor.get("size")
    if isinstance(size, int) and facts.size != size:
        out.add("OMI206", f"{field_path}.size", f"descriptor says {size} bytes, the blob has {facts.size}",
                "rebuild the layout so descriptors match their blobs", where=where)
    return True


def _check_marker(out: Collector, root: str, name: str) -> bool:
    path = os.path.join(root, "oci-layout")
    where = f"{name}/oci-layout"
    try:
        with open(path, "rb") as f:
            marker = json.load(f)
    except FileNotFoundError:
        out.add("OMI200", "(file)", "is missing: not an OCI image layout", "rebuild the layout", where=where)
        return os.path.isdir(root)
    except (OSError, ValueError) as e:
        out.add("OMI200", "(file)", f"is not valid JSON: {e}", "rebuild the layout", where=where)
        return True
    version = marker.get("imageLayoutVersion") if isinstance(marker, dict) else None
    if version != mt.OCI_LAYOUT_VERSION:
        out.add("OMI200", "imageLayoutVersion", f"is {version!r}, not {mt.OCI_LAYOUT_VERSION!r}",
                f'write {{"imageLayoutVersion":"{mt.OCI_LAYOUT_VERSION}"}}', where=where)
    return True


def _schema_violations(out: Collector, rule: str, schema: str, document: Any, where: str) -> None:
    for field_path, problem, fix in schemas.schema_errors(schema, document):
        out.add(rule, field_path, problem, fix, where=where)


def _check_refs(out: Collector, index: Mapping[str, Any], where: str) -> None:
    """OMI214/215 on the ref names (tags) of index.json entries."""
    tags = 0
    for i, entry in enumerate(index.get("manifests") or []):
        annotations = entry.get("annotations") if isinstance(entry, dict) else None
        ref = annotations.get(mt.ANNOTATION_REF_NAME) if isinstance(annotations, dict) else None
        if not isinstance(ref, str):
            continue
        tags += 1
        field_path = f"manifests[{i}].annotations[{mt.ANNOTATION_REF_NAME}]"
        if ref == "latest" or ref.endswith(":latest"):
            out.add("OMI214", field_path, "the ref name is 'latest', which OMI forbids for addressing a model",
                    "tag the image with the model's run id instead", where=where)
        elif not TAG_RE.match(ref.rsplit(":", 1)[-1]):
            out.add("OMI215", field_path, f"{ref!r} is not a valid OCI tag",
                    "use letters, digits, '_', '.', '-' (max 128, not starting with '.' or '-')", where=where)
    if tags == 0:
        out.add("OMI215", "manifests", "no entry has an org.opencontainers.image.ref.name, so the image has no tag",
                "tag the image with the model's run id: set run_id in model.yaml", where=where)


def _walk_index(out: Collector, scan: LayoutScan, index: Mapping[str, Any], where: str, depth: int,
                seen: Dict[str, ManifestEntry], visited: Dict[str, IndexEntry], inherited: List[str]) -> List[str]:
    """Scan the entries of `index`; the image manifests of a nested index carry that index's ref names (a tag names
    every platform's image). Returns the digests of the image manifests it lists."""
    listed: List[str] = []
    for i, entry in enumerate(index.get("manifests") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            continue
        media_type, digest = entry.get("mediaType"), entry["digest"]
        annotations = object_field(entry, "annotations")
        ref = annotations.get(mt.ANNOTATION_REF_NAME)
        refs = [*([ref] if isinstance(ref, str) else []), *inherited]
        if media_type == mt.MANIFEST:
            listed.append(digest)
            if digest in seen:
                seen[digest].refs.extend(r for r in refs if r not in seen[digest].refs)
                continue
            manifest_where = scan.where("manifest", digest)
            platform = entry.get("platform")
            item = ManifestEntry(digest, manifest_where, refs, None, platform if isinstance(platform, dict) else None,
                                 where)
            seen[digest] = item
            scan.manifests.append(item)
            if verify_blob(out, scan, entry, where, f"manifests[{i}]"):
                item.manifest = scan.read_json(out, "OMI202", digest, manifest_where)
                if item.manifest is not None:
                    _schema_violations(out, "OMI202", schemas.IMAGE_MANIFEST, item.manifest, manifest_where)
        elif media_type == mt.INDEX:
            if digest in visited:
                for child in visited[digest].children:
                    seen[child].refs.extend(r for r in refs if r not in seen[child].refs)
                continue
            if depth >= MAX_INDEX_DEPTH:
                continue
            nested_where = scan.where("index", digest)
            found = visited[digest] = IndexEntry(digest, nested_where)
            scan.indexes.append(found)
            if verify_blob(out, scan, entry, where, f"manifests[{i}]"):
                nested = scan.read_json(out, "OMI201", digest, nested_where)
                if nested is not None:
                    _schema_violations(out, "OMI201", schemas.IMAGE_INDEX, nested, nested_where)
                    found.children = _walk_index(out, scan, nested, nested_where, depth + 1, seen, visited, refs)
        elif isinstance(media_type, str):
            out.add("OMI201", f"manifests[{i}].mediaType", f"{media_type!r} is neither an image manifest nor an index",
                    f"use {mt.MANIFEST}", where=where)
    return listed


def scan_layout(out: Collector, root: str, name: str, tagged: bool = True) -> Optional[LayoutScan]:
    """Check the layout-level rules; None when the directory is not a layout at all. A layout of referrers is not
    `tagged`: its manifests are found through their subjects."""
    if not _check_marker(out, root, name):
        out.add("OMI200", "(directory)", "does not exist", "build the target first (`pants package`)", where=name)
        return None
    where = f"{name}/index.json"
    try:
        with open(os.path.join(root, "index.json"), "rb") as f:
            index = json.load(f)
    except FileNotFoundError:
        out.add("OMI200", "(file)", "is missing: not an OCI image layout", "rebuild the layout", where=where)
        return None
    except (OSError, ValueError) as e:
        out.add("OMI201", "(file)", f"is not valid JSON: {e}", "rebuild the layout", where=where)
        return None
    if not isinstance(index, dict):
        out.add("OMI201", "(file)", "expected a JSON object", "rebuild the layout", where=where)
        return None
    scan = LayoutScan(root, name, BlobStore(root))
    _schema_violations(out, "OMI201", schemas.IMAGE_INDEX, index, where)
    if tagged:
        _check_refs(out, index, where)
    _walk_index(out, scan, index, where, 0, {}, {}, [])
    return scan
