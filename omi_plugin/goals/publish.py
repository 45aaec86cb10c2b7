"""`pants publish` for `omi_model`: push the packaged image, its ModelPack artifact and its attestations to each
registry, as `pants package` wrote them.

The push itself is `python -m omi_plugin.registry push`: every blob first (skipping what the registry has), the
manifests by digest, the tags last; the image and model artifact digests are checked against the build record's.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from pants.core.goals.package import BuiltPackage
from pants.core.goals.publish import (
    PublishFieldSet,
    PublishOutputData,
    PublishPackages,
    PublishProcesses,
    PublishRequest,
)
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    DigestSubset,
    FileEntry,
    MergeDigests,
    PathGlobs,
    SymlinkEntry,
)
from pants.engine.process import InteractiveProcess, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

from omi_plugin.blob_store.store import BlobStore
from omi_plugin.build_record import BuildRecord
from omi_plugin.registry.reference import parse as parse_reference
from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.target_types import (
    ExtraTagsField,
    ModelYamlSourceField,
    OmiModelOutputPathField,
    OmiRegistriesField,
    RepositoryField,
    SkipPushField,
)
from omi_plugin.util_rules.sandbox_tools import REGISTRY_TOOLS, ToolProcessRequest
from omi_plugin.util_rules.stored_layers import SHARED_BLOBS_DIR, BlobStoreLocation

DEFAULT_REGISTRIES = "<all default registries>"


class PublishOmiModelRequest(PublishRequest):
    pass


@dataclass(frozen=True)
class PublishOmiModelFieldSet(PublishFieldSet):
    publish_request_type = PublishOmiModelRequest
    required_fields = (ModelYamlSourceField,)

    registries: OmiRegistriesField
    repository: RepositoryField
    extra_tags: ExtraTagsField
    skip_push: SkipPushField
    output_path: OmiModelOutputPathField

    def get_output_data(self) -> PublishOutputData:
        return PublishOutputData({"publisher": "omi", **super().get_output_data()})


class RegistryConfigError(ValueError):
    pass


def select_registries(field_values: Tuple[str, ...], configured: Dict[str, Any], address: str) -> List[Tuple[str, bool]]:
    """(address, insecure) for each registry the target publishes to."""
    chosen: List[Tuple[str, bool]] = []
    for value in field_values:
        if value == DEFAULT_REGISTRIES:
            chosen += [(c["address"], bool(c.get("insecure", False))) for c in configured.values() if c.get("default")]
        elif value.startswith("@"):
            alias = value[1:]
            if alias not in configured:
                raise RegistryConfigError(
                    f"{address}: registries: unknown registry alias {value!r} (define it in [omi].registries; "
                    f"known: {', '.join(sorted(configured)) or 'none'})")
            chosen.append((configured[alias]["address"], bool(configured[alias].get("insecure", False))))
        else:
            chosen.append((value, False))
    return sorted(set(chosen))


@dataclass(frozen=True)
class PackageWithStoredBlobs:
    digest: Digest  # what `pants package` wrote under dist/


@rule(desc="Link the blob store's blobs of a package", level=LogLevel.DEBUG)
async def package_with_stored_blobs(request: PackageWithStoredBlobs, location: BlobStoreLocation) -> Digest:
    """The package, with each blob its layouts link to but that it does not hold (a blob of the blob store, which
    `pants package` hard-links into dist/ outside the digest) as an absolute link into the store."""
    entries = await Get(DigestEntries, Digest, request.digest)
    files = {e.path for e in entries if isinstance(e, FileEntry)}
    missing = set()
    for e in entries:
        if isinstance(e, SymlinkEntry) and not posixpath.isabs(e.target):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(e.path), e.target))
            if target.startswith(f"{SHARED_BLOBS_DIR}/") and target not in files:
                missing.add(target)
    store = BlobStore(location.root)
    links = await Get(Digest, CreateDigest([
        SymlinkEntry(path, store.blob("sha256:" + posixpath.basename(path))) for path in sorted(missing)]))
    return await Get(Digest, MergeDigests([request.digest, links]))


@rule(desc="Prepare to publish an OMI model image", level=LogLevel.DEBUG)
async def publish_omi_model(request: PublishOmiModelRequest, omi: OmiSubsystem) -> PublishProcesses:
    fs = request.field_set
    address = str(fs.address)
    output_base = fs.output_path.value_or_default(file_ending=None)
    package: BuiltPackage = request.packages[0]
    record_digest = await Get(Digest, DigestSubset(package.digest, PathGlobs([f"{output_base}.omi.json"])))
    record_file = f"{output_base}.omi.json"
    record = BuildRecord.from_json((await Get(DigestContents, Digest, record_digest))[0].content, record_file)
    names = lambda registry: tuple(f"{registry}/{record.repository}:{tag}" for tag in record.tags)  # noqa: E731

    if fs.skip_push.value:
        return PublishProcesses([PublishPackages(names=names("<registry>"), description=f"(by `skip_push` on {address})")])
    registries = select_registries(tuple(fs.registries.value or ()), dict(omi.registries), address)
    if not registries:
        return PublishProcesses([PublishPackages(
            names=names("<no registry>"),
            description="(no registry: set `registries` on the target or a default in [omi].registries)")])

    push_input = await Get(Digest, PackageWithStoredBlobs(package.digest))
    env_vars = await Get(EnvironmentVars, EnvironmentVarsRequest(["DOCKER_CONFIG", "HOME", "PATH", "OMI_REGISTRY_DEBUG"]))
    pushes = await MultiGet(
        Get(Process, ToolProcessRequest(
            packages=REGISTRY_TOOLS,
            module="omi_plugin.registry",
            args=_push_args(output_base, record, registry, insecure),
            input_digest=push_input,
            description=f"Push {address} to {registry}",
            extra_env=tuple(sorted((k, v) for k, v in env_vars.items() if v)),
        ))
        for registry, insecure in registries
    )
    processes = []
    for (registry, _), push in zip(registries, pushes):
        processes.append(PublishPackages(
            names=names(registry),
            process=InteractiveProcess.from_process(push),
            description=f"{registry}/{record.repository}@{record.image_digest}",
            data=PublishOutputData({
                "registry": registry,
                "repository": record.repository,
                "tags": record.tags,
                "image_digest": record.image_digest,
                "model_digest": record.model_digest,
                **({"omlmd_digest": record.omlmd_digest} if record.omlmd_digest else {}),
            }),
        ))
    return PublishProcesses(processes)


def _push_args(output_base: str, record: BuildRecord, registry: str, insecure: bool) -> Tuple[str, ...]:
    # Every layout is pushed as `pants package` wrote it; the image's and the model artifact's digests are held to
    # the build record's (the others are named by those two, through their subjects).
    args = ["push", "--layout", f"{output_base}.oci", "--modelpack-layout", f"{output_base}.modelpack.oci",
            "--registry", registry, "--repository", record.repository, "--expect-digest", record.image_digest,
            "--expect-model-digest", record.model_digest, *(arg for tag in record.tags for arg in ("--tag", tag))]
    if record.omlmd_layout:
        args += ["--omlmd-layout", record.omlmd_layout]
    if record.attestations:
        args += ["--attestations-layout", record.attestations.layout]
    if record.model_artifact:
        # The artifact the model came from is copied too, so the image's subject resolves where the image is; from
        # its own repository of the same registry by a cross-repository mount, with no bytes sent.
        source = parse_reference(record.model_artifact)
        if source.registry == registry and source.repository != record.repository:
            args += ["--mount-from", source.repository]
    if insecure:
        args.append("--insecure")
    return tuple(args)


def rules():
    return [*collect_rules(), *PublishOmiModelFieldSet.rules()]
