"""`pants check` for `omi_model`: OMI and ModelPack compliance, reported as one line per violation.

Three passes per target, each a sandboxed process: the static checker over model.yaml and the model files, the same
checker over the packaged image and ModelPack layouts (reusing the package rule's output), and a live smoke test
that starts the runtime once per declared interface and sends the model's sample requests.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import List, Optional

from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexProcess, VenvPexRequest
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.backend.python.util_rules.python_sources import PythonSourceFilesRequest, StrippedPythonSourceFiles
from pants.core.goals.check import CheckRequest, CheckResult, CheckResults
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import AddPrefix, CreateDigest, Digest, DigestContents, FileContent, MergeDigests, PathGlobs
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import TransitiveTargets, TransitiveTargetsRequest
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from omi_contract.violation import summary
from omi_plugin.goals.package import OmiImage, OmiImageRequest, OmiModelFieldSet, image_platforms
from omi_plugin.metadata.model_yaml import ModelYamlError, parse_yaml
from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.util_rules.foreign_smoke import ForeignSmokeRequest, ForeignSmokeResult
from omi_plugin.util_rules.image_models import ImageModels, ImageModelsRequest
from omi_plugin.util_rules.model_inputs import (
    ModelsDirectory,
    ModelSources,
    ModelSourcesRequest,
)
from omi_plugin.util_rules.runtime_library import ServerAddresses, ServerAddressesRequest
from omi_plugin.util_rules.sandbox_tools import CHECK_TOOLS, ToolProcessRequest
from omi_plugin.util_rules.target_fields import TargetFieldProblems, TargetFieldsRequest

TOOL_NAME = "omi"
OK_SUMMARY = summary([])  # the static checker's last line when it finds nothing


class OmiCheckRequest(CheckRequest):
    field_set_type = OmiModelFieldSet
    tool_name = TOOL_NAME


@dataclass(frozen=True)
class OmiTargetCheck:
    field_set: OmiModelFieldSet


@dataclass(frozen=True)
class OmiTargetCheckResult:
    exit_code: int
    output: str


def one_line_error(address: Address, error: Exception, step: str) -> str:
    """An exception's own one-line message (ours name their target already), else `<target>: <step>: <last line>`."""
    text = str(error).strip()
    last = text.splitlines()[-1].strip() if text else type(error).__name__
    return last if last.startswith(f"{address}: ") else f"{address}: {step}: {last}"


def _model_name(model_yaml: bytes) -> Optional[str]:
    try:
        name = parse_yaml(model_yaml, "model.yaml").get("name")
    except ModelYamlError:
        return None  # the static pass reports why
    return name if isinstance(name, str) and name else None


def _static_args(fs: OmiModelFieldSet, sources: ModelSources, with_image: bool, repository: Optional[str],
                 omi_spec: str, with_attestations: bool = False, with_verify_key: bool = False) -> List[str]:
    args = ["--target", str(fs.address), "--model-yaml", sources.yaml_path, "--model-files-json", "__model_files.json",
            "--omi-spec", omi_spec, "--source-files-json", "__source_files.json"]
    if sources.text_model_facts:
        args += ["--text-model-json", TEXT_MODEL_FILE]
    if repository is not None:
        args += ["--repository", repository]
    if with_image:
        args += ["--layout", "__image.oci", "--layout-name", "image", "--modelpack-layout", "__modelpack.oci",
                 "--modelpack-layout-name", "model artifact"]
    if with_image and sources.artifact is not None:
        args += ["--model-artifact", sources.artifact.reference]
    if with_attestations:
        args += ["--attestations-layout", "__attestations.oci", "--attestations-layout-name", "attestations"]
    if with_verify_key:
        args += ["--verify-key", VERIFY_KEY_FILE]
    return args


VERIFY_KEY_FILE = "__verify_key.pem"
TEXT_MODEL_FILE = "__text_model.json"


async def _verify_key(fs: OmiModelFieldSet, omi: OmiSubsystem) -> Optional[Digest]:
    """`[omi].verify_key` as a file for the checker's sandbox; a public key belongs in the repository."""
    path = omi.verify_key
    if not path:
        return None
    if os.path.isabs(path):
        raise OmiCheckConfigError(f"{fs.address}: [omi].verify_key = {path!r}: give a path relative to the build root "
                                  "(a public key is not a secret; commit it next to the BUILD files)")
    found = await Get(DigestContents, PathGlobs([path]))
    if not found:
        raise OmiCheckConfigError(f"{fs.address}: [omi].verify_key = {path!r} does not exist (the PEM public key of "
                                  "[omi].signing_key: `openssl ec -in key.pem -pubout -out pub.pem`)")
    return await Get(Digest, CreateDigest([FileContent(VERIFY_KEY_FILE, found[0].content)]))


class OmiCheckConfigError(ValueError):
    """One line: `<target>: [omi].<option>: <what is wrong> (<how to fix it>)`."""


@rule(desc="Check an OMI model target", level=LogLevel.DEBUG)
async def check_omi_target(request: OmiTargetCheck, omi: OmiSubsystem, pex_env: PexEnvironment) -> OmiTargetCheckResult:
    fs = request.field_set
    field_problems, sources = await MultiGet(
        Get(TargetFieldProblems, TargetFieldsRequest(fs.address)),
        Get(ModelSources, ModelSourcesRequest(fs.address)),
    )
    transitive = await Get(TransitiveTargets, TransitiveTargetsRequest(sources.python_addresses))
    stripped = await Get(StrippedPythonSourceFiles, PythonSourceFilesRequest(transitive.closure))
    inputs_json = await Get(Digest, CreateDigest([
        FileContent("__model_files.json", json.dumps(sources.sizes(), sort_keys=True).encode()),
        FileContent("__source_files.json", json.dumps(sorted(stripped.stripped_source_files.snapshot.files)).encode()),
        FileContent(sources.yaml_path, sources.yaml_bytes),
        *([FileContent(TEXT_MODEL_FILE, sources.text_model_facts.encode())] if sources.text_model_facts else []),
        # The checker reads the run id where model.yaml's `run_id_from` points.
        *([FileContent(sources.mlmodel_path, sources.mlmodel_bytes)]
          if sources.mlmodel_path is not None and sources.mlmodel_bytes is not None else []),
    ]))
    # A field already refused is not judged again; `{name}` is the model's name, when model.yaml gives one.
    repository: Optional[str] = None
    if not field_problems.lines:
        repository = fs.repository.value or omi.default_repository
        if "{name}" in repository:
            name = _model_name(sources.yaml_bytes)
            repository = repository.replace("{name}", name) if name else None
    omi_spec = "1.0" if field_problems.lines else (fs.omi_spec.value or "1.0")

    # The image is only built when the metadata is sound; otherwise the static pass alone says what is wrong.
    image = None
    build_error = "\n".join(field_problems.lines)
    if not field_problems.lines:
        try:
            # Signatures are made only when they are to be verified: a checkout without the key can still check.
            image = await Get(OmiImage, OmiImageRequest(fs, signed=bool(omi.verify_key)))
        except Exception as e:  # noqa: BLE001 - any build failure becomes a check failure with its message
            build_error = one_line_error(fs.address, e, "package")
    if image is not None:
        repository = image.record.repository
        layouts = await MultiGet(Get(Digest, AddPrefix(image.layout, "__image.oci")),
                                 Get(Digest, AddPrefix(image.modelpack_layout, "__modelpack.oci")),
                                 *([Get(Digest, AddPrefix(image.attestations_layout, "__attestations.oci"))]
                                   if image.attestations_layout else []))
        verify_key = await _verify_key(fs, omi)
        static_input = await Get(Digest, MergeDigests([inputs_json, *layouts, *([verify_key] if verify_key else [])]))
    else:
        static_input = inputs_json
    process = await Get(Process, ToolProcessRequest(
        packages=CHECK_TOOLS,
        module="omi_plugin.check",
        args=tuple(_static_args(fs, sources, image is not None, repository, omi_spec,
                                with_attestations=image is not None and image.attestations_layout is not None,
                                with_verify_key=image is not None and bool(omi.verify_key))),
        input_digest=static_input,
        description=f"omi check (static): {fs.address}",
        with_libraries=True,  # zstd layers are decompressed to verify their diff ids
    ))
    # The layouts' model blobs are links into the blob store, each named by the sha256 the store holds it to: the
    # process key names the bytes it reads, so a cached result reproduces.
    static = await Get(FallibleProcessResult, Process, process)
    output = static.stdout.decode() + static.stderr.decode()
    exit_code = static.exit_code
    if image is None:
        if exit_code == 0 or field_problems.lines:
            # An "OK" from the static pass (model.yaml is fine) must not stand under the target's failure.
            count = len(field_problems.lines)
            why = f"{count} violation{'s' if count > 1 else ''} in BUILD fields" if count else "the image cannot be built"
            output = f"{build_error}\n" + output.replace(f"{OK_SUMMARY}\n", f"omi check: {why}\n")
            exit_code = 1
        return OmiTargetCheckResult(exit_code, output)

    # Live smoke test: the runtime, from the same dependencies as the image, once per declared interface of each
    # model the image carries (a bundled model is served when MODEL_NAME names it).
    models = await Get(ImageModels, ImageModelsRequest(fs.address))
    checker = await Get(ServerAddresses, ServerAddressesRequest(fs.address, format="", smoke=True))
    pex_request = await Get(PexRequest, PexFromTargetsRequest(
        Addresses(sorted({*models.python_addresses, *checker.addresses})),
        output_filename="omi-smoke.pex",
        internal_only=True,
        main=EntryPoint("omi_runtime.smoke"),
        description=f"Build the smoke test runtime of {fs.address}",
    ))
    venv_pex, models_dir = await MultiGet(
        Get(VenvPex, VenvPexRequest(pex_request, pex_env.in_sandbox(working_directory=None))),
        Get(ModelsDirectory, ImageModels, models),
    )
    smokes = await MultiGet(Get(FallibleProcessResult, VenvPexProcess(
        venv_pex,
        argv=("--models-dir", models_dir.path, "--model", m.metadata.name, "--target", str(fs.address),
              "--interfaces", json.dumps(m.metadata.interfaces), "--", venv_pex.python.argv0, "-m", "omi_runtime"),
        input_digest=models_dir.digest,
        description=(f"omi check (smoke test of {', '.join(m.metadata.interfaces)}): {fs.address}"
                     + (f" with MODEL_NAME={m.metadata.name}" if models.bundled else "")),
        level=LogLevel.DEBUG,
        timeout_seconds=600,
        # Model files are links out of the sandbox; their sha256s are in its input (`MODEL_FILE_DIGESTS`), so the
        # key names the bytes it reads.
        cache_scope=ProcessCacheScope.SUCCESSFUL,
    )) for m in models.all)
    if exit_code == 0 and any(smoke.exit_code for smoke in smokes):
        output = output.replace(f"{OK_SUMMARY}\n", "")  # the smoke test's summary below says what failed
    for m, smoke in zip(models.all, smokes):
        header = f"MODEL_NAME={m.metadata.name}:\n" if models.bundled else ""
        output += header + smoke.stdout.decode() + smoke.stderr.decode()
    # Each image of another platform than the machine's: its own interpreter under qemu-user, when installed.
    foreign = [p for p in image_platforms(fs, omi) if p is not None]
    by_platform = {p.platform: p.image_digest for p in image.record.platform_images}
    foreign_results = await MultiGet(Get(ForeignSmokeResult, ForeignSmokeRequest(
        fs.address, image.layout, by_platform.get(p.name, image.record.image_digest), p, venv_pex, models_dir,
        ("--model", m.metadata.name, "--target", str(fs.address), "--interfaces", json.dumps(m.metadata.interfaces),
         "--timeout", "900", "--start-timeout", "300", "--call-timeout", "120"),
        f"omi check (smoke test of the {p.name} image under qemu): {fs.address}"
        + (f" with MODEL_NAME={m.metadata.name}" if models.bundled else ""),
    )) for p in foreign for m in models.all)
    for result in foreign_results:
        output += result.output
    smoke_codes = [*(smoke.exit_code for smoke in smokes), *(r.exit_code for r in foreign_results)]
    return OmiTargetCheckResult(max(exit_code, *smoke_codes), output)


@dataclass(frozen=True)
class GuardedTargetCheck:
    field_set: OmiModelFieldSet


@rule(desc="Check an OMI model target, whatever fails", level=LogLevel.DEBUG)
async def guarded_target_check(request: GuardedTargetCheck) -> OmiTargetCheckResult:
    """One target's check, its failure of any kind turned into a failed result, so it never stops the others."""
    try:
        return await Get(OmiTargetCheckResult, OmiTargetCheck(request.field_set))
    except Exception as e:  # noqa: BLE001 - `pants check ::` must report every target, whatever broke one
        return OmiTargetCheckResult(1, one_line_error(request.field_set.address, e, "check") + "\n")


@rule(desc="Check OMI compliance", level=LogLevel.DEBUG)
async def check_omi(request: OmiCheckRequest) -> CheckResults:
    results = await MultiGet(Get(OmiTargetCheckResult, GuardedTargetCheck(fs)) for fs in request.field_sets)
    return CheckResults(
        [CheckResult(r.exit_code, r.output, "", partition_description=str(fs.address))
         for fs, r in zip(request.field_sets, results)],
        checker_name=TOOL_NAME,
    )


def rules():
    return [*collect_rules(), UnionRule(CheckRequest, OmiCheckRequest)]
