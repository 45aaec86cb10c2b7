"""The SBOM, the provenance and (with `[omi].signing_key`) the signatures of a packaged model image, as OCI
referrers in their own layout.

One typed request in (what the package rule already knows about the image), one typed result out (the layout's
digest, the SPDX bytes for dist/, the digests for the build record). Everything is read from the Pants store and the
lockfiles: model bytes are never read here (their sha256 is the store's own file digest).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import List, Optional, Tuple

from pants.backend.python.util_rules.pex_from_targets import ChosenPythonResolve, ChosenPythonResolveRequest
from pants.core.util_rules.system_binaries import GitBinaryException
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import CreateDigest, Digest, DigestContents, DigestSubset, FileContent, MergeDigests, PathGlobs
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel
from pants.vcs.git import GitWorktreeRequest, MaybeGitWorktree
from pants.version import VERSION as PANTS_VERSION

from omi_contract.image import RECORD_FILE
from omi_contract.version import OMI_VERSION
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.descriptor import Descriptor
from omi_plugin.oci.layout import oci_layout_bytes
from omi_plugin.omi_image import AssembledImage, AssembledIndex, model_layer_path, model_subject
from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.supply_chain import provenance, referrers, sbom, signing
from omi_plugin.supply_chain.python_lock import PythonLockError, artifact_hashes
from omi_plugin.util_rules.model_inputs import ModelFile, ModelInputs
from omi_plugin.util_rules.signing import SignedStatements, SignStatementsRequest

logger = logging.getLogger(__name__)


class AttestationError(ValueError):
    """One line: `<target>: <what is wrong> (<how to fix it>)`."""


@dataclass(frozen=True)
class AttestationsRequest:
    address: Address
    assembled: AssembledImage
    repository: str
    models: Tuple[ModelInputs, ...]  # the image's own model first, then the bundled ones
    file_digests: Tuple[Tuple[Tuple[str, int], ...], ...]  # ("sha256:<hex>", size) of each model's files, in order
    model_yaml: Tuple[str, bytes]  # (path, bytes) of the target's model.yaml
    python_addresses: Addresses
    wheels: Tuple[str, ...]
    base_name: str
    base_digest: str
    debian: Tuple[sbom.DebianPackage, ...]  # the base's and the ModelCar layer's
    locks: Tuple[Tuple[str, str], ...]  # (path, sha256) of the Debian locks
    parameters: Tuple[Tuple[str, str], ...]
    signed: bool = True  # sign when `[omi].signing_key` is set
    bundled_yaml_sha256: Tuple[str, ...] = ()  # of each bundled model's model.yaml, in `models[1:]` order


@dataclass(frozen=True)
class Attestations:
    layout: Digest  # OCI layout of the referrers: SBOM -> image, provenance -> image, provenance -> model
    sbom: bytes  # the SPDX document, also written to dist/
    sbom_digest: str  # of the SBOM referrer's manifest
    provenance_digests: Tuple[str, ...]  # of the provenance referrers' manifests (the image's, then the model artifact's when omi made it)
    # With `[omi].signing_key`: the image's and the model files' signature referrers, and the model files' signature
    # itself (a `model_signing` bundle) for dist/.
    signature_digests: Tuple[str, ...] = ()
    model_signature: Optional[bytes] = None
    statement: bytes = b""  # the provenance statement, for an image index's to be made of


@dataclass(frozen=True)
class WheelHashesRequest:
    address: Address
    python_addresses: Addresses


@dataclass(frozen=True)
class WheelHashes:
    """What the resolve's lockfile pins: (file name -> (sha256, URL)), and the lockfile's path and sha256."""

    by_file: Tuple[Tuple[str, Tuple[str, str]], ...]
    lockfile: Tuple[str, str]


@rule(desc="Read the wheel hashes of a Python lockfile", level=LogLevel.DEBUG)
async def wheel_hashes(request: WheelHashesRequest) -> WheelHashes:
    chosen = await Get(ChosenPythonResolve, ChosenPythonResolveRequest(request.python_addresses))
    lock_contents = await Get(DigestContents, PathGlobs([chosen.lockfile.url]))
    if not lock_contents:
        raise AttestationError(f"{request.address}: the lockfile of resolve {chosen.name!r}, "
                               f"{chosen.lockfile.url}, cannot be read (run `pants generate-lockfiles`)")
    content = lock_contents[0].content
    try:
        hashes = artifact_hashes(content.decode("utf-8", errors="replace"), chosen.lockfile.url)
    except PythonLockError as e:
        raise AttestationError(f"{request.address}: {e}") from None
    return WheelHashes(tuple(sorted(hashes.items())), (chosen.lockfile.url, hashlib.sha256(content).hexdigest()))


@dataclass(frozen=True)
class SourceRevisionRequest:
    pass


@dataclass(frozen=True)
class MaybeSourceRevision:
    revision: Optional[provenance.SourceRevision]


@rule(desc="Find the source revision", level=LogLevel.DEBUG)
async def source_revision(_: SourceRevisionRequest) -> MaybeSourceRevision:
    """The git commit of the build root, and whether the worktree differs from it; None outside a git worktree."""
    worktree = (await Get(MaybeGitWorktree, GitWorktreeRequest())).git_worktree
    if worktree is None:
        return MaybeSourceRevision(None)
    try:
        return MaybeSourceRevision(provenance.SourceRevision(
            worktree.commit_id, bool(worktree.changed_files(include_untracked=True))))
    except GitBinaryException as e:
        logger.debug(f"no source revision for the provenance: {e}")
        return MaybeSourceRevision(None)


@rule(desc="Write the SBOM and provenance of an OMI image", level=LogLevel.DEBUG)
async def attestations(request: AttestationsRequest, omi: OmiSubsystem) -> Attestations:
    assembled = request.assembled
    signing_key = omi.signing_key if request.signed else ""
    locked, revision = await MultiGet(Get(WheelHashes, WheelHashesRequest(request.address, request.python_addresses)),
                                      Get(MaybeSourceRevision, SourceRevisionRequest()))
    hashes = dict(locked.by_file)
    python = tuple(sbom.PythonDistribution(w.split("-")[0], w.split("-")[1], w, *hashes.get(w, (None, None)))
                   for w in request.wheels)

    digests = request.file_digests
    models = tuple(
        sbom.ModelContents(m.metadata.name, m.metadata.version, m.metadata.run_id, m.metadata.record.format,
                           tuple(sbom.ModelFile("/" + model_layer_path(m.metadata, f.relpath), sha, size)
                                 for f, (sha, size) in zip(m.files, found)))
        for m, found in zip(request.models, digests))
    image_digest = assembled.manifest.descriptor.digest
    contents = sbom.ImageContents(request.repository, assembled.tags[0], image_digest, request.base_name,
                                  request.base_digest, request.debian, python, models, OMI_VERSION)
    creators = (f"Tool: omi-{OMI_VERSION}", f"Tool: pants-{PANTS_VERSION}")
    sbom_data = sbom.spdx_bytes(sbom.spdx_document(contents, creators))

    own = request.models[0]
    materials = [
        provenance.Material("model.yaml", request.model_yaml[0],
                            "sha256:" + hashlib.sha256(request.model_yaml[1]).hexdigest()),
        *(provenance.Material("model file", _model_file_uri(m, f), sha)
          for m, found in zip(request.models, digests) for f, (sha, _) in zip(m.files, found)),
        *(provenance.Material("model artifact", m.artifact.reference, m.artifact.manifest.digest)
          for m in request.models if m.artifact is not None),
        *(provenance.Material("bundled model.yaml", m.metadata.source_file, f"sha256:{sha}")
          for m, sha in zip(request.models[1:], request.bundled_yaml_sha256)),
        provenance.Material("python lockfile", locked.lockfile[0], f"sha256:{locked.lockfile[1]}"),
        *(provenance.Material("debian lockfile", path, f"sha256:{sha}") for path, sha in request.locks),
        provenance.Material("base image", request.base_name, request.base_digest),
    ]
    facts = provenance.BuildFacts(
        target=str(request.address), run_id=own.metadata.run_id, model_name=own.metadata.name,
        model_version=own.metadata.version, materials=tuple(materials), parameters=request.parameters,
        revision=revision.revision, versions=(("omi", OMI_VERSION), ("pants", PANTS_VERSION)))
    model = model_subject(assembled.modelpack_manifest)
    # A model artifact someone else pushed is a material of this build, not one of its products: the provenance names
    # the image only and is attached to the image only. Signed, the artifact's files are signed as the artifact holds
    # them (by their paths in it, as a pull of it lays them out), and the signature refers to the artifact.
    foreign = own.artifact is not None
    products = [provenance.Subject(request.repository, image_digest)]
    if not foreign:
        products.append(provenance.Subject(f"{request.repository} (model artifact)", model.digest))
    statement = provenance.statement(products, facts)
    statement_data = json.dumps(statement, sort_keys=True, indent=2).encode() + b"\n"

    image = Descriptor(assembled.manifest.descriptor.media_type, image_digest, assembled.manifest.descriptor.size)
    attached = (image,) if foreign else (image, model)
    made = [referrers.referrer(mt.SPDX_JSON, sbom_data, image)]
    signatures: Tuple[referrers.Referrer, ...] = ()
    model_signature = None
    if not signing_key:
        in_toto = {mt.ANNOTATION_IN_TOTO_PREDICATE_TYPE: provenance.SLSA_PROVENANCE_V1}
        made += [referrers.referrer(mt.IN_TOTO_JSON, statement_data, subject, annotations=in_toto)
                 for subject in attached]
    else:
        # Signed, the provenance is the same statement in a bundle; the image and the model files get their own.
        if own.artifact is not None:
            model_files = [(f.path, f.digest.split(":", 1)[1]) for f in own.artifact.files]
        else:
            record_sha = hashlib.sha256(own.metadata.record_json()).hexdigest()
            model_files = [(model_layer_path(own.metadata, f.relpath), sha.split(":", 1)[1])
                           for f, (sha, _) in zip(own.files, digests[0])]
            model_files.append((model_layer_path(own.metadata, RECORD_FILE), record_sha))
        signed = dict((await Get(SignedStatements, SignStatementsRequest(request.address, (
            ("provenance", statement_data),
            ("image", json.dumps(signing.image_statement(request.repository, image_digest)).encode()),
            ("model", json.dumps(signing.model_files_statement(own.metadata.name, model_files)).encode()),
        )))).bundles)
        bundle = lambda predicate: {signing.ANNOTATION_PREDICATE_TYPE: predicate}  # noqa: E731
        made += [referrers.referrer(signing.BUNDLE_MEDIA_TYPE, signed["provenance"], subject,
                                    annotations=bundle(provenance.SLSA_PROVENANCE_V1)) for subject in attached]
        signatures = (
            referrers.referrer(signing.BUNDLE_MEDIA_TYPE, signed["image"], image,
                               annotations=bundle(signing.IMAGE_SIGNATURE_PREDICATE)),
            referrers.referrer(signing.BUNDLE_MEDIA_TYPE, signed["model"], model,
                               annotations=bundle(signing.MODEL_SIGNING_PREDICATE)),
        )
        model_signature = signed["model"]
    everything = (*made, *signatures)
    layout = await Get(Digest, CreateDigest([
        FileContent("oci-layout", oci_layout_bytes()),
        FileContent("index.json", referrers.layout_index(everything)),
        *(FileContent(path, data) for path, data in referrers.layout_files(everything)),
    ]))
    return Attestations(layout, sbom_data, made[0].manifest.descriptor.digest,
                        tuple(m.manifest.descriptor.digest for m in made[1:]),
                        tuple(s.manifest.descriptor.digest for s in signatures), model_signature, statement_data)


@dataclass(frozen=True)
class IndexAttestationsRequest:
    address: Address
    index: AssembledIndex
    repository: str
    platforms: Tuple[Attestations, ...]  # each platform's image's, in the index's order
    foreign_model: bool  # the model artifact is someone else's: a material, not a product
    signed: bool = True


@dataclass(frozen=True)
class IndexAttestations:
    """The referrers of every platform's image and of the index, in one layout."""

    layout: Digest
    provenance_digests: Tuple[str, ...]  # the index's provenance referrer
    signature_digests: Tuple[str, ...]  # the index's signature (with `[omi].signing_key`)


@rule(desc="Write the provenance of an OMI image index", level=LogLevel.DEBUG)
async def index_attestations(request: IndexAttestationsRequest, omi: OmiSubsystem) -> IndexAttestations:
    """Each platform's SBOM, provenance and signatures stay as a one-platform build writes them; the index gets a
    provenance of its own naming the index, each platform's image and the model artifact, built from every
    platform's materials, and (signed) a signature like an image's."""
    index = request.index.index.descriptor
    first = request.index.images[0][1]
    subjects = [provenance.Subject(request.repository, index.digest),
                *(provenance.Subject(f"{request.repository} ({platform.name})", image.manifest.descriptor.digest)
                  for platform, image in request.index.images)]
    if not request.foreign_model:
        subjects.append(provenance.Subject(f"{request.repository} (model artifact)",
                                           first.modelpack_manifest.descriptor.digest))
    statement = provenance.index_statement([json.loads(a.statement) for a in request.platforms], subjects,
                                           [platform.name for platform, _ in request.index.images])
    statement_data = json.dumps(statement, sort_keys=True, indent=2).encode() + b"\n"
    attached = Descriptor(index.media_type, index.digest, index.size)
    made: List[referrers.Referrer] = []
    signatures: List[referrers.Referrer] = []
    if not (omi.signing_key if request.signed else ""):
        made.append(referrers.referrer(mt.IN_TOTO_JSON, statement_data, attached, annotations={
            mt.ANNOTATION_IN_TOTO_PREDICATE_TYPE: provenance.SLSA_PROVENANCE_V1}))
    else:
        signed = dict((await Get(SignedStatements, SignStatementsRequest(request.address, (
            ("provenance", statement_data),
            ("image", json.dumps(signing.image_statement(request.repository, index.digest)).encode()),
        )))).bundles)
        made.append(referrers.referrer(signing.BUNDLE_MEDIA_TYPE, signed["provenance"], attached, annotations={
            signing.ANNOTATION_PREDICATE_TYPE: provenance.SLSA_PROVENANCE_V1}))
        signatures.append(referrers.referrer(signing.BUNDLE_MEDIA_TYPE, signed["image"], attached, annotations={
            signing.ANNOTATION_PREDICATE_TYPE: signing.IMAGE_SIGNATURE_PREDICATE}))
    indexes = await MultiGet(Get(DigestContents, DigestSubset(a.layout, PathGlobs(["index.json"])))
                             for a in request.platforms)
    platform_entries = [entry for contents in indexes for entry in json.loads(contents[0].content)["manifests"]]
    platform_blobs = await MultiGet(Get(Digest, DigestSubset(a.layout, PathGlobs(["blobs/**"])))
                                    for a in request.platforms)
    own = await Get(Digest, CreateDigest([
        FileContent("oci-layout", oci_layout_bytes()),
        FileContent("index.json", referrers.layout_index([*made, *signatures], platform_entries)),
        *(FileContent(path, data) for path, data in referrers.layout_files([*made, *signatures])),
    ]))
    return IndexAttestations(await Get(Digest, MergeDigests([*platform_blobs, own])),
                             tuple(m.manifest.descriptor.digest for m in made),
                             tuple(s.manifest.descriptor.digest for s in signatures))


def _model_file_uri(model: ModelInputs, file: ModelFile) -> str:
    """A file of the repository by its path; a file of a registry artifact by the artifact and its path in it."""
    return f"{model.artifact.reference}#{file.relpath}" if model.artifact is not None else file.sandbox_path


def rules():
    return collect_rules()
