"""Runs the plugin's pure-Python tools (layer writer, .deb unpacker, checker) as sandboxed, cacheable processes.

The tools' own source files are the process input, so a change to them re-runs exactly the affected steps, and the
same processes can run on a remote executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Iterable, Tuple

from pants.core.util_rules.adhoc_binaries import PythonBuildStandaloneBinary
from pants.engine.fs import CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.process import Process
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

# Tool packages by what they need, so that a change to one tool re-runs only its own processes (editing the checker
# must not invalidate every cached image layer). None of them imports Pants.
LAYER_TOOLS = ("omi_plugin.oci",)
BYTECODE_TOOLS = ("omi_plugin.oci", "omi_plugin.bytecode")
BASE_IMAGE_TOOLS = ("omi_plugin.oci", "omi_plugin.base_images")
CHECK_TOOLS = ("omi_contract", "omi_plugin.oci", "omi_plugin.metadata", "omi_plugin.check")
REGISTRY_TOOLS = ("omi_plugin.oci", "omi_plugin.registry")
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


@rule
async def tool_process(request: ToolProcessRequest, python: PythonBuildStandaloneBinary) -> Process:
    tools = await Get(OmiTools, OmiToolsRequest(request.packages))
    input_digest = await Get(Digest, MergeDigests([tools.digest, request.input_digest]))
    return Process(
        argv=(python.path, "-m", request.module, *request.args),
        input_digest=input_digest,
        description=request.description,
        output_directories=request.output_directories,
        output_files=request.output_files,
        env={"PYTHONPATH": ".", "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8", "TZ": "UTC", **dict(request.extra_env)},
        append_only_caches=python.APPEND_ONLY_CACHES,
        level=request.level,
    )


def rules():
    return collect_rules()
