"""The Pants side of the blob store (`omi_plugin/blob_store/`): where it is, model file layers written into it, the
model files' sha256s from its stat cache, and its blobs hard-linked into dist/.

Model bytes never pass through Pants's store: a model file's layer is written straight into the blob store, in one
pass over the file, by an uncached process, and found there again by a `stat` on the next build. A layer's blob
reaches layouts as an absolute symlink into the store (`BuiltLayer.blobs`), which sandboxes follow; `pants package`
puts a hard link to it in `dist/omi-blobs/sha256/`. These rules read outside the engine's view of the files, so they
are uncacheable: they run again in each session, which costs a `stat` per file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from pants.base.build_root import BuildRoot
from pants.core.util_rules.distdir import DistDir
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent, SymlinkEntry
from pants.engine.process import Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, _uncacheable_rule, collect_rules, rule
from pants.util.logging import LogLevel

from omi_plugin.blob_store import file_layer, sources, write_file_blob, write_file_layer
from omi_plugin.blob_store.store import BlobStore, BlobStoreError, default_root
from omi_plugin.blob_store.write_file_layer import STORED_JSON
from omi_plugin.oci import canonical_json, compression
from omi_plugin.oci.layout import blob_path
from omi_plugin.registry.model_fetch import StoredFile
from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.util_rules.layers import BuiltLayer
from omi_plugin.util_rules.sandbox_tools import STORE_TOOLS, ToolProcessRequest

logger = logging.getLogger(__name__)

# Every blob of every layout `pants package` writes, once: `dist/omi-blobs/sha256/<hex>`.
SHARED_BLOBS_DIR = "omi-blobs"
_SPEC = "__store_spec.json"
_OUT = "__stored"


class BlobStoreRuleError(ValueError):
    """One line: `<file or option>: <what is wrong> (<how to fix it>)`."""


@dataclass(frozen=True)
class BlobStoreLocation:
    root: str  # absolute


@rule
async def blob_store_location(omi: OmiSubsystem) -> BlobStoreLocation:
    if omi.blob_store:
        root = os.path.expanduser(omi.blob_store)
        if not os.path.isabs(root):
            raise BlobStoreRuleError(f"[omi].blob_store = {omi.blob_store!r}: give an absolute path (the store is "
                                     "shared by every checkout on the machine)")
        return BlobStoreLocation(os.path.normpath(root))
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(["OMI_CACHE_DIR", "XDG_CACHE_HOME", "HOME"]))
    return BlobStoreLocation(default_root(env))


def report(store: BlobStore) -> None:
    """What the store found wrong and mended: a warning each, so a corrupted cache never goes unnoticed."""
    for problem in store.problems:
        logger.warning(problem)
    store.problems.clear()


def store_links(store_root: str, digests: Iterable[str]) -> Tuple[SymlinkEntry, ...]:
    """`blobs/sha256/<hex>` as an absolute link to the store's blob, for a layout or a sandbox."""
    store = BlobStore(store_root)
    return tuple(SymlinkEntry(blob_path(d), store.blob(d)) for d in sorted(set(digests)))


async def _run_store_tool(module: str, spec: Mapping[str, Any], description: str,
                          with_libraries: bool = False) -> Dict[str, Any]:
    """Run one of the blob store's writers (`omi_plugin.blob_store.write_*`) and return its answer, after logging
    the problems the store found on the way.

    A writer reads a model file and writes the store, outside its sandbox: it is never cached, and runs at most once
    per session.
    """
    spec_digest = await Get(Digest, CreateDigest([FileContent(_SPEC, canonical_json.dumps(spec))]))
    process = await Get(Process, ToolProcessRequest(
        packages=STORE_TOOLS,
        module=module,
        args=(_SPEC, _OUT),
        input_digest=spec_digest,
        description=description,
        output_directories=(_OUT,),
        level=LogLevel.INFO,
        with_libraries=with_libraries,
    ))
    result = await Get(ProcessResult, Process, dataclasses.replace(process, cache_scope=ProcessCacheScope.PER_SESSION))
    contents = await Get(DigestContents, Digest, result.output_digest)
    answer: Dict[str, Any] = json.loads(next(c.content for c in contents if c.path.endswith(STORED_JSON)))
    for problem in answer.pop("problems", []):
        logger.warning(problem)
    return answer


@dataclass(frozen=True)
class StoredModelLayerRequest:
    path: str  # the model file, relative to the build root
    dest: str  # its path in the image
    created_by: str
    setting: compression.Setting
    # A file of a registry artifact: its sha256 is known, and its bytes may be kept inside another layer
    stored: Optional[StoredFile] = None


@dataclass(frozen=True)
class StoredModelLayer:
    built: BuiltLayer  # in its distribution form; `blobs` links into the store
    file_digest: str  # "sha256:<hex>" of the model file
    file_size: int


@_uncacheable_rule(desc="Write a model file layer to the blob store", level=LogLevel.DEBUG)
async def stored_model_layer(request: StoredModelLayerRequest, location: BlobStoreLocation,
                             build_root: BuildRoot) -> StoredModelLayer:
    store = BlobStore(location.root)
    known = request.stored
    spec = file_layer.FileLayerSpec(os.path.join(build_root.path, request.path), request.dest, request.created_by,
                                    request.setting) if known is None else \
        file_layer.FileLayerSpec(known.held_in(store), request.dest, request.created_by, request.setting,
                                 known.digest, known.offset, known.size)
    try:
        stored = file_layer.find(store, spec)
    except (OSError, BlobStoreError) as e:
        raise BlobStoreRuleError(f"{request.path}: cannot be read for its layer ({e})") from None
    report(store)
    if stored is None:
        stored = file_layer.StoredFileLayer.from_json(await _run_store_tool(
            write_file_layer.__name__, {"store": store.root, "layer": spec.to_json()},
            f"Layer: model file {request.path} (into the blob store)",
            with_libraries=request.setting.algorithm != compression.NONE))
    links = await Get(Digest, CreateDigest(store_links(store.root, [stored.layer.descriptor.digest])))
    return StoredModelLayer(BuiltLayer(stored.layer, links), stored.file_digest, stored.file_size)


@dataclass(frozen=True)
class StoredFileBlobRequest:
    path: str  # the model file, relative to the build root
    digest: str  # "sha256:<hex>" of its bytes, as its layer found them in this session
    # Bytes kept inside another blob of the store (a file of a registry artifact, in its image layer): from here
    offset: int = 0
    size: int = -1


@dataclass(frozen=True)
class StoredFileBlob:
    blobs: Digest  # `blobs/sha256/<hex>`, an absolute link to the store's copy of the file


@_uncacheable_rule(desc="Copy a model file into the blob store", level=LogLevel.DEBUG)
async def stored_file_blob(request: StoredFileBlobRequest, location: BlobStoreLocation,
                           build_root: BuildRoot) -> StoredFileBlob:
    """The model file's own bytes as a blob (the omlmd flavour's layers are the raw files; a process reading a file of
    a registry artifact), copied into the store once by an uncached process and found there by its name afterwards."""
    store = BlobStore(location.root)
    if not store.has(request.digest):
        report(store)
        part = {"offset": request.offset, "size": request.size} if request.size >= 0 else {}
        await _run_store_tool(write_file_blob.__name__, {
            "store": store.root, "source": os.path.join(build_root.path, request.path), "digest": request.digest,
            **part,
        }, f"Copy model file {request.path} (into the blob store)")
    return StoredFileBlob(await Get(Digest, CreateDigest(store_links(store.root, [request.digest]))))


@dataclass(frozen=True)
class ModelFileDigestsRequest:
    paths: Tuple[str, ...]  # relative to the build root


@dataclass(frozen=True)
class ModelFileDigests:
    digests: Tuple[str, ...]  # "sha256:<hex>", in request order


@_uncacheable_rule(desc="Hash model files (stat cache)", level=LogLevel.DEBUG)
async def model_file_digests(request: ModelFileDigestsRequest, location: BlobStoreLocation,
                             build_root: BuildRoot) -> ModelFileDigests:
    """The model files' sha256s, from the store's stat cache: a file hashed by an earlier build is not read again."""
    store = BlobStore(location.root)
    found = []
    for path in request.paths:
        named = _stored_blob_digest(store, os.path.join(build_root.path, path))
        if named is not None:
            found.append(named)  # a file of a registry artifact: a verified blob, named by its sha256
            continue
        try:
            found.append(sources.file_digest(store, os.path.join(build_root.path, path)))
        except (OSError, sources.SourceChangedError) as e:
            raise BlobStoreRuleError(f"{path}: cannot be hashed ({e})") from None
    return ModelFileDigests(tuple(found))


def _stored_blob_digest(store: BlobStore, path: str) -> Optional[str]:
    """The digest of a blob of the store, from its name, when `path` is one and its bytes are verified."""
    digest = store.digest_of(path)
    return digest if digest is not None and store.has(digest) else None


@dataclass(frozen=True)
class StoredBlobsInDistRequest:
    digests: Tuple[str, ...]  # blobs of the store that dist/ layouts link to


@dataclass(frozen=True)
class StoredBlobsInDist:
    paths: Tuple[str, ...]  # dist/-relative


@_uncacheable_rule(desc="Link blob store blobs into dist/", level=LogLevel.DEBUG)
async def stored_blobs_in_dist(request: StoredBlobsInDistRequest, location: BlobStoreLocation, omi: OmiSubsystem,
                               build_root: BuildRoot, distdir: DistDir) -> StoredBlobsInDist:
    """Hard-link each blob to `dist/omi-blobs/sha256/<hex>` (a copy across file systems), then bound the store.

    A hard link, not a symlink: a layout in dist/ stays whole when the store is pruned or deleted. It runs in every
    session, so `rm -rf dist` is followed by links made anew, at no cost in bytes.
    """
    store = BlobStore(location.root)
    placed = []
    for digest in request.digests:
        relative = f"{SHARED_BLOBS_DIR}/{blob_path(digest)[len('blobs/'):]}"
        if not store.has(digest):
            report(store)
            raise BlobStoreRuleError(f"{store.blob(digest)}: the blob left the store during the build (run `pants "
                                     "package` again)")
        try:
            store.link_out(digest, os.path.join(build_root.path, str(distdir.relpath), relative))
        except OSError as e:
            raise BlobStoreRuleError(f"{relative}: cannot be linked into dist/ ({e})") from None
        placed.append(relative)
    store.prune(omi.blob_store_max_size)
    report(store)
    return StoredBlobsInDist(tuple(placed))


def rules():
    return collect_rules()
