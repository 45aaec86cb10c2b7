"""Metadata rules (OMI1xx): model.yaml, the model files it lists, the run id, repository and handler.

Unlike `load_model_yaml`, which stops at the first problem (right for `package`), every problem is reported.
Schema errors are explained by model_yaml's own `_explain`, so `check` and `package` word them identically.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from omi_contract import huggingface, interfaces, record
from omi_contract.violation import Collector, Violation
from omi_plugin.check import schemas
from omi_plugin.check.expectations import Expectations
from omi_plugin.metadata import model_yaml
from omi_plugin.metadata.model_yaml import ModelYamlError
from omi_plugin.oci.references import REPOSITORY_RE

# The distribution spec caps repository names (with the registry host) at 255 characters.
MAX_REPOSITORY_LENGTH = 255


@dataclass(frozen=True)
class MetadataInputs:
    """What the metadata rules look at. Optional parts skip the rules that need them when None."""

    file: str  # model.yaml's path as users know it (e.g. examples/digits/model.yaml)
    text: Union[bytes, str]  # bytes as read: parse_model_yaml refuses what is not UTF-8
    model_files: Optional[Mapping[str, int]] = None  # path relative to model.yaml's directory -> size in bytes
    repository: Optional[str] = None
    source_files: Optional[Sequence[str]] = None  # Python sources shipped with the image, source-root relative
    mlmodel_text: Optional[Union[bytes, str]] = None  # content of the `run_id_from` file, when model.yaml names one
    spec_version: str = "1.0"
    text_model_facts: Optional[str] = None  # a huggingface model's omi_contract.huggingface.DirectoryFacts as JSON


@dataclass(frozen=True)
class MetadataResult:
    violations: List[Violation]
    data: Optional[Dict[str, Any]]
    expectations: Expectations = field(default_factory=Expectations)


def check_metadata(target: str, inputs: MetadataInputs) -> MetadataResult:
    """Run every OMI1xx rule; also derive what the image and the artifact must agree with."""
    out = Collector(target, inputs.file)
    try:
        data = model_yaml.parse_model_yaml(inputs.text, inputs.file)
    except ModelYamlError as e:
        out.add("OMI100", e.field, e.problem, e.fix)
        _check_repository(out, inputs.repository)
        return MetadataResult(out.violations, None, Expectations(spec_version=inputs.spec_version))
    _check_schema(out, data)
    _check_files(out, data, inputs.model_files)
    _check_interfaces(out, data)
    run_id = _check_run_id(out, data, inputs)
    _check_repository(out, inputs.repository)
    _check_handler(out, data, inputs.source_files, inputs.model_files)
    _check_tensors_and_samples(out, data)
    _check_format(out, data, inputs)
    return MetadataResult(out.violations, data,
                          Expectations.from_model_yaml(data, run_id, inputs.spec_version, inputs.model_files))


def _check_schema(out: Collector, data: Mapping[str, Any]) -> None:
    for error in schemas.model_yaml_errors(data):
        path = list(error.absolute_path)
        # OMI104 explains a non-OMI interface string better than the schema's enum message.
        if len(path) == 2 and path[0] == "interfaces" and error.validator == "enum":
            continue
        out.add("OMI101", *schemas.explain_model_yaml(error))


def _check_files(out: Collector, data: Mapping[str, Any], model_files: Optional[Mapping[str, int]]) -> None:
    for problem in record.file_path_problems(data):
        out.add(problem.rule, problem.field, problem.problem, problem.fix)
    if model_files is None:
        return
    present = {posixpath.normpath(k): v for k, v in model_files.items()}
    files = data.get("files")
    entries = [p if isinstance(p, str) and not record.points_outside(p) else None  # the schema rule or OMI112
               for p in (files if isinstance(files, list) else [])]
    for expanded in model_yaml.expand_files(entries, present):
        i, path = expanded.index, expanded.entry
        if not expanded.names:
            out.add("OMI102", f"files[{i}]", f"{path!r} is not among the target's model files, nor a directory of them",
                    "add it to the omi_model target's `model_files` or fix the path in model.yaml")
        elif expanded.is_file and present[expanded.names[0]] <= 0:
            out.add("OMI103", f"files[{i}]", f"{path!r} is empty (0 bytes)",
                    "point at the real model file; an empty file cannot be loaded")


def _check_interfaces(out: Collector, data: Mapping[str, Any]) -> None:
    for problem in record.interface_problems(data):
        out.add(problem.rule, problem.field, problem.problem, problem.fix)
    declared = data.get("interfaces", list(interfaces.DEFAULT_INTERFACES))
    if not isinstance(declared, list):
        return  # the schema rule reports the type
    for required in interfaces.OMI_MINIMUM:
        if required not in declared:
            out.add("OMI105", "interfaces",
                    f"{required} is missing; OMI 1.0 requires {' and '.join(interfaces.OMI_MINIMUM)}",
                    f"add {required} to `interfaces`")


def _check_run_id(out: Collector, data: Dict[str, Any], inputs: MetadataInputs) -> Optional[str]:
    run_id = model_yaml.resolve_run_id(data, inputs.file, inputs.mlmodel_text)
    for rule, e in run_id.problems:
        out.add(rule, e.field, e.problem, e.fix, where=e.file if e.file != inputs.file else "")
    return run_id.value


def _check_repository(out: Collector, repository: Optional[str]) -> None:
    if repository is None:
        return
    if not REPOSITORY_RE.match(repository) or len(repository) > MAX_REPOSITORY_LENGTH:
        out.add("OMI110", "repository", f"{repository!r} is not a valid OCI repository name",
                "use lowercase path components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/'",
                where="BUILD")


def _module_files(module: str) -> List[str]:
    base = module.replace(".", "/")
    return [f"{base}.py", f"{base}/__init__.py"]


def _has_module(module: str, files: Sequence[str]) -> bool:
    """Module present among source-root-relative paths (or, leniently, as a path suffix)."""
    wanted = _module_files(module)
    return any(f in wanted or any(f.endswith("/" + w) for w in wanted) for f in files)


def _check_handler(out: Collector, data: Mapping[str, Any], source_files: Optional[Sequence[str]],
                   model_files: Optional[Mapping[str, int]]) -> None:
    handler = data.get("handler")
    missing = list(record.handler_problems(data))
    for problem in missing:
        out.add(problem.rule, problem.field, problem.problem, problem.fix)
    if missing:
        return
    # A built-in format's handler and libraries come from the model's resolve: the plugin finds them there, or
    # refuses to build (`omi_plugin/util_rules/runtime_library.py`).
    if source_files is None:
        return
    if isinstance(handler, str) and ":" in handler:
        module = handler.split(":", 1)[0]
        # omi_runtime imports custom handlers from PYTHONPATH, then from the model directory.
        if not _has_module(module, list(source_files) + list(model_files or {})):
            out.add("OMI111", "handler", f"module {module} of {handler!r} is not among the target's sources",
                    f"add {_module_files(module)[0]} to the omi_model target's dependencies or fix `handler`")


def _check_tensors_and_samples(out: Collector, data: Mapping[str, Any]) -> None:
    for problem in record.tensor_problems(data):
        out.add(problem.rule, problem.field, problem.problem, problem.fix)


def _check_format(out: Collector, data: Mapping[str, Any], inputs: MetadataInputs) -> None:
    """What the model's format asks: a huggingface model's task and tensors (OMI115), and its directory (OMI116)."""
    refused = {v.field for v in out.violations if v.rule == "OMI101"}  # the schema said it already
    problems = list(record.format_problems(data))
    for problem in problems:
        if problem.field not in refused:
            out.add(problem.rule, problem.field, problem.problem, problem.fix)
    if inputs.text_model_facts is None or inputs.model_files is None or data.get("handler") or \
            data.get("format") != huggingface.FORMAT or problems:
        return
    files = [name for entry in model_yaml.expand_files(data.get("files") or [], inputs.model_files)
             for name in entry.new]
    found = huggingface.DirectoryFacts.from_json(inputs.text_model_facts).check(data, files)
    if found is not None:
        where = posixpath.join(posixpath.dirname(inputs.file), found.path) if found.path else ""
        out.add("OMI116", found.field, found.problem, found.fix, where=where)
