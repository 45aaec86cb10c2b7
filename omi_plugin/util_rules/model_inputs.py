"""Gathers an `omi_model` target's inputs: the validated model.yaml, the model files, and the Python closure."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Dict, Tuple

from pants.core.target_types import FileSourceField, ResourceSourceField
from pants.engine.addresses import Address, AddressInput, Addresses
from pants.engine.fs import Digest, DigestContents, DigestEntries, DigestSubset, FileEntry, PathGlobs, Snapshot
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    DependenciesRequest,
    HydratedSources,
    HydrateSourcesRequest,
    SourcesField,
    Targets,
    WrappedTarget,
    WrappedTargetRequest,
)

from omi_plugin.metadata.model_yaml import ModelMetadata, ModelYamlError, load_model_yaml
from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.target_types import ModelFilesField, ModelYamlSourceField, OmiModelDependenciesField


class OmiModelError(Exception):
    """An `omi_model` target's inputs are wrong. The message is one line: target, file, field, fix."""


@dataclass(frozen=True)
class ModelFile:
    relpath: str  # relative to the model directory, as listed in model.yaml `files`
    digest: Digest  # a digest holding only this file, at `sandbox_path`
    sandbox_path: str


@dataclass(frozen=True)
class ModelInputs:
    address: Address
    metadata: ModelMetadata
    files: Tuple[ModelFile, ...]
    python_addresses: Addresses  # handler code and requirements, plus the runtime


@dataclass(frozen=True)
class ModelInputsRequest:
    address: Address


@rule(desc="Read model.yaml and collect model files")
async def model_inputs(request: ModelInputsRequest, omi: OmiSubsystem) -> ModelInputs:
    address = request.address
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin="omi_model"))
    target = wrapped.target
    yaml_sources, own_files, dependencies = await MultiGet(
        Get(HydratedSources, HydrateSourcesRequest(target[ModelYamlSourceField])),
        Get(HydratedSources, HydrateSourcesRequest(target[ModelFilesField])),
        Get(Targets, DependenciesRequest(target[OmiModelDependenciesField])),
    )
    yaml_content = (await Get(DigestContents, Digest, yaml_sources.snapshot.digest))[0]
    yaml_text = yaml_content.content.decode("utf-8", errors="replace")
    model_dir = posixpath.dirname(yaml_content.path)

    mlmodel_text = None
    try:
        run_id_from = _run_id_from(yaml_text, yaml_content.path)
        if run_id_from:
            mlmodel_path = posixpath.normpath(posixpath.join(model_dir, run_id_from))
            found = await Get(DigestContents, PathGlobs([mlmodel_path]))
            mlmodel_text = found[0].content.decode("utf-8", errors="replace") if found else None
        metadata = load_model_yaml(yaml_text, yaml_content.path, mlmodel_text=mlmodel_text)
    except ModelYamlError as e:
        raise OmiModelError(f"{address}: {e}") from None

    file_targets = [t for t in dependencies if t.has_field(FileSourceField) or t.has_field(ResourceSourceField)]
    python_targets = [t for t in dependencies if t not in file_targets]
    dep_sources = await MultiGet(
        Get(HydratedSources, HydrateSourcesRequest(t[SourcesField])) for t in file_targets
    )
    available: Dict[str, Tuple[str, Snapshot]] = {}
    for path in own_files.snapshot.files:
        available[posixpath.relpath(path, model_dir)] = (path, own_files.snapshot)
    for t, hydrated in zip(file_targets, dep_sources):
        for path in hydrated.snapshot.files:
            available.setdefault(posixpath.relpath(path, t.address.spec_path), (path, hydrated.snapshot))

    wanted = []
    for i, rel in enumerate(metadata.files):
        rel = posixpath.normpath(rel)
        if rel not in available:
            raise OmiModelError(
                f"{address}: {yaml_content.path}: files[{i}]: model file {rel!r} is not provided "
                f"(add it to `model_files` of the target, or depend on a `file`/`http_source` target that provides it)"
            )
        wanted.append((i, rel, *available[rel]))
    subsets = await MultiGet(
        Get(Digest, DigestSubset(snapshot.digest, PathGlobs([path]))) for _, _, path, snapshot in wanted
    )
    entries = await MultiGet(Get(DigestEntries, Digest, d) for d in subsets)
    files = []
    for (i, rel, path, _), subset, entry in zip(wanted, subsets, entries):
        sizes = [e.file_digest.serialized_bytes_length for e in entry if isinstance(e, FileEntry)]
        if not sizes or sizes[0] == 0:
            raise OmiModelError(f"{address}: {path}: files[{i}]: model file is empty "
                                "(export the trained model again)")
        files.append(ModelFile(rel, subset, path))

    runtime = await Get(Address, AddressInput, AddressInput.parse(omi.runtime, description_of_origin="[omi].runtime"))
    python_addresses = Addresses(sorted({*(t.address for t in python_targets), runtime}))
    return ModelInputs(address, metadata, tuple(files), python_addresses)


def _run_id_from(text: str, file: str) -> str:
    from omi_plugin.metadata.model_yaml import parse_yaml

    value = parse_yaml(text, file).get("run_id_from")
    return value if isinstance(value, str) else ""


def rules():
    return collect_rules()
