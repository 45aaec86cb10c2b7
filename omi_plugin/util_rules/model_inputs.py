"""Gathers an `omi_model` target's inputs: the validated model.yaml, the model files, and the Python closure."""

from __future__ import annotations

import json
import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, Mapping, Optional, Sequence, Tuple, cast

from pants.base.build_root import BuildRoot
from pants.core.target_types import FileSourceField, ResourceSourceField
from pants.engine.addresses import Address, Addresses, BuildFileAddress, BuildFileAddressRequest
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    DigestSubset,
    FileContent,
    FileEntry,
    MergeDigests,
    PathGlobs,
    Paths,
    RemovePrefix,
    Snapshot,
    SymlinkEntry,
)
from pants.engine.rules import Get, MultiGet, _uncacheable_rule, collect_rules, rule
from pants.engine.target import (
    DependenciesRequest,
    HydratedSources,
    HydrateSourcesRequest,
    SourcesField,
    Targets,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.option.global_options import UnmatchedBuildFileGlobs

from omi_contract import formats, huggingface, model_files
from omi_contract.image import RECORD_FILE
from omi_plugin.blob_store.file_blob import open_slice
from omi_plugin.blob_store.store import BlobStore
from omi_plugin.metadata.model_yaml import (
    ModelMetadata,
    ModelYamlError,
    expand_files,
    load_model_yaml,
    parse_yaml,
    run_id_from_path,
)
from omi_plugin.oci.compression import AUTO, NONE
from omi_plugin.omi_image import model_dir_in_image
from omi_plugin.registry.model_fetch import StoredArtifact, StoredFile
from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.target_types import (
    ModelArtifactField,
    ModelCompressionField,
    ModelFilesField,
    ModelYamlSourceField,
    OmiModelDependenciesField,
)
from omi_plugin.util_rules.model_artifact import ModelArtifactError, StoredModelArtifactRequest
from omi_plugin.util_rules.runtime_library import RuntimeLibraryError, ServerAddresses, ServerAddressesRequest
from omi_plugin.util_rules.stored_layers import (
    BlobStoreLocation,
    ModelFileDigests,
    ModelFileDigestsRequest,
    StoredFileBlob,
    StoredFileBlobRequest,
)
from omi_plugin.util_rules.target_fields import TargetFieldProblems, TargetFieldsRequest


class OmiModelError(Exception):
    """An `omi_model` target's inputs are wrong. The message is one line: target, file, field, fix."""


@dataclass(frozen=True)
class ModelFile:
    relpath: str  # relative to the model directory, as listed in model.yaml `files`
    digest: Optional[Digest]  # a downloaded file: a digest holding only it, at `sandbox_path`; None: on disk
    sandbox_path: str  # relative to the build root; a file of a registry artifact: its blob's absolute path
    # A file of a registry artifact, and the blob of the store its bytes are in: its own (`sandbox_path`), or the
    # image layer it was downloaded into, which holds them from `stored.offset` (then `sandbox_path` is made only
    # when a process needs the file: `ModelsDirectory`).
    stored: Optional[StoredFile] = None
    held_in: str = ""

    def open(self, build_root: str) -> BinaryIO:
        """Its bytes, as a file."""
        if self.stored is not None and self.stored.within:
            return open_slice(self.held_in, self.stored.offset, self.stored.size)
        return open(os.path.join(build_root, self.sandbox_path), "rb")


@dataclass(frozen=True)
class ModelInputs:
    address: Address
    metadata: ModelMetadata
    files: Tuple[ModelFile, ...]
    python_addresses: Addresses  # handler code and requirements, plus the runtime
    artifact: Optional[StoredArtifact] = None  # the registry artifact the model files come from


@dataclass(frozen=True)
class ModelInputsRequest:
    address: Address


@dataclass(frozen=True)
class ModelSources:
    """An omi_model's raw inputs, collected without judging them (the checker reports what is wrong)."""

    address: Address
    yaml_path: str
    yaml_bytes: bytes  # as read: model.yaml's parser refuses what is not UTF-8
    mlmodel_bytes: Optional[bytes]  # the `run_id_from` file, when model.yaml names one that exists
    mlmodel_path: Optional[str]  # its repository path
    # (relpath, path, single-file digest of a downloaded file or None for a file on disk, size)
    available: Tuple[Tuple[str, str, Optional[Digest], int], ...]
    python_addresses: Addresses  # handler code and requirements, plus the runtime
    # (relpath, what was read of it) for each file on disk: what `omi_contract.model_files` judges without loading
    samples: Tuple[Tuple[str, model_files.Sample], ...] = ()
    # A huggingface model's `omi_contract.huggingface.DirectoryFacts` as JSON: what is judged without loading it
    text_model_facts: str = ""
    # `model_artifact`: the artifact, in the blob store; its files are the `available` ones (paths into the store)
    artifact: Optional[StoredArtifact] = None

    def sizes(self) -> Dict[str, int]:
        return {rel: size for rel, _, _, size in self.available}


@dataclass(frozen=True)
class ModelSourcesRequest:
    address: Address


@_uncacheable_rule(desc="Collect model.yaml and model files")
async def model_sources(request: ModelSourcesRequest, build_root: BuildRoot, unmatched: UnmatchedBuildFileGlobs,
                        location: BlobStoreLocation, omi: OmiSubsystem) -> ModelSources:
    """Model files on disk are listed, not read: their bytes go to the blob store (see `stored_layers.py`), never
    to Pants's store. Only a downloaded file (`http_source`) is a digest. Uncacheable: sizes come from `stat`."""
    address = request.address
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin="omi_model"))
    target = wrapped.target
    try:
        yaml_sources, own_files, dependencies = await MultiGet(
            Get(HydratedSources, HydrateSourcesRequest(target[ModelYamlSourceField])),
            Get(Paths, PathGlobs, target[ModelFilesField].path_globs(unmatched)),
            Get(Targets, DependenciesRequest(target[OmiModelDependenciesField])),
        )
        file_targets = [t for t in dependencies if t.has_field(FileSourceField) or t.has_field(ResourceSourceField)]
        downloaded = [t for t in file_targets if not isinstance(t[SourcesField].value, str)]
        on_disk = [t for t in file_targets if t not in downloaded]
        listed = await MultiGet(Get(Paths, PathGlobs, t[SourcesField].path_globs(unmatched)) for t in on_disk)
        fetched = await MultiGet(
            Get(HydratedSources, HydrateSourcesRequest(t[SourcesField])) for t in downloaded
        )
        yaml_content = (await Get(DigestContents, Digest, yaml_sources.snapshot.digest))[0]
        sizes = {path: os.stat(os.path.join(build_root.path, path)).st_size
                 for paths in (own_files, *listed) for path in paths.files}
    except Exception as e:  # noqa: BLE001 - Pants words unreadable sources as raw engine errors
        build = await Get(BuildFileAddress, BuildFileAddressRequest(address, description_of_origin="omi_model"))
        raise OmiModelError(_unreadable_sources(address, build.rel_path, e)) from None
    model_dir = posixpath.dirname(yaml_content.path)

    fields = _yaml_fields(yaml_content.content)
    mlmodel_bytes = None
    run_id_from = _string(fields, "run_id_from")
    mlmodel_path = run_id_from_path(yaml_content.path, run_id_from) if run_id_from else None
    if mlmodel_path:  # a path outside the repository is reported when model.yaml is validated
        found = await Get(DigestContents, PathGlobs([mlmodel_path]))
        mlmodel_bytes = found[0].content if found else None

    python_targets = [t for t in dependencies if t not in file_targets]
    candidates: Dict[str, Tuple[str, Optional[Snapshot]]] = {}
    in_store: Dict[str, StoredFile] = {}  # a file of a registry artifact, by its blob's path
    artifact = None
    reference = target[ModelArtifactField].value
    if reference and (await Get(TargetFieldProblems, TargetFieldsRequest(address))).lines == ():
        name = _string(fields, "name")
        # Raw layers are downloaded straight into the image's layers of their files when those may be uncompressed
        # (a bad name is model.yaml's error; compressed layers are written from the downloaded files).
        compressed = (target[ModelCompressionField].value or omi.model_compression) not in (AUTO, NONE)
        model_dir = model_dir_in_image(name) if _PLAIN_NAME.match(name) and not compressed else ""
        try:
            artifact = await Get(StoredArtifact, StoredModelArtifactRequest(address, reference, model_dir))
        except ModelArtifactError as e:
            raise OmiModelError(str(e)) from None
        store = BlobStore(location.root)
        for file in artifact.files:
            candidates[file.path] = (store.blob(file.digest), None)
            sizes[store.blob(file.digest)] = file.size
            in_store[store.blob(file.digest)] = file
    for path in own_files.files:
        candidates[posixpath.relpath(path, model_dir)] = (path, None)
    for t, paths in zip(on_disk, listed):
        for path in paths.files:
            candidates.setdefault(posixpath.relpath(path, t.address.spec_path), (path, None))
    for t, hydrated in zip(downloaded, fetched):
        for path in hydrated.snapshot.files:
            candidates.setdefault(posixpath.relpath(path, t.address.spec_path), (path, hydrated.snapshot))
    ordered = sorted(candidates.items())
    fetched_files = [(rel, path, snapshot) for rel, (path, snapshot) in ordered if snapshot is not None]
    subsets = await MultiGet(
        Get(Digest, DigestSubset(snapshot.digest, PathGlobs([path]))) for _, path, snapshot in fetched_files
    )
    entries = await MultiGet(Get(DigestEntries, Digest, d) for d in subsets)
    for (_, path, _), entry in zip(fetched_files, entries):
        sizes[path] = next((e.file_digest.serialized_bytes_length for e in entry if isinstance(e, FileEntry)), 0)
    digests = {path: subset for (_, path, _), subset in zip(fetched_files, subsets)}
    available = tuple((rel, path, digests.get(path), sizes[path]) for rel, (path, _) in ordered)

    handler_format = "" if _string(fields, "handler") else _string(fields, "format")
    def open_file(path: str) -> BinaryIO:
        stored = in_store.get(path)
        return stored.open(BlobStore(location.root)) if stored is not None else open(path, "rb")

    samples = tuple((rel, _read_sample(build_root.path, path, rel, handler_format, open_file))
                    for rel, path, digest, _ in available if digest is None)
    # A directory with downloaded files is judged when the model loads (`pants check`'s smoke test included).
    text_model_facts = huggingface.DirectoryFacts.read(
        [(rel, os.path.join(build_root.path, path)) for rel, path, _, _ in available], open_file
    ).to_json() if handler_format == huggingface.FORMAT and all(d is None for _, _, d, _ in available) else ""
    try:
        server = await Get(ServerAddresses, ServerAddressesRequest(address, handler_format))
    except RuntimeLibraryError as e:
        raise OmiModelError(str(e)) from None
    runtime = server.addresses
    python_addresses = Addresses(sorted({*(t.address for t in python_targets), *runtime}))
    return ModelSources(address, yaml_content.path, yaml_content.content, mlmodel_bytes,
                        mlmodel_path if mlmodel_bytes is not None else None, available,
                        python_addresses, samples, text_model_facts, artifact)


def _read_sample(build_root: str, path: str, name: str, format_name: str,
                 open_file: Callable[[str], BinaryIO]) -> model_files.Sample:
    """As much of a model file as `model_files` needs: more of a file the format may load than of the others (a
    file that cannot be read is reported by the step that reads it)."""
    fmt = formats.lookup(format_name)
    wanted = model_files.HEAD_BYTES if fmt is not None and name.lower().endswith(fmt.model_suffixes) else \
        model_files.LFS_HEAD
    try:
        return model_files.read_sample(os.path.join(build_root, path), wanted, open_file)
    except OSError:
        return model_files.Sample(b"", -1)


@rule(desc="Read model.yaml and collect model files")
async def model_inputs(request: ModelInputsRequest, location: BlobStoreLocation) -> ModelInputs:
    field_problems, sources = await MultiGet(
        Get(TargetFieldProblems, TargetFieldsRequest(request.address)),
        Get(ModelSources, ModelSourcesRequest(request.address)),
    )
    field_problems.raise_first()
    address = sources.address
    try:
        metadata = load_model_yaml(sources.yaml_bytes, sources.yaml_path, mlmodel_text=sources.mlmodel_bytes)
    except ModelYamlError as e:
        raise OmiModelError(f"{address}: {e}") from None

    available = {posixpath.normpath(rel): (path, digest, size) for rel, path, digest, size in sources.available}
    store = BlobStore(location.root)
    in_store = {store.blob(f.digest): f for f in sources.artifact.files} if sources.artifact else {}
    files = []
    for expanded in expand_files(metadata.files, available):
        i, entry = expanded.index, expanded.entry
        if not expanded.names and sources.artifact is not None:
            held = sorted(rel for rel, _, _, _ in sources.available)
            raise OmiModelError(
                f"{address}: {sources.yaml_path}: files[{i}]: {entry!r} is not in the model artifact "
                f"{sources.artifact.reference} (it holds {', '.join(held[:8]) or 'no files'}"
                f"{', ...' if len(held) > 8 else ''}; name a path the artifact holds)"
            )
        if not expanded.names:
            raise OmiModelError(
                f"{address}: {sources.yaml_path}: files[{i}]: model file {entry!r} is not provided (add it to "
                "`model_files` of the target, or depend on a `file`/`http_source` target that provides it; for a "
                f"directory, glob its files: `{entry.rstrip('/')}/**`)"
            )
        for rel in expanded.new:
            path, digest, size = available[rel]
            if size == 0 and expanded.is_file:
                raise OmiModelError(f"{address}: {path}: files[{i}]: model file is empty "
                                    "(export the trained model again)")
            stored = in_store.get(path)
            files.append(ModelFile(rel, digest, path, stored, stored.held_in(store) if stored else ""))
    samples = {posixpath.normpath(rel): sample for rel, sample in sources.samples if sample.size >= 0}
    wrong = model_files.problems(metadata.record.format if not metadata.record.handler else "",
                                 {f.relpath: samples[f.relpath] for f in files if f.relpath in samples})
    if wrong:
        more = f" [and {len(wrong) - 1} more]" if len(wrong) > 1 else ""
        raise OmiModelError(f"{address}: {posixpath.join(metadata.model_dir, wrong[0])}{more}")
    if sources.text_model_facts:
        found = huggingface.DirectoryFacts.from_json(sources.text_model_facts).check(
            metadata.record.raw, [f.relpath for f in files])
        if found is not None:
            where = posixpath.join(metadata.model_dir, found.path) if found.path else metadata.source_file
            raise OmiModelError(f"{address}: {where}: {found.field}: {found.problem} ({found.fix})")
    return ModelInputs(address, metadata, tuple(files), sources.python_addresses, sources.artifact)


@dataclass(frozen=True)
class ModelsDirectory:
    """The models as the runtime expects them: `models/<name>/omi-model.json` plus the model files."""

    digest: Digest
    path: str = "models"


@rule(desc="Lay out the model directory")
async def models_directory(inputs: ModelInputs, build_root: BuildRoot) -> ModelsDirectory:
    """Model files on disk are absolute links to them, with their sha256s beside (`MODEL_FILE_DIGESTS`), so a process
    that reads them through the links is keyed by their bytes, not only by their paths. A file of a registry artifact
    kept only inside its image layer is copied out as a blob of its own first, once (a process needs a file)."""
    name = inputs.metadata.name
    on_disk = [f for f in inputs.files if f.digest is None]
    downloaded = [f for f in inputs.files if f.digest is not None]
    await MultiGet(Get(StoredFileBlob, StoredFileBlobRequest(f.held_in, f.stored.digest, f.stored.offset, f.stored.size))
                   for f in on_disk if f.stored is not None and f.stored.within)
    hashed, *relocated = await MultiGet(
        Get(ModelFileDigests, ModelFileDigestsRequest(tuple(f.sandbox_path for f in on_disk))),
        *(Get(Digest, RemovePrefix(f.digest, f.sandbox_path[: -len(f.relpath)].rstrip("/")))
          if f.sandbox_path != f.relpath else Get(Digest, MergeDigests([f.digest]))
          for f in downloaded if f.digest is not None),
    )
    digests = cast(ModelFileDigests, hashed).digests
    own = await Get(Digest, CreateDigest([
        FileContent(RECORD_FILE, inputs.metadata.record_json()),
        *(SymlinkEntry(f.relpath, os.path.join(build_root.path, f.sandbox_path)) for f in on_disk),
    ]))
    merged = await Get(Digest, MergeDigests([*cast(Tuple[Digest, ...], relocated), own]))
    placed, key = await MultiGet(
        Get(Digest, AddPrefix(merged, f"models/{name}")),
        Get(Digest, CreateDigest([FileContent(f"{MODEL_FILE_DIGESTS}/{name}.json", json.dumps(
            {f.relpath: d for f, d in zip(on_disk, digests)}, sort_keys=True).encode())])),
    )
    return ModelsDirectory(await Get(Digest, MergeDigests([placed, key])))


# Beside `models/` in a models directory: the sha256 of each model file linked from it, by model name.
MODEL_FILE_DIGESTS = "__model_file_digests"


async def single_file_digests(files: Sequence[ModelFile]) -> Tuple[Digest, ...]:
    """A digest holding each file (at its `sandbox_path`; a file of a registry artifact at its `relpath`), reading a
    file on disk into Pants's store: only for the one step that needs model bytes there, MLflow's check of its small
    metadata files."""
    return tuple(await MultiGet(
        Get(Digest, MergeDigests([f.digest])) if f.digest is not None else
        Get(Digest, CreateDigest([FileContent(f.relpath, _read_stored(f))]))
        if f.stored is not None else Get(Digest, PathGlobs([f.sandbox_path]))
        for f in files
    ))


def _read_stored(file: ModelFile) -> bytes:
    """A file of a registry artifact: bytes of the blob store, named by their sha256, so reading them from a cached
    rule reads the same bytes every time."""
    with file.open("/") as f:
        return f.read()


# Enough to keep a name out of other paths; model.schema.json says what a name may be, and reports it.
_PLAIN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ABSOLUTE_LINK = re.compile(r'Failed to read link "([^"]+)": Absolute symlink: "([^"]+)"')
_ESCAPING_GLOB = re.compile(r'Globs may not traverse outside of the buildroot: "([^"]+)"')
_FIELD_FILES = re.compile(r"The '(\w+)' field in target \S+ (.+?)\.?$", re.M)


async def single_file_entries(digests: Sequence[Digest]) -> Tuple[FileEntry, ...]:
    """The file each single-file digest (a `ModelFile.digest`) holds: its sha256 is the store's own fingerprint, so
    model bytes are never read to learn it."""
    found = await MultiGet(Get(DigestEntries, Digest, d) for d in digests)
    return tuple(next(e for e in entries if isinstance(e, FileEntry)) for entries in found)


def _unreadable_sources(address: Address, build_file: str, error: Exception) -> str:
    """One line for sources Pants cannot read: a symlink out of the repository, a field matching no file."""
    text = str(error)
    absolute = _ABSOLUTE_LINK.search(text)
    escaping = _ESCAPING_GLOB.search(text)
    if absolute or escaping:
        link = absolute.group(1) if absolute else escaping.group(1)  # type: ignore[union-attr]
        where = link[link.find(f"/{address.spec_path}/") + 1:] if f"/{address.spec_path}/" in link else link
        pointee = f" ({absolute.group(2)})" if absolute else ""
        return (f"{address}: {where}: model_files: is a symlink to a path outside the repository{pointee} "
                "(copy the file into the repository, or provide it with an `http_source` pinned by sha256)")
    field = _FIELD_FILES.search(text)
    if field:
        return (f"{address}: {build_file}: {field.group(1)}: {field.group(2)} (create the file next to the BUILD "
                "file, or point the field at it)")
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), type(error).__name__)
    return f"{address}: {build_file}: sources: cannot be read: {last}"


def _yaml_fields(data: bytes) -> Mapping[str, Any]:
    """model.yaml's top-level fields, or none when it does not parse (reported when the file is validated)."""
    try:
        return parse_yaml(data, "model.yaml")
    except ModelYamlError:
        return {}


def _string(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    return value if isinstance(value, str) else ""


def rules():
    return collect_rules()
