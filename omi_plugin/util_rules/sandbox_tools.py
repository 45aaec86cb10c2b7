"""Runs the plugin's Python tools (layer writer, .deb unpacker, compressor, checker) as sandboxed, cacheable processes.

The tools' own source files are the process input, so a change to them re-runs exactly the affected steps, and the
same processes can run on a remote executor. Tools that need only the standard library run on the Python that Pants
provides; those that need the pinned compressors (`[omi-tools]`) run in a virtualenv built from its lockfile.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Iterable, Tuple

from pants.backend.python.util_rules.pex import PexRequest, VenvPex
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.core.util_rules.adhoc_binaries import PythonBuildStandaloneBinary
from pants.engine.fs import CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from omi_plugin.tools_subsystem import OmiToolsSubsystem

# Tool packages by what they need, so that a change to one tool re-runs only its own processes (editing the checker
# must not invalidate every cached image layer). None of them imports Pants.
LAYER_TOOLS = ("omi_plugin.oci",)  # the layer writers and the compressor
BYTECODE_TOOLS = ("omi_plugin.oci", "omi_plugin.bytecode")
BASE_IMAGE_TOOLS = ("omi_plugin.oci", "omi_plugin.base_images")
CHECK_TOOLS = ("omi_contract", "omi_plugin.oci", "omi_plugin.metadata", "omi_plugin.check", "omi_plugin.supply_chain")
REGISTRY_TOOLS = ("omi_contract", "omi_plugin.oci", "omi_plugin.registry", "omi_plugin.blob_store")
STORE_TOOLS = ("omi_plugin.oci", "omi_plugin.blob_store")  # the model file layer writer
_DATA_SUFFIXES = (".py", ".json")


@dataclass(frozen=True)
class OmiToolsRequest:
    packages: Tuple[str, ...]


@dataclass(frozen=True)
class OmiTools:
    digest: Digest


@dataclass(frozen=True)
class ToolProcessRequest:
    """Run `python -m <module> <args>` in a sandbox with the tool `packages` and `input_digest`."""

    packages: Tuple[str, ...]
    module: str
    args: Tuple[str, ...]
    input_digest: Digest
    description: str
    output_directories: Tuple[str, ...] = ()
    output_files: Tuple[str, ...] = ()
    level: LogLevel = LogLevel.DEBUG
    extra_env: Tuple[Tuple[str, str], ...] = ()
    # Run with the `[omi-tools]` libraries (the compressors) importable.
    with_libraries: bool = False


def _package_files(package: str) -> Iterable[FileContent]:
    """The package's modules and data files, data subdirectories (e.g. JSON schemas) included."""

    def walk(entry, path: str) -> Iterable[FileContent]:  # type: ignore[no-untyped-def]
        for child in entry.iterdir():
            name = child.name
            if child.is_dir():
                if name != "__pycache__" and not (child / "__init__.py").is_file():
                    yield from walk(child, f"{path}/{name}")
            elif name.endswith(_DATA_SUFFIXES) and not name.endswith("_test.py") and name != "conftest.py":
                yield FileContent(f"{path}/{name}", child.read_bytes())

    yield from walk(resources.files(package), package.replace(".", "/"))  # type: ignore[attr-defined]


@rule
async def omi_tools(request: OmiToolsRequest) -> OmiTools:
    files = [fc for package in request.packages for fc in _package_files(package)]
    # The package __init__ may grow Pants-facing code later; the sandbox needs only a namespace marker.
    files = [fc for fc in files if fc.path != "omi_plugin/__init__.py"]
    files.append(FileContent("omi_plugin/__init__.py", b""))
    return OmiTools(await Get(Digest, CreateDigest(sorted(files, key=lambda f: f.path))))


_ENV = {"PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8", "TZ": "UTC"}


@dataclass(frozen=True)
class LibrariesProcessRequest:
    """`python -m <argv>` with the `[omi-tools]` libraries importable and the tool sources (in `input_digest`) on the
    path. Its own rule, so that rule tests can run tools with their own interpreter instead of building the venv."""

    argv: Tuple[str, ...]
    input_digest: Digest
    description: str
    output_directories: Tuple[str, ...]
    output_files: Tuple[str, ...]
    env: Tuple[Tuple[str, str], ...]
    level: LogLevel


@rule
async def tool_process(request: ToolProcessRequest, python: PythonBuildStandaloneBinary) -> Process:
    tools = await Get(OmiTools, OmiToolsRequest(request.packages))
    input_digest = await Get(Digest, MergeDigests([tools.digest, request.input_digest]))
    if request.with_libraries:
        return await Get(Process, LibrariesProcessRequest(
            argv=("-m", request.module, *request.args),
            input_digest=input_digest,
            description=request.description,
            output_directories=request.output_directories,
            output_files=request.output_files,
            env=tuple(sorted({**_ENV, **dict(request.extra_env)}.items())),
            level=request.level,
        ))
    return Process(
        argv=(python.path, "-m", request.module, *request.args),
        input_digest=input_digest,
        description=request.description,
        output_directories=request.output_directories,
        output_files=request.output_files,
        env={"PYTHONPATH": ".", **_ENV, **dict(request.extra_env)},
        append_only_caches=python.APPEND_ONLY_CACHES,
        level=request.level,
    )


@rule
async def libraries_process(request: LibrariesProcessRequest, libraries: OmiToolsSubsystem,
                            pex_environment: PexEnvironment) -> Process:
    venv = await Get(VenvPex, PexRequest, libraries.to_pex_request())
    input_digest = await Get(Digest, MergeDigests([venv.digest, request.input_digest]))
    # The venv's own interpreter, not its `pex` launcher: one interpreter start less per tool run, and PYTHONPATH
    # works as usual (the launcher scrubs it).
    return Process(
        argv=(venv.python.argv0, *request.argv),
        input_digest=input_digest,
        description=request.description,
        output_directories=request.output_directories,
        output_files=request.output_files,
        env={"PYTHONPATH": ".", **dict(request.env)},
        append_only_caches={**pex_environment.in_sandbox(working_directory=None).append_only_caches,
                            **dict(venv.append_only_caches or {})},
        level=request.level,
    )


def last_error_line(result: FallibleProcessResult, fallback: str) -> str:
    """A failed tool's one-line error (the tools' CLI contract: `error: <line>` last on stderr)."""
    lines = result.stderr.decode().strip().splitlines() or [fallback]
    line = lines[-1]
    return line[len("error: "):] if line.startswith("error: ") else line


def rules():
    """Every rule but `libraries_process` (see `library_rules`)."""
    own = {"libraries_process"}
    return collect_rules({name: value for name, value in globals().items() if name not in own})


def library_rules():
    """The venv-building `libraries_process`, which rule tests replace (omi_testutil/rules.py)."""
    return collect_rules({"libraries_process": libraries_process})
