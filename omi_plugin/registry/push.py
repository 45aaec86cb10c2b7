"""Push an OCI image layout (and its model artifact layouts) to a registry repository, safely, as they are.

Order: every blob first (skipping those the repository has, mounting those another repository has), then every
manifest by digest (subjects before the manifests that name them, children before indexes), then the referrers
fallback indexes, then the tags — model tags first and the image tags last. A push that fails at any point before
the tags leaves no tag behind, and a tag never names something incomplete.

Nothing is rebuilt here: `pants package` wrote every manifest with its OCI 1.1 `subject` already in its bytes (the
image names its ModelPack artifact; the omlmd flavour names it too), so every digest pushed is a digest of the build
record. Registries without the referrers API get the tag-schema fallback: tag `sha256-<subject hex>` naming an image
index of that subject's referrers.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Dict, List, Optional, Sequence, Set, Tuple

from omi_contract.image import MODEL_ARTIFACT_TAG_SUFFIX, OMLMD_ARTIFACT_TAG_SUFFIX
from omi_plugin.blob_store.file_blob import open_slice
from omi_plugin.oci import canonical_json, layer_slices, media_types
from omi_plugin.oci.descriptor import Descriptor, digest_hex, sha256_digest
from omi_plugin.oci.layout import Layout, LayoutError
from omi_plugin.registry.client import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Opener, Registry
from omi_plugin.registry.reference import validate_repository, validate_tag

Log = Callable[[str], None]
IMAGE, MODEL, OMLMD, INDEX, ATTESTATION = "image", "model", "omlmd", "index", "attestation"
# Subjects are pushed before what names them: the model artifact, its omlmd flavour, the image, then the SBOM and
# provenance that refer to the image and the model.
_PUSH_ORDER = {MODEL: 0, OMLMD: 1, IMAGE: 2, INDEX: 2, ATTESTATION: 3}
_TAG_SUFFIX = {MODEL: MODEL_ARTIFACT_TAG_SUFFIX, OMLMD: OMLMD_ARTIFACT_TAG_SUFFIX}
_IMAGE_MANIFESTS = (media_types.MANIFEST, DOCKER_MANIFEST)
_INDEXES = (media_types.INDEX, DOCKER_MANIFEST_LIST)


def stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


@dataclass(frozen=True)
class BlobToPush:
    descriptor: Descriptor
    path: str  # the blob's file in its layout
    offset: int = -1  # a file inside an image layer of the push: its bytes, from here in `path`

    def opener(self) -> Opener:
        if self.offset >= 0:
            return lambda: open_slice(self.path, self.offset, self.descriptor.size)
        return lambda: open(self.path, "rb")


@dataclass
class ManifestToPush:
    role: str
    data: bytes
    media_type: str
    digest: str
    tags: List[str] = field(default_factory=list)
    subject: Optional[Descriptor] = None
    artifact_type: Optional[str] = None
    annotations: Dict[str, str] = field(default_factory=dict)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))


@dataclass
class PushPlan:
    blobs: Dict[str, BlobToPush] = field(default_factory=dict)  # digest -> source, in push order
    manifests: List[ManifestToPush] = field(default_factory=list)  # children before parents

    def add_blob(self, blob: BlobToPush) -> None:
        self.blobs.setdefault(blob.descriptor.digest, blob)


@dataclass
class BlobStats:
    uploaded: int = 0
    uploaded_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    mounted: int = 0
    mounted_bytes: int = 0

    def to_json(self) -> Dict[str, int]:
        return dict(self.__dict__)


@dataclass
class PushResult:
    registry: str
    repository: str
    image_digest: Optional[str] = None
    image_tags: List[str] = field(default_factory=list)
    manifests: List[Dict[str, Any]] = field(default_factory=list)
    model_digest: Optional[str] = None
    model_tags: List[str] = field(default_factory=list)
    omlmd_digest: Optional[str] = None
    omlmd_tags: List[str] = field(default_factory=list)
    attestation_digests: List[str] = field(default_factory=list)
    referrers: List[Dict[str, Any]] = field(default_factory=list)  # one entry per subject
    blobs: BlobStats = field(default_factory=BlobStats)
    manifests_pushed: int = 0
    manifests_skipped: int = 0

    def to_json(self) -> Dict[str, Any]:
        tags = self.image_tags + self.model_tags + self.omlmd_tags
        out: Dict[str, Any] = {
            "registry": self.registry,
            "repository": self.repository,
            "tags": tags,
            "image_digest": self.image_digest,
            "image_tags": self.image_tags,
            "image_reference": f"{self.registry}/{self.repository}@{self.image_digest}" if self.image_digest else None,
            "manifests": self.manifests,
            "blobs": self.blobs.to_json(),
            "manifests_pushed": self.manifests_pushed,
            "manifests_skipped": self.manifests_skipped,
        }
        if self.model_digest:
            out.update(model_digest=self.model_digest, model_tags=self.model_tags)
        if self.omlmd_digest:
            out.update(omlmd_digest=self.omlmd_digest, omlmd_tags=self.omlmd_tags)
        if self.attestation_digests:
            out["attestation_digests"] = self.attestation_digests
        if self.referrers:
            out["referrers"] = self.referrers
        return out


# -- planning: what to push, read from layouts (no network) -------------------------------------------------------

def _layout_blob(layout: Layout, descriptor: Descriptor, images: Optional[PushPlan] = None,
                 paths: Collection[str] = ()) -> BlobToPush:
    path = layout.blob_file(descriptor.digest)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        inside = _inside_image_layer(images, descriptor, paths) if images is not None else None
        if inside is not None:
            return inside
        raise LayoutError(f"{layout.root}: missing blob {descriptor.digest}") from None
    if size != descriptor.size:
        raise LayoutError(f"{layout.root}: blob {descriptor.digest} is {size} bytes, its descriptor says "
                          f"{descriptor.size} (rebuild the layout)")
    return BlobToPush(descriptor, path)


def _inside_image_layer(plan: PushPlan, descriptor: Descriptor, paths: Collection[str]) -> Optional[BlobToPush]:
    """A raw layer of a registry artifact that the build kept only inside the image layer it was downloaded into
    (the copy of the artifact in `dist/` leaves it out): those bytes, in an uncompressed one-file layer of the image
    holding a file of its size at one of `paths` (the paths the artifact gives these bytes). They are hashed before
    they are sent (`Pusher.push_blob`)."""
    planned = plan.blobs.get(descriptor.digest)
    if planned is not None:
        return planned  # the same bytes at another path of the artifact
    candidates = [b.path for b in plan.blobs.values()
                  if b.descriptor.media_type == media_types.LAYER_TAR and b.offset < 0 and b.descriptor.size > descriptor.size]
    found = layer_slices.find_file(candidates, descriptor.size, paths)
    return BlobToPush(descriptor, found[0], found[1]) if found is not None else None


def _manifest_json(layout: Layout, descriptor: Descriptor) -> Tuple[bytes, Dict[str, Any]]:
    data = layout.read_blob(descriptor.digest)
    if len(data) != descriptor.size or sha256_digest(data) != descriptor.digest:
        raise LayoutError(f"{layout.root}: manifest blob {descriptor.digest} does not match its digest "
                          "(rebuild the layout)")
    try:
        return data, json.loads(data)
    except ValueError:
        raise LayoutError(f"{layout.root}: manifest {descriptor.digest} is not JSON") from None


def _plan_manifest(plan: PushPlan, layout: Layout, descriptor: Descriptor, role: str) -> ManifestToPush:
    """Add a manifest (or index, recursively) and all it references to the plan; children come first."""
    data, value = _manifest_json(layout, descriptor)
    media_type = value.get("mediaType") or descriptor.media_type
    if media_type in _INDEXES:
        for child in value.get("manifests") or []:
            _plan_manifest(plan, layout, Descriptor.from_json(child), role)
        subject = Descriptor.from_json(value["subject"]) if isinstance(value.get("subject"), dict) else None
        item = ManifestToPush(INDEX if role == IMAGE else role, data, media_type, descriptor.digest, subject=subject,
                              artifact_type=value.get("artifactType"), annotations=dict(value.get("annotations") or {}))
    elif media_type in _IMAGE_MANIFESTS:
        blobs = [Descriptor.from_json(raw) for raw in [value["config"], *(value.get("layers") or [])]] \
            if value.get("config") else []
        paths: Dict[str, Set[str]] = {}  # a model artifact's layers: each digest's file paths
        for blob in blobs[1:] if role == MODEL else []:
            paths.setdefault(blob.digest, set()).add(layer_slices.annotated_path(blob.annotations))
        for blob in blobs:
            plan.add_blob(_layout_blob(layout, blob, plan if role == MODEL else None,
                                       paths.get(blob.digest, set()) - {""}))
        subject = Descriptor.from_json(value["subject"]) if isinstance(value.get("subject"), dict) else None
        item = ManifestToPush(role, data, media_type, descriptor.digest, subject=subject,
                              artifact_type=value.get("artifactType"),
                              annotations=dict(value.get("annotations") or {}))
    else:
        raise LayoutError(f"{layout.root}: {descriptor.digest} has unsupported media type {media_type!r}")
    if all(m.digest != item.digest for m in plan.manifests):
        plan.manifests.append(item)
    return item


def select_manifests(layout: Layout, select: Sequence[str] = (),
                     allow_empty: bool = False) -> List[Tuple[Descriptor, List[str]]]:
    """Top-level manifests of a layout with their ref names, optionally only those named by ref or digest."""
    chosen: Dict[str, Tuple[Descriptor, List[str]]] = {}
    for descriptor, ref in layout.manifests():
        if select and ref not in select and descriptor.digest not in select:
            continue
        entry = chosen.setdefault(descriptor.digest, (descriptor, []))
        if ref:
            entry[1].append(ref)
    if not chosen and not allow_empty:
        wanted = f" matching {', '.join(select)}" if select else ""
        raise LayoutError(f"{layout.root}: index.json lists no manifest{wanted}")
    return list(chosen.values())


def plan_image(plan: PushPlan, layout_dir: str, tags: Sequence[str], select: Sequence[str] = ()) -> List[ManifestToPush]:
    layout = Layout(layout_dir)
    top = select_manifests(layout, select)
    if tags and len(top) > 1:
        raise LayoutError(f"{layout_dir}: index.json lists {len(top)} manifests; select one to tag "
                          f"(by ref name or digest), or give no tag to push each under its ref names")
    items = []
    for descriptor, refs in top:
        item = _plan_manifest(plan, layout, descriptor, IMAGE)
        item.tags = list(tags) if tags else refs
        items.append(item)
    return items


def plan_artifacts(plan: PushPlan, layout_dir: str, role: str, image_tags: Sequence[str]) -> List[ManifestToPush]:
    """Every manifest of an artifact layout, as it is; a model artifact tagged `<image tag><suffix>` (or by its ref
    names), a referrer (SBOM, provenance) untagged: registries find it through its subject."""
    layout = Layout(layout_dir)
    items = []
    # A layout of referrers may be empty (nothing attested); a model artifact's may not.
    for descriptor, refs in select_manifests(layout, allow_empty=role == ATTESTATION):
        item = _plan_manifest(plan, layout, descriptor, role)
        if role in _TAG_SUFFIX:
            item.tags = [f"{t}{_TAG_SUFFIX[role]}" for t in image_tags] if image_tags else refs
        items.append(item)
    return items


def check_subjects(referring: Sequence[ManifestToPush], subjects: Sequence[ManifestToPush], layout: str,
                   subjects_layout: str) -> None:
    """The layouts come from one build: every subject named in `layout` is among the manifests of the push."""
    known = {m.digest for m in subjects}
    for item in referring:
        if item.subject is not None and item.subject.digest not in known:
            raise LayoutError(f"{layout}: the {item.role} manifest's subject {item.subject.digest} is not in "
                              f"{subjects_layout} (the layouts are from different builds; run `pants package` again)")


# -- execution: talk to the registry --------------------------------------------------------------------------------

class Pusher:
    """Runs a plan against one repository and keeps the counts for the result."""

    def __init__(self, client: Registry, repository: str, *, mount_from: Sequence[str] = (),
                 log: Log = stderr_log) -> None:
        self.client = client
        self.repository = repository
        self.mount_from = [r for r in mount_from if r != repository]
        self.log = log
        self.stats = BlobStats()
        self.where = client.where(repository)

    def push_blob(self, blob: BlobToPush) -> None:
        d = blob.descriptor
        short = f"blob {d.digest[:19]} {human_bytes(d.size)}"
        if self.client.blob_size(self.repository, d.digest) is not None:
            self.stats.skipped += 1
            self.stats.skipped_bytes += d.size
            self.log(f"{self.where}: {short} skipped (already present)")
            return
        location = None
        for source in self.mount_from:
            location = self.client.mount_blob(self.repository, d.digest, source)
            if location is None:
                self.stats.mounted += 1
                self.stats.mounted_bytes += d.size
                self.log(f"{self.where}: {short} mounted from {source}")
                return
            break  # the registry opened an upload session instead: use it rather than opening another
        if blob.offset >= 0 and layer_slices.slice_sha256(blob.path, blob.offset, d.size) != d.digest:
            raise LayoutError(f"{blob.path}: the bytes at {blob.offset} of this image layer are not the model "
                              f"artifact's blob {d.digest} (run `pants package` again)")
        step = max(d.size // 4, 1)
        next_mark = [step]

        def progress(sent: int) -> None:
            # A quarter-way line for big blobs, so a long upload visibly moves in CI logs.
            if d.size >= 64 << 20 and next_mark[0] <= sent < d.size:
                self.log(f"{self.where}: {short} {human_bytes(sent)} sent")
                next_mark[0] = (sent // step + 1) * step
        self.client.upload_blob(self.repository, d, blob.opener(), location=location, progress=progress)
        self.stats.uploaded += 1
        self.stats.uploaded_bytes += d.size
        self.log(f"{self.where}: {short} uploaded")

    def push_manifest(self, item: ManifestToPush) -> Tuple[bool, Optional[str]]:
        """Push by digest unless present; returns (pushed, OCI-Subject header of the answer)."""
        if self.client.manifest_digest(self.repository, item.digest) == item.digest:
            self.log(f"{self.where}: {item.role} manifest {item.digest[:19]} skipped (already present)")
            return False, None
        response = self.client.put_manifest(self.repository, item.digest, item.data, item.media_type)
        self.log(f"{self.where}: {item.role} manifest {item.digest[:19]} pushed")
        return True, response.header("OCI-Subject")

    def tag(self, item: ManifestToPush, tag: str) -> None:
        if self.client.manifest_digest(self.repository, tag) == item.digest:
            self.log(f"{self.where}: tag {tag} already names {item.digest[:19]}")
            return
        self.client.put_manifest(self.repository, tag, item.data, item.media_type)
        self.log(f"{self.where}: tag {tag} -> {item.digest[:19]}")

    def update_referrers_fallback(self, subject: Descriptor, referrers: Sequence[ManifestToPush]) -> str:
        """OCI 1.1 tag schema: `sha256-<hex>` names an index of the subject's referrers; merge ours into it."""
        tag = f"sha256-{digest_hex(subject.digest)}"
        existing = self.client.get_manifest(self.repository, tag, accept=[media_types.INDEX])
        entries: List[Dict[str, Any]] = []
        if existing is not None:
            try:
                value = json.loads(existing.data)
                if value.get("mediaType") == media_types.INDEX:
                    entries = list(value.get("manifests") or [])
            except ValueError:
                entries = []
        known = {e.get("digest") for e in entries}
        added = False
        for item in referrers:
            if item.digest in known:
                continue
            entry: Dict[str, Any] = {"mediaType": item.media_type, "digest": item.digest, "size": len(item.data)}
            # OCI 1.1: a manifest without artifactType is listed by its config's media type, an index without one
            # with none.
            artifact_type = item.artifact_type or (json.loads(item.data).get("config") or {}).get("mediaType")
            if artifact_type:
                entry["artifactType"] = artifact_type
            if item.annotations:
                entry["annotations"] = item.annotations
            entries.append(entry)
            added = True
        if not added:
            self.log(f"{self.where}: referrers tag {tag} already lists the artifacts")
            return tag
        index = canonical_json.dumps({"schemaVersion": 2, "mediaType": media_types.INDEX, "manifests": entries})
        self.client.put_manifest(self.repository, tag, index, media_types.INDEX)
        self.log(f"{self.where}: referrers tag {tag} updated ({len(entries)} referrer(s))")
        return tag


def execute(pusher: Pusher, plan: PushPlan, result: PushResult) -> None:
    for blob in plan.blobs.values():
        pusher.push_blob(blob)
    subject_headers: Dict[str, Optional[str]] = {}
    for item in plan.manifests:
        pushed, subject_header = pusher.push_manifest(item)
        result.manifests_pushed += int(pushed)
        result.manifests_skipped += int(not pushed)
        subject_headers[item.digest] = subject_header
        result.manifests.append({"role": item.role, "digest": item.digest, "media_type": item.media_type,
                                 "size": len(item.data), "pushed": pushed})
    by_subject: Dict[str, List[ManifestToPush]] = {}
    for item in plan.manifests:
        if item.subject is not None:
            by_subject.setdefault(item.subject.digest, []).append(item)
    for subject_digest, referrers in by_subject.items():
        subject = referrers[0].subject
        assert subject is not None
        entry: Dict[str, Any] = {"subject": subject_digest, "referrers": [m.digest for m in referrers]}
        if any(subject_headers.get(m.digest) == subject_digest for m in referrers) or \
                pusher.client.referrers(pusher.repository, subject_digest) is not None:
            entry["api"] = True
        else:
            entry.update(api=False, fallback_tag=pusher.update_referrers_fallback(subject, referrers))
        result.referrers.append(entry)
    # Tags last; the image's tags after the model's, so the tag deploy tooling follows appears only at the very end.
    for item in sorted(plan.manifests, key=lambda m: _PUSH_ORDER[m.role]):
        for tag in item.tags:
            pusher.tag(item, tag)


def push(layout_dir: str, *, registry: str, repository: str, tags: Sequence[str] = (),
         modelpack_layout: Optional[str] = None, omlmd_layout: Optional[str] = None,
         attestations_layout: Optional[str] = None, insecure: bool = False,
         mount_from: Sequence[str] = (), select: Sequence[str] = (), expect_digest: Optional[str] = None,
         expect_model_digest: Optional[str] = None, client: Optional[Registry] = None,
         log: Log = stderr_log) -> PushResult:
    """Push `layout_dir` (and optionally its ModelPack layout, its omlmd flavour's layout and its attestations'
    layout) to `registry/repository`.

    Image tags are `tags` (or the layout's ref names when none are given); the model artifact is tagged
    `<tag>-model` and the omlmd flavour `<tag>-omlmd` (or their layouts' ref names). Raises `RegistryError` or
    `LayoutError` (one line each).
    """
    validate_repository(repository)
    for tag in tags:
        validate_tag(tag)
    if omlmd_layout and not modelpack_layout:
        raise LayoutError("the omlmd flavour names the ModelPack artifact as its subject: give that layout too")
    plan = PushPlan()
    images = plan_image(plan, layout_dir, tags, select)
    if expect_digest and expect_digest not in [m.digest for m in images]:
        raise LayoutError(f"{layout_dir}: its manifest is {', '.join(m.digest for m in images)}, not the expected "
                          f"{expect_digest} (the layout and the build record disagree; rebuild)")
    if modelpack_layout and len(images) != 1:
        raise LayoutError(f"{layout_dir}: a model artifact goes with one image; select one of {len(images)}")
    result = PushResult(registry, repository)
    result.image_digest = images[0].digest if len(images) == 1 else None
    result.image_tags = [t for m in images for t in m.tags]
    if modelpack_layout:
        models = plan_artifacts(plan, modelpack_layout, MODEL, tags)
        check_subjects(images, models, layout_dir, modelpack_layout)
        result.model_digest, result.model_tags = models[0].digest, [t for m in models for t in m.tags]
        if expect_model_digest and expect_model_digest != result.model_digest:
            raise LayoutError(f"{modelpack_layout}: its manifest is {result.model_digest}, not the expected "
                              f"{expect_model_digest} (the layout and the build record disagree; rebuild)")
        if omlmd_layout:
            flavours = plan_artifacts(plan, omlmd_layout, OMLMD, tags)
            check_subjects(flavours, models, omlmd_layout, modelpack_layout)
            result.omlmd_digest, result.omlmd_tags = flavours[0].digest, [t for m in flavours for t in m.tags]
    if attestations_layout:
        if not modelpack_layout:
            raise LayoutError("the attestations refer to the image and the model artifact: give the ModelPack layout too")
        attested = plan_artifacts(plan, attestations_layout, ATTESTATION, ())
        # An index's images are subjects too: each platform's SBOM refers to its own image.
        check_subjects(attested, [m for m in plan.manifests if m.role in (IMAGE, INDEX, MODEL)], attestations_layout,
                       f"{layout_dir} or {modelpack_layout}")
        result.attestation_digests = [m.digest for m in attested]
    plan.manifests.sort(key=lambda m: _PUSH_ORDER[m.role])  # stable: an index's children stay before it
    for item in plan.manifests:
        for tag in item.tags:
            validate_tag(tag)
    own_client = client is None
    client = client or Registry(registry, insecure=insecure)
    try:
        total = sum(b.descriptor.size for b in plan.blobs.values())
        log(f"{client.where(repository)}: pushing {len(plan.blobs)} blobs ({human_bytes(total)}) and "
            f"{len(plan.manifests)} manifests")
        pusher = Pusher(client, repository, mount_from=mount_from, log=log)
        result.blobs = pusher.stats
        execute(pusher, plan, result)
    finally:
        if own_client:
            client.close()
    s = result.blobs
    log(f"{client.where(repository)}: done: {s.uploaded} blobs uploaded ({human_bytes(s.uploaded_bytes)}), "
        f"{s.skipped} skipped ({human_bytes(s.skipped_bytes)}), {s.mounted} mounted; image "
        f"{result.image_digest or '-'}")
    return result
