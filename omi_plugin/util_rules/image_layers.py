"""The layers an omi image adds on its base: the runtime's (dependencies, application code, their bytecode) and the
model's (one per model file, plus the model record). Each runtime layer is its own cacheable process; a model file's
layer goes to the blob store instead (`stored_layers.py`).

This is the one module that knows how a packed PEX is laid out: `.deps/` holds the third-party wheels, the rest
(minus the PEX's own bootstrap) is first-party code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Tuple, cast

from pants.backend.python.util_rules.pex import Pex, PexLayout
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import CreateDigest, Digest, DigestEntries, DigestSubset, FileContent, PathGlobs
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

from omi_contract.image import (
    APP_DIR,
    DEPENDENCY_LAYER_NOTE,
    MODEL_FILE_LAYER_NOTE,
    MODEL_RECORD_LAYER_NOTE,
    RECORD_FILE,
    SITE_PACKAGES_DIR,
)
from omi_plugin.oci import compression, platforms
from omi_plugin.oci.platforms import Platform
from omi_plugin.omi_image import model_layer_path
from omi_plugin.util_rules.base_image import BaseImage, BaseImageError, BaseImageRequest, DefaultBaseImageRequest
from omi_plugin.util_rules.foreign_wheels import PEX_DIR, ForeignDependencies, ForeignDependenciesRequest
from omi_plugin.util_rules.layers import BuildLayerRequest, BuiltLayer, CompileBytecodeRequest, CompressLayerRequest
from omi_plugin.util_rules.model_inputs import ModelInputs, single_file_entries
from omi_plugin.util_rules.stored_layers import StoredModelLayer, StoredModelLayerRequest

# Parts of a packed PEX that only its own bootstrap needs: the image starts Python directly.
PEX_BOOTSTRAP = (".deps", ".bootstrap", "__pex__", "__main__.py", "PEX-INFO")


@dataclass(frozen=True)
class RuntimeLayersRequest:
    address: Address  # the omi_model, for descriptions
    python_addresses: Addresses  # handler code, requirements and the runtime
    base_address: Optional[Address]  # whose interpreter compiles the bytecode; None: omi's default base
    platform: Optional[Platform] = None  # what the dependencies are resolved for; None: the build machine


@dataclass(frozen=True)
class RuntimeLayers:
    """In image order: dependencies, their bytecode, application code, its bytecode."""

    layers: Tuple[BuiltLayer, ...]
    distributions: Tuple[Tuple[str, str], ...]  # (name, version) of each third-party distribution, sorted
    app_layer_count: int = 2  # the last two are first-party code
    wheels: Tuple[str, ...] = ()  # the file names of the wheels the dependency layer was unpacked from, sorted


def wheel_files(paths: Iterable[str]) -> Tuple[str, ...]:
    """The wheel file names a packed PEX holds, as `.deps/<wheel file name>` (a zip file, or the directory of an
    unpacked one)."""
    found = set()
    for path in paths:
        parts = path.split("/")
        if ".deps" in parts[:-1]:
            wheel = parts[parts.index(".deps") + 1]
            if wheel.endswith(".whl"):
                found.add(wheel)
    return tuple(sorted(found))


def wheel_distributions(paths: Iterable[str]) -> Tuple[Tuple[str, str], ...]:
    """(name, version) of each wheel a packed PEX holds."""
    return tuple(sorted({(w.split("-")[0], w.split("-")[1]) for w in wheel_files(paths)}))


@rule(desc="Build the runtime layers of an OMI image", level=LogLevel.DEBUG)
async def runtime_layers(request: RuntimeLayersRequest) -> RuntimeLayers:
    host = platforms.build_machine()
    base, pex = await MultiGet(
        Get(BaseImage, BaseImageRequest(request.base_address, request.platform)),
        Get(Pex, PexFromTargetsRequest(
            request.python_addresses,
            output_filename=PEX_DIR,
            internal_only=False,
            layout=PexLayout.PACKED,
            description=f"Resolve the runtime of {request.address}",
        )),
    )
    # Another platform's dependencies: the same locked versions, as that platform's wheels (`foreign_wheels.py`);
    # first-party code is the same on every platform.
    deps_pex = pex.digest
    if request.platform is not None and request.platform != host:
        deps_pex = (await Get(ForeignDependencies, ForeignDependenciesRequest(
            request.address, request.python_addresses, request.platform))).pex
    # Bytecode is compiled by the build machine's twin of a base of another platform (CPython's bytecode does not
    # depend on the machine).
    interpreter = await Get(BaseImage, DefaultBaseImageRequest()) if base.config.platform != host else base
    if interpreter is not base and (not base.config.python_version
                                    or base.config.python_version != interpreter.config.python_version):
        raise BaseImageError(f"{request.address}: the {base.config.platform.name} base {base.config.name} has a "
                             f"CPython ({base.config.python_version or 'of a version omi cannot tell'}) other than "
                             f"the build machine's default base ({interpreter.config.python_version}), whose "
                             "interpreter compiles its bytecode (use omi's default base for this platform)")
    deps_input, app_input = await MultiGet(
        Get(Digest, DigestSubset(deps_pex, PathGlobs([f"{PEX_DIR}/.deps/**"]))),
        Get(Digest, DigestSubset(pex.digest, PathGlobs([f"{PEX_DIR}/**", *(f"!{PEX_DIR}/{p}" for p in PEX_BOOTSTRAP),
                                                         *(f"!{PEX_DIR}/{p}/**" for p in PEX_BOOTSTRAP)]))),
    )
    deps_layer, app_layer = await MultiGet(
        Get(BuiltLayer, BuildLayerRequest, BuildLayerRequest.of({
            "created_by": DEPENDENCY_LAYER_NOTE,
            "zips": [{"src": f"{PEX_DIR}/.deps", "dest": SITE_PACKAGES_DIR.lstrip("/"),
                      "skip": [".layout.json", ".prefix/"]}],
        }, deps_input, f"Layer: Python dependencies of {request.address}")),
        Get(BuiltLayer, BuildLayerRequest, BuildLayerRequest.of({
            "created_by": "omi: application code",
            "trees": [{"src": PEX_DIR, "dest": APP_DIR.lstrip("/"), "exclude": list(PEX_BOOTSTRAP)}],
        }, app_input, f"Layer: application code of {request.address}")),
    )
    deps_entries = await Get(DigestEntries, Digest, deps_input)
    deps_bytecode, app_bytecode = await MultiGet(
        Get(BuiltLayer, CompileBytecodeRequest(
            interpreter.layers, interpreter.blobs, interpreter.config.python, interpreter.config.loader,
            interpreter.config.library_path, source,
            f"Compile bytecode: {source.layer.created_by.replace('omi: ', '')} of {request.address}",
        ))
        for source in (deps_layer, app_layer)
    )
    paths = [e.path for e in deps_entries]
    return RuntimeLayers((deps_layer, deps_bytecode, app_layer, app_bytecode), wheel_distributions(paths),
                         wheels=wheel_files(paths))


@dataclass(frozen=True)
class ModelLayersRequest:
    inputs: ModelInputs
    setting: compression.Setting  # of the model layers


@dataclass(frozen=True)
class ModelFileLayer:
    relpath: str  # relative to the model directory, as model.yaml lists it
    built: BuiltLayer  # in its distribution form
    file_digest: str  # "sha256:<hex>" of the model file
    file_size: int


@dataclass(frozen=True)
class ModelLayers:
    """A model's layers in their distribution form (compressed as the model layers are)."""

    files: Tuple[ModelFileLayer, ...]  # as model.yaml lists them
    record: BuiltLayer  # /models/<name>/omi-model.json


@rule(desc="Build the model layers of an OMI image", level=LogLevel.DEBUG)
async def model_layers(request: ModelLayersRequest) -> ModelLayers:
    """A model file on disk becomes its layer in the blob store, in one pass (`stored_layers.py`); a downloaded one
    (`http_source`, already in Pants's store) and the small record are layers built and compressed in sandboxes."""
    inputs, setting = request.inputs, request.setting
    metadata = inputs.metadata
    on_disk = [f for f in inputs.files if f.digest is None]
    downloaded = [f for f in inputs.files if f.digest is not None]
    record_digest = await Get(Digest, CreateDigest([FileContent(RECORD_FILE, metadata.record_json())]))
    gets: List[Get[Any]] = [
        Get(BuiltLayer, BuildLayerRequest, BuildLayerRequest.of({
            "created_by": f"{MODEL_RECORD_LAYER_NOTE} {RECORD_FILE}",
            "files": [{"src": RECORD_FILE, "dest": model_layer_path(metadata, RECORD_FILE)}],
        }, record_digest, f"Layer: model record of {inputs.address}")),
        *(Get(StoredModelLayer, StoredModelLayerRequest(
            f.sandbox_path, model_layer_path(metadata, f.relpath), f"{MODEL_FILE_LAYER_NOTE} {f.relpath}", setting,
            f.stored)) for f in on_disk),
        *(Get(BuiltLayer, BuildLayerRequest, BuildLayerRequest.of({
            "created_by": f"{MODEL_FILE_LAYER_NOTE} {f.relpath}",
            "files": [{"src": f.sandbox_path, "dest": model_layer_path(metadata, f.relpath)}],
        }, cast(Digest, f.digest), f"Layer: model file {f.sandbox_path}")) for f in downloaded),
    ]
    results = await MultiGet(gets)
    record_built, stored = cast(BuiltLayer, results[0]), cast(Tuple[StoredModelLayer, ...], results[1:1 + len(on_disk)])
    built = cast(Tuple[BuiltLayer, ...], results[1 + len(on_disk):])
    entries = await single_file_entries([cast(Digest, f.digest) for f in downloaded])
    compressed = await MultiGet(
        Get(BuiltLayer, CompressLayerRequest(b.layer, b.blobs, setting,
                                             f"Compress ({setting.algorithm}) layer: "
                                             f"{b.layer.created_by.replace('omi: ', '')} of {inputs.address}"))
        for b in (record_built, *built)
    )
    # By the file's path in the model: two files of a registry artifact with the same bytes are one blob of the store.
    by_path = {f.relpath: ModelFileLayer(f.relpath, s.built, s.file_digest, s.file_size)
               for f, s in zip(on_disk, stored)}
    by_path.update({f.relpath: ModelFileLayer(f.relpath, b, f"sha256:{e.file_digest.fingerprint}",
                                              e.file_digest.serialized_bytes_length)
                    for f, b, e in zip(downloaded, compressed[1:], entries)})
    return ModelLayers(tuple(by_path[f.relpath] for f in inputs.files), compressed[0])


def rules():
    return collect_rules()
