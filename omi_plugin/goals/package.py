"""`pants package` for `omi_model`: the OCI image layout, the ModelPack artifact, the attestations and the JSON
build record.

The layers come from `util_rules/image_layers.py` (runtime and model) and the base kinds, the attestations from
`util_rules/attestations.py`; this rule assembles the image and the ModelPack artifact, and places every layout
(their blobs shared in dist/omi-blobs), the SBOM and the build record under dist/.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import posixpath
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, cast

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.core.util_rules.system_binaries import GitBinaryException
from pants.engine.addresses import Address
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestEntries,
    DigestSubset,
    Directory,
    FileContent,
    FileEntry,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
    SymlinkEntry,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel
from pants.vcs.git import GitWorktreeRequest, MaybeGitWorktree

from omi_contract import formats
from omi_contract.interfaces import DEFAULT_HTTP_PORT
from omi_plugin.blob_store.store import BlobStore
from omi_plugin.build_record import BuildRecord, PlatformImage, RecordedAttestations
from omi_plugin.oci import compression, platforms
from omi_plugin.oci.descriptor import Blob
from omi_plugin.oci.image import Layer
from omi_plugin.oci.layout import blob_path, oci_layout_bytes
from omi_plugin.oci.platforms import Platform
from omi_plugin.omi_image import (
    AssembledImage,
    SourceArtifact,
    assemble,
    assemble_index,
    build_record,
    model_subject,
    omlmd_artifact_tag,
)
from omi_plugin.omlmd_artifact import ModelFileBlob, OmlmdError
from omi_plugin.omlmd_artifact import build as build_omlmd
from omi_plugin.registry.model_fetch import StoredArtifact
from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.target_types import (
    BaseImageField,
    ExtraTagsField,
    HttpPortField,
    LayerCompressionField,
    ModelCarField,
    ModelCompressionField,
    ModelYamlSourceField,
    OmiModelOutputPathField,
    OmiSpecVersionField,
    PlatformsField,
    RepositoryField,
    platforms_problem,
)
from omi_plugin.util_rules.attestations import (
    Attestations,
    AttestationsRequest,
    IndexAttestations,
    IndexAttestationsRequest,
)
from omi_plugin.util_rules.base_image import BaseImage, BaseImageRequest
from omi_plugin.util_rules.image_layers import (
    ModelFileLayer,
    ModelLayers,
    ModelLayersRequest,
    RuntimeLayers,
    RuntimeLayersRequest,
)
from omi_plugin.util_rules.image_models import ImageModels, ImageModelsRequest
from omi_plugin.util_rules.layers import BuiltLayer, CompressLayerRequest
from omi_plugin.util_rules.mlflow_model import MlflowModelChecked, MlflowModelCheckRequest
from omi_plugin.util_rules.model_inputs import ModelFile, ModelSources, ModelSourcesRequest, single_file_entries
from omi_plugin.util_rules.modelcar import ModelCarLayer, ModelCarLayerRequest
from omi_plugin.util_rules.stored_layers import (
    SHARED_BLOBS_DIR,
    BlobStoreLocation,
    StoredBlobsInDist,
    StoredBlobsInDistRequest,
    StoredFileBlob,
    StoredFileBlobRequest,
    store_links,
)
from omi_plugin.util_rules.target_fields import (
    ResolveBaseImageRequest,
    ResolvedBaseImage,
    TargetFieldProblems,
    TargetFieldsRequest,
)

logger = logging.getLogger(__name__)


class OmiPackageError(ValueError):
    """One line: `<target>: <what is wrong> (<how to fix it>)`."""


@dataclass(frozen=True)
class OmiModelFieldSet(PackageFieldSet):
    required_fields = (ModelYamlSourceField,)

    model_yaml: ModelYamlSourceField
    base_image: BaseImageField
    repository: RepositoryField
    extra_tags: ExtraTagsField
    http_port: HttpPortField
    omi_spec: OmiSpecVersionField
    output_path: OmiModelOutputPathField
    modelcar: ModelCarField
    layer_compression: LayerCompressionField
    model_compression: ModelCompressionField
    platforms: PlatformsField


def image_platforms(fs: OmiModelFieldSet, omi: OmiSubsystem) -> Tuple[Optional[Platform], ...]:
    """The platforms to build for, from the target's `platforms` or else `[omi].platforms`, in omi's order (amd64
    first, whatever order they are named in, so the index is one whatever the spelling); None stands for the build
    machine's, built as before there was a choice (the field is judged with the other fields; the option here)."""
    chosen = fs.platforms.value if fs.platforms.value is not None else tuple(omi.platforms)
    problem = platforms_problem(tuple(chosen))
    if problem is not None:
        raise OmiPackageError(f"{fs.address}: [omi].platforms: {problem[0]} ({problem[1]})")
    host = platforms.build_machine()
    if host is None:
        raise OmiPackageError(f"{fs.address}: omi builds images on x86_64 and aarch64 machines, not on "
                              f"{platforms.machine_name()}")
    named = {platforms.parse(text) for text in chosen}
    return tuple(None if p == host else p for p in platforms.PLATFORMS if p in named)


def compression_settings(fs: OmiModelFieldSet, omi: OmiSubsystem) -> Tuple[compression.Setting, compression.Setting]:
    """(code and dependency layers, model layers), from the target's fields or else `[omi]`."""
    layers = fs.layer_compression.value or omi.layer_compression
    models = fs.model_compression.value or omi.model_compression
    for name, value, choices in (("layer_compression", layers, compression.ALGORITHMS),
                                 ("model_compression", models, (compression.AUTO, *compression.ALGORITHMS))):
        if value not in choices:  # fields are checked by Pants; the options only here
            raise OmiPackageError(f"{fs.address}: [omi].{name} = {value!r} is not one of {', '.join(choices)}")
    try:
        return compression.settings_for(layers, models, omi.compression_level)
    except compression.CompressionError as e:
        raise OmiPackageError(f"{fs.address}: [omi].compression_level: {e}") from None


def _described(setting: compression.Setting) -> str:
    return f"{setting.algorithm}{f' level {setting.level}' if setting.level else ''}{' (probed)' if setting.probe else ''}"


@dataclass(frozen=True)
class DistributionLayersRequest:
    """Layers in their built (uncompressed) form, with the digest holding their blobs, to compress as `setting`."""

    layers: Tuple[Tuple[Layer, Digest], ...]
    setting: compression.Setting
    address: Address


@dataclass(frozen=True)
class DistributionLayers:
    layers: Tuple[BuiltLayer, ...]


@rule(desc="Compress the layers of an OMI image", level=LogLevel.DEBUG)
async def distribution_layers(request: DistributionLayersRequest) -> DistributionLayers:
    built = await MultiGet(
        Get(BuiltLayer, CompressLayerRequest(layer, blobs, request.setting,
                                             f"Compress ({request.setting.algorithm}) layer: "
                                             f"{layer.created_by.replace('omi: ', '')} of {request.address}"))
        for layer, blobs in request.layers
    )
    return DistributionLayers(tuple(built))


@dataclass(frozen=True)
class OmiImageRequest:
    """The target's image: one platform's, or the image index of its several platforms'."""

    field_set: OmiModelFieldSet
    signed: bool = True  # sign the attestations when `[omi].signing_key` is set


@dataclass(frozen=True)
class OmiPlatformImageRequest:
    field_set: OmiModelFieldSet
    platform: Optional[Platform]  # None: the build machine's
    signed: bool = True


@dataclass(frozen=True)
class OmiImage:
    """A packaged model image: the layout digests and the build record, before placement under dist/."""

    layout: Digest  # OCI image layout at the root
    modelpack_layout: Digest
    omlmd_layout: Optional[Digest]
    record: BuildRecord
    summary: str
    attestations_layout: Optional[Digest] = None  # SBOM and provenance referrers
    sbom: Optional[bytes] = None
    model_signature: Optional[bytes] = None  # the model files' `model_signing` bundle
    # One platform's image, for an index to be made of: what was assembled and attested.
    assembled: Optional[AssembledImage] = None
    attestations: Optional[Attestations] = None
    platform_sboms: Tuple[Tuple[str, bytes], ...] = ()  # an index's: (dist/ path, SPDX document) of each platform


@dataclass(frozen=True)
class LayoutBlobs:
    """Digests of one layout's parts, to merge: blobs, some of them links into the blob store, and its JSON."""

    parts: Tuple[Digest, ...]


@rule(desc="Merge the blobs of an OCI layout", level=LogLevel.DEBUG)
async def layout_blobs(request: LayoutBlobs) -> Digest:
    """One layout from its parts. A blob can come twice, once as a file and once as a link into the blob store (a base
    pulled from an image whose model layer this image has too): both hold the same bytes, and the file is kept."""
    found = await MultiGet(Get(DigestEntries, Digest, d) for d in request.parts)
    links = {e.path for entries in found for e in entries if isinstance(e, SymlinkEntry)}
    files = {e.path for entries in found for e in entries if isinstance(e, FileEntry)}
    if not links & files:
        return await Get(Digest, MergeDigests(request.parts))
    kept = [e for entries in found for e in entries if not (isinstance(e, SymlinkEntry) and e.path in files)]
    return await Get(Digest, CreateDigest(dict((e.path, e) for e in kept if not isinstance(e, Directory)).values()))


@dataclass(frozen=True)
class OmlmdFile:
    relpath: str  # as model.yaml lists it
    digest: str  # "sha256:<hex>" of its bytes
    size: int
    blob: Digest  # `blobs/sha256/<hex>`: a link into the blob store, or (a downloaded file) the file itself


@dataclass(frozen=True)
class OmlmdLayoutRequest:
    address: Address
    assembled: AssembledImage
    files: Tuple[OmlmdFile, ...]


@dataclass(frozen=True)
class OmlmdLayout:
    layout: Digest
    manifest_digest: str


async def omlmd_files(files: Sequence[ModelFile], layers: Sequence[ModelFileLayer]) -> List[OmlmdFile]:
    """The model files as blobs of their own bytes: a file on disk copied into the blob store (once; found there by
    its sha256 afterwards), a downloaded one taken from Pants's store, where it already is."""
    on_disk = [(f, layer) for f, layer in zip(files, layers) if f.digest is None]
    downloaded = [(f, layer) for f, layer in zip(files, layers) if f.digest is not None]
    stored = await MultiGet(Get(StoredFileBlob, StoredFileBlobRequest(f.sandbox_path, layer.file_digest))
                            for f, layer in on_disk)
    entries = await single_file_entries([cast(Digest, f.digest) for f, _ in downloaded])
    copied = await MultiGet(Get(Digest, CreateDigest([FileEntry(blob_path(layer.file_digest), e.file_digest)]))
                            for (_, layer), e in zip(downloaded, entries))
    blobs = {f.sandbox_path: b.blobs for (f, _), b in zip(on_disk, stored)}
    blobs.update({f.sandbox_path: d for (f, _), d in zip(downloaded, copied)})
    return [OmlmdFile(layer.relpath, layer.file_digest, layer.file_size, blobs[f.sandbox_path])
            for f, layer in zip(files, layers)]


@rule(desc="Write the omlmd flavour of a model artifact", level=LogLevel.DEBUG)
async def omlmd_layout(request: OmlmdLayoutRequest) -> OmlmdLayout:
    """The omlmd layout, whose layers are the model files' own bytes: blobs of the blob store, or of Pants's store for
    a downloaded file."""
    files = [ModelFileBlob(f.relpath, f.digest, f.size) for f in request.files]
    assembled = request.assembled
    try:
        artifact = build_omlmd(json.loads(assembled.modelpack_config.data), files,
                               model_subject(assembled.modelpack_manifest),
                               [omlmd_artifact_tag(t) for t in assembled.tags])
    except OmlmdError as e:
        raise OmiPackageError(f"{request.address}: [omi].omlmd_artifact: {e}") from None
    json_blobs = await Get(Digest, CreateDigest([
        FileContent("oci-layout", oci_layout_bytes()),
        FileContent("index.json", artifact.index_json),
        FileContent(blob_path(artifact.manifest.descriptor.digest), artifact.manifest.data),
        *(FileContent(blob_path(b.descriptor.digest), b.data) for b in artifact.metadata_blobs),
    ]))
    # Two model files with the same bytes are one blob.
    blobs = {f.digest: f.blob for f in request.files}
    layout = await Get(Digest, LayoutBlobs((*blobs.values(), json_blobs)))
    return OmlmdLayout(layout, artifact.manifest.descriptor.digest)


async def _artifact_copy_blobs(artifact: StoredArtifact, model: ModelLayers, store_root: str,
                               own: Sequence[str]) -> List[str]:
    """The blobs of the copy of a registry artifact in `dist/`: all of it, as it came, but the raw layers downloaded
    straight into the image's own layers. Those stay in the registry (the layout spec lets a blob be "fulfilled by an
    external blob store"), and `pants publish` sends them from the image's layer where the registry lacks them. A raw
    layer kept in a layer the image does not carry (another model name, a compressed model layer, a file model.yaml
    does not list) is copied out as a blob of its own."""
    store = BlobStore(store_root)
    in_image = {f.built.layer.descriptor.digest for f in model.files}
    elsewhere = [f for f in artifact.files if f.within and f.within not in in_image]
    await MultiGet(Get(StoredFileBlob, StoredFileBlobRequest(f.held_in(store), f.digest, f.offset, f.size))
                   for f in elsewhere)
    return [d for d in (*artifact.blobs, *(f.digest for f in elsewhere)) if d not in own]


def source_artifact(stored: StoredArtifact, store_root: str) -> SourceArtifact:
    """The artifact's manifest and config, read from the blob store by digest (content-addressed, so what a cached
    rule reads here cannot change under it)."""
    store = BlobStore(store_root)
    with open(store.blob(stored.manifest.digest), "rb") as manifest, open(store.blob(stored.config.digest), "rb") as config:
        return SourceArtifact(stored.reference, Blob(stored.manifest, manifest.read()),
                              Blob(stored.config, config.read()))


@rule(desc="Build an OMI model image", level=LogLevel.DEBUG)
async def build_omi_image(request: OmiImageRequest, omi: OmiSubsystem) -> OmiImage:
    fs = request.field_set
    # A field's own problem (a `platforms` typo among them) is named as the BUILD file's, before the option's.
    (await Get(TargetFieldProblems, TargetFieldsRequest(fs.address))).raise_first()
    chosen = image_platforms(fs, omi)
    if len(chosen) == 1:
        return await Get(OmiImage, OmiPlatformImageRequest(fs, chosen[0], request.signed))
    # Each platform's image is the one a one-platform build makes, byte for byte; the index only lists them.
    images = await MultiGet(Get(OmiImage, OmiPlatformImageRequest(fs, p, request.signed)) for p in chosen)
    named = [platforms.or_build_machine(p) for p in chosen]
    try:
        index = assemble_index([(p, cast(AssembledImage, image.assembled)) for p, image in zip(named, images)])
    except ValueError as e:
        raise OmiPackageError(f"{fs.address}: platforms: {e}") from None
    first = images[0]
    descriptor = index.index.descriptor
    json_blobs, *image_blobs = await MultiGet(
        Get(Digest, CreateDigest([FileContent("oci-layout", oci_layout_bytes()),
                                  FileContent("index.json", index.index_json),
                                  FileContent(blob_path(descriptor.digest), index.index.data)])),
        *(Get(Digest, DigestSubset(image.layout, PathGlobs(["blobs/**"]))) for image in images),
    )
    layout = await Get(Digest, LayoutBlobs((*image_blobs, json_blobs)))
    output_base = fs.output_path.value_or_default(file_ending=None)
    sbom_paths = [f"{output_base}.{p.architecture}.spdx.json" for p in named]
    recorded = first.record.attestations
    attestations_layout = None
    if first.attestations is not None and recorded is not None:
        attested = await Get(IndexAttestations, IndexAttestationsRequest(
            fs.address, index, first.record.repository, tuple(cast(Attestations, i.attestations) for i in images),
            foreign_model=first.record.model_artifact is not None, signed=request.signed))
        attestations_layout = attested.layout
        recorded = dataclasses.replace(
            recorded, sbom=sbom_paths[0],
            provenance_digests=tuple(dict.fromkeys((
                *attested.provenance_digests,
                *(d for i in images for d in cast(Attestations, i.attestations).provenance_digests)))),
            # The model files' signature is one for every platform: the same files, signed deterministically.
            signature_digests=tuple(dict.fromkeys((
                *attested.signature_digests,
                *(d for i in images for d in cast(Attestations, i.attestations).signature_digests)))))
    record = dataclasses.replace(
        first.record, image_digest=descriptor.digest, attestations=recorded,
        platform_images=tuple(
            PlatformImage(p.name, i.record.image_digest, i.record.config_digest, i.record.base_digest,
                          path if i.attestations else None,
                          i.attestations.sbom_digest if i.attestations else None)
            for p, i, path in zip(named, images, sbom_paths)))
    summary = (f"{record.repository}:{record.tags[0]}@{descriptor.digest} (an index of "
               f"{', '.join(p.name for p in named)})")
    return OmiImage(layout, first.modelpack_layout, first.omlmd_layout, record, summary, attestations_layout,
                    None, first.model_signature,
                    platform_sboms=tuple((path, i.sbom) for path, i in zip(sbom_paths, images) if i.sbom))


@rule(desc="Build one platform's OMI model image", level=LogLevel.DEBUG)
async def build_omi_platform_image(request: OmiPlatformImageRequest, omi: OmiSubsystem,
                                   location: BlobStoreLocation) -> OmiImage:
    fs = request.field_set
    models = await Get(ImageModels, ImageModelsRequest(fs.address))
    inputs = models.own
    metadata = inputs.metadata

    base_address = (await Get(ResolvedBaseImage, ResolveBaseImageRequest(
        fs.address, fs.base_image.value or omi.default_base_image))).address
    layer_setting, model_setting = compression_settings(fs, omi)
    platform = request.platform
    wanted = platforms.or_build_machine(platform)
    modelcar = fs.modelcar.value if fs.modelcar.value is not None else omi.modelcar
    # One MultiGet, so that the model layers are written while the runtime resolves.
    gets: List[Get[Any]] = [
        Get(BaseImage, BaseImageRequest(base_address, platform)),
        Get(RuntimeLayers, RuntimeLayersRequest(fs.address, models.python_addresses, base_address, platform)),
        *(Get(ModelLayers, ModelLayersRequest(m, model_setting)) for m in models.all),
    ]
    results = await MultiGet(gets)
    base, runtime = cast(BaseImage, results[0]), cast(RuntimeLayers, results[1])
    if base.config.platform != wanted:
        raise OmiPackageError(f"{fs.address}: platforms: the base image {base.config.name} is "
                              f"{base.config.platform.name}, not {wanted.name} (unset base_image for omi's default "
                              f"base of {wanted.name}, or set platforms=[\"{base.config.platform.name}\"])")
    model, bundled = cast(ModelLayers, results[2]), cast(Tuple[ModelLayers, ...], results[3:])

    await MultiGet(Get(MlflowModelChecked, MlflowModelCheckRequest(m, runtime.distributions, base.config.python,
                                                                  base.config.platform.machine))
                   for m in models.all if m.metadata.record.format == formats.MLFLOW)

    base_layers, base_layer_blobs = list(base.layers), [base.blobs] * len(base.layers)
    modelcar_layer: Optional[ModelCarLayer] = None
    if modelcar:
        modelcar_layer = await Get(ModelCarLayer, ModelCarLayerRequest(fs.address, metadata.source_file,
                                                                       metadata.name, tuple(metadata.files), wanted))
        base_layers.append(modelcar_layer.built.layer)
        base_layer_blobs.append(modelcar_layer.built.blobs)

    vcs_revision = None
    if omi.stamp_vcs_revision:
        worktree = (await Get(MaybeGitWorktree, GitWorktreeRequest())).git_worktree
        if worktree is None:
            raise OmiPackageError(f"{fs.address}: [omi].stamp_vcs_revision: the repository is not a git worktree "
                                  "(run from a git checkout, or turn stamping off)")
        try:
            vcs_revision, changed = worktree.commit_id, worktree.changed_files(include_untracked=True)
        except GitBinaryException as e:
            raise OmiPackageError(f"{fs.address}: [omi].stamp_vcs_revision: git cannot name the commit "
                                  f"({str(e).splitlines()[-1] if str(e) else type(e).__name__}; commit first)") from None
        if changed:
            # A revision the image was not built from would be worse than none.
            raise OmiPackageError(f"{fs.address}: [omi].stamp_vcs_revision: the worktree has uncommitted changes "
                                  f"({', '.join(sorted(changed)[:3])}{', ...' if len(changed) > 3 else ''}; commit "
                                  "them, or turn stamping off)")

    http_port, spec_version = fs.http_port.value or str(DEFAULT_HTTP_PORT), fs.omi_spec.value or "1.0"
    source = source_artifact(inputs.artifact, location.root) if inputs.artifact else None
    base_dist, runtime_dist = await MultiGet(
        Get(DistributionLayers, DistributionLayersRequest(
            tuple((layer, blobs) for layer, blobs in zip(base_layers, base_layer_blobs)), layer_setting, fs.address)),
        Get(DistributionLayers, DistributionLayersRequest(
            tuple((b.layer, b.blobs) for b in runtime.layers), layer_setting, fs.address)),
    )
    bundled_dist = [b for m in bundled for b in (*(f.built for f in m.files), m.record)]

    assembled = assemble(
        metadata, base.config, [b.layer for b in base_dist.layers],
        runtime_layers=[b.layer for b in runtime_dist.layers],
        app_layer_count=runtime.app_layer_count,
        model_layers=[(f.relpath, f.built.layer) for f in model.files],
        record_layer=model.record.layer,
        bundled_layers=[b.layer for b in bundled_dist],
        http_port=http_port,
        spec_version=spec_version,
        extra_tags=fs.extra_tags.value or (),
        vcs_revision=vcs_revision,
        modelcar=modelcar,
        source_artifact=source,
    )
    json_blobs = await Get(Digest, CreateDigest([
        FileContent("oci-layout", oci_layout_bytes()),
        FileContent("index.json", assembled.index_json),
        FileContent(blob_path(assembled.config.descriptor.digest), assembled.config.data),
        FileContent(blob_path(assembled.manifest.descriptor.digest), assembled.manifest.data),
    ]))
    modelpack_json = await Get(Digest, CreateDigest([
        FileContent("oci-layout", oci_layout_bytes()),
        FileContent("index.json", assembled.modelpack_index_json),
        FileContent(blob_path(assembled.modelpack_config.descriptor.digest), assembled.modelpack_config.data),
        FileContent(blob_path(assembled.modelpack_manifest.descriptor.digest), assembled.modelpack_manifest.data),
    ]))
    model_blobs = [*(f.built.blobs for f in model.files), model.record.blobs]
    artifact_blobs = [await Get(Digest, CreateDigest(store_links(location.root, await _artifact_copy_blobs(
        inputs.artifact, model, location.root, (assembled.modelpack_manifest.descriptor.digest,
                                                assembled.modelpack_config.descriptor.digest)))))
    ] if inputs.artifact else model_blobs
    layout, modelpack_layout = await MultiGet(
        Get(Digest, LayoutBlobs((*(b.blobs for b in (*base_dist.layers, *runtime_dist.layers)), *model_blobs,
                                 *(b.blobs for b in bundled_dist), json_blobs))),
        Get(Digest, LayoutBlobs((*artifact_blobs, modelpack_json))),
    )
    output_base = fs.output_path.value_or_default(file_ending=None)
    omlmd = None
    if omi.omlmd_artifact and source is None:  # an artifact from a registry is served as it is
        omlmd = await Get(OmlmdLayout, OmlmdLayoutRequest(fs.address, assembled, tuple(
            await omlmd_files(inputs.files, model.files))))
    repository = (fs.repository.value or omi.default_repository).replace("{name}", metadata.name)
    sources, *bundled_sources = await MultiGet(Get(ModelSources, ModelSourcesRequest(m.address)) for m in models.all)
    attested = await Get(Attestations, AttestationsRequest(
        fs.address, assembled, repository, models.all,
        tuple(tuple((f.file_digest, f.file_size) for f in m.files) for m in (model, *bundled)),
        (sources.yaml_path, sources.yaml_bytes),
        models.python_addresses, runtime.wheels, base.config.name, base.config.manifest_digest,
        debian=tuple(dict.fromkeys((*base.packages, *(modelcar_layer.packages if modelcar_layer else ())))),
        locks=(*base.locks, *((modelcar_layer.lock,) if modelcar_layer else ())),
        signed=request.signed,
        bundled_yaml_sha256=tuple(hashlib.sha256(s.yaml_bytes).hexdigest() for s in bundled_sources),
        parameters=(("layer_compression", _described(layer_setting)), ("model_compression", _described(model_setting)),
                    ("omi_spec", spec_version), ("http_port", http_port),
                    ("modelcar", str(bool(modelcar)).lower()), ("stamp_vcs_revision", str(omi.stamp_vcs_revision).lower())),
    ))
    record = build_record(
        assembled, repository=repository, layout=f"{output_base}.oci",
        modelpack_layout=f"{output_base}.modelpack.oci", base=base.config, metadata=metadata,
        bundled=[m.metadata for m in models.bundled],
        omlmd=(omlmd.manifest_digest, f"{output_base}.omlmd.oci") if omlmd else None,
        attestations=RecordedAttestations(
            f"{output_base}.attestations.oci", f"{output_base}.spdx.json", attested.sbom_digest,
            attested.provenance_digests, attested.signature_digests,
            f"{output_base}.model.sig" if attested.model_signature else None),
        model_artifact=source.reference if source else None,
    )
    summary = f"{repository}:{assembled.tags[0]}@{assembled.manifest.descriptor.digest}"
    return OmiImage(layout, modelpack_layout, omlmd.layout if omlmd else None, record, summary,
                    attested.layout, attested.sbom, attested.model_signature, assembled, attested)


@dataclass(frozen=True)
class LayoutInDist:
    layout: Digest  # an OCI layout at its root
    path: str  # its dist/-relative directory


@dataclass(frozen=True)
class PlacedLayout:
    digest: Digest  # the layout under its dist/ path and the blobs it shares under `dist/omi-blobs/`
    stored_blobs: Tuple[str, ...]  # digests of its blobs that are in the blob store, to hard-link into dist/


@rule(desc="Place an OCI layout under dist/", level=LogLevel.DEBUG)
async def layout_in_dist(request: LayoutInDist) -> PlacedLayout:
    """The layout for dist/, each of its blobs a relative symlink into `dist/omi-blobs/sha256/`, and the blob there.

    Targets and layouts that share a blob (the base and dependency layers of every image of a repository; the model
    files of an image and its ModelPack artifact) share one file on disk, as a registry stores them: `pants package
    ::` over many similar models writes each common layer once. skopeo, umoci, podman and oras follow the links,
    which resolve while dist/ keeps its shape (copy a layout elsewhere with `cp -rL`, or `skopeo copy`).
    `publish` and `check` use the layouts' own digests.
    """
    entries = await Get(DigestEntries, Digest, request.layout)
    blobs = sorted(e.path for e in entries if e.path.startswith("blobs/") and isinstance(e, (FileEntry, SymlinkEntry)))
    # A blob of the blob store (the layout holds an absolute link into it) goes to dist/ as a hard link, by
    # `StoredBlobsInDist`: its bytes never enter Pants's store.
    stored = [e.path for e in entries if isinstance(e, SymlinkEntry) and posixpath.isabs(e.target)]
    own, shared = await MultiGet(
        Get(Digest, DigestSubset(request.layout, PathGlobs(["**", "!blobs/**"]))),
        Get(Digest, DigestSubset(request.layout, PathGlobs(["blobs/**", *(f"!{p}" for p in stored)]))),
    )
    placed_own, placed_shared, links = await MultiGet(
        Get(Digest, AddPrefix(own, request.path)),
        Get(Digest, AddPrefix(await Get(Digest, RemovePrefix(shared, "blobs")), SHARED_BLOBS_DIR)),
        Get(Digest, CreateDigest([
            SymlinkEntry(f"{request.path}/{p}", posixpath.relpath(f"{SHARED_BLOBS_DIR}/{p[len('blobs/'):]}",
                                                                   posixpath.dirname(f"{request.path}/{p}")))
            for p in blobs
        ])),
    )
    return PlacedLayout(await Get(Digest, MergeDigests([placed_own, placed_shared, links])),
                        tuple(f"sha256:{posixpath.basename(p)}" for p in stored))


@rule(desc="Package an OMI model image", level=LogLevel.DEBUG)
async def package_omi_model(field_set: OmiModelFieldSet) -> BuiltPackage:
    image = await Get(OmiImage, OmiImageRequest(field_set))
    output_base = field_set.output_path.value_or_default(file_ending=None)
    record_path = f"{output_base}.omi.json"
    layouts = [(image.layout, f"{output_base}.oci"), (image.modelpack_layout, f"{output_base}.modelpack.oci"),
               *([(image.omlmd_layout, f"{output_base}.omlmd.oci")] if image.omlmd_layout else []),
               *([(image.attestations_layout, f"{output_base}.attestations.oci")] if image.attestations_layout else [])]
    placed_layouts = await MultiGet(Get(PlacedLayout, LayoutInDist(layout, path)) for layout, path in layouts)
    placed = await MultiGet(
        Get(Digest, CreateDigest([FileContent(record_path, image.record.to_json().encode())])),
        *([Get(Digest, CreateDigest([FileContent(f"{output_base}.spdx.json", image.sbom)]))] if image.sbom else []),
        *(Get(Digest, CreateDigest([FileContent(path, sbom)])) for path, sbom in image.platform_sboms),
        *([Get(Digest, CreateDigest([FileContent(f"{output_base}.model.sig", image.model_signature)]))]
          if image.model_signature else []),
    )
    stored = sorted({d for p in placed_layouts for d in p.stored_blobs})
    digest, _ = await MultiGet(Get(Digest, MergeDigests([*(p.digest for p in placed_layouts), *placed])),
                               Get(StoredBlobsInDist, StoredBlobsInDistRequest(tuple(stored))))
    record = image.record
    return BuiltPackage(digest, (
        BuiltPackageArtifact(f"{output_base}.oci", extra_log_lines=(
            f"    image: {image.summary}",
            f"    tags: {', '.join(record.tags)}; interfaces: {', '.join(record.interfaces)}",
            *(f"    {p.platform}: {p.image_digest}" for p in record.platform_images),
            *([f"    models by MODEL_NAME: {', '.join([record.model_name, *(m.name for m in record.bundled_models)])}"
               f" (default {record.model_name})"] if record.bundled_models else []),
        )),
        BuiltPackageArtifact(f"{output_base}.modelpack.oci", extra_log_lines=(
            f"    model artifact {record.model_artifact}, the image's subject" if record.model_artifact else
            f"    model artifact (ModelPack): {record.model_digest}, the image's subject",
        )),
        *([BuiltPackageArtifact(f"{output_base}.omlmd.oci", extra_log_lines=(
            f"    model artifact (omlmd flavour): {record.omlmd_digest}",
        ))] if record.omlmd_digest else []),
        *([BuiltPackageArtifact(record.attestations.layout, extra_log_lines=(
            f"    SBOM (SPDX 2.3) {record.attestations.sbom_digest} and provenance (SLSA v1) "
            f"{', '.join(record.attestations.provenance_digests)}, referrers of the image and the model",
        ) if not record.platform_images else (
            f"    SBOMs (SPDX 2.3) of each platform's image: "
            f"{', '.join(f'{p.platform} {p.sbom_digest}' for p in record.platform_images)}",
            f"    provenance (SLSA v1) of the index {record.attestations.provenance_digests[0]} and of each image and "
            f"the model {', '.join(record.attestations.provenance_digests[1:])}",
        )), *(BuiltPackageArtifact(path) for path in [p for p, _ in image.platform_sboms] or [record.attestations.sbom])]
          if record.attestations else []),
        *([BuiltPackageArtifact(record.attestations.model_signature, extra_log_lines=(
            f"    signed: the image, the model files and the provenance "
            f"({', '.join(record.attestations.signature_digests)})",
        ))] if record.attestations and record.attestations.model_signature else []),
        BuiltPackageArtifact(record_path),
    ))


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, OmiModelFieldSet)]
