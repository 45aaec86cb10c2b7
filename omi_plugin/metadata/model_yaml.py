"""Load and validate `model.yaml` into a `ModelMetadata`, with one-line errors naming file, field and fix.

Pure Python (PyYAML + jsonschema), no Pants imports: the package, check and run goals and the tests all use it.
"""

from __future__ import annotations

import functools
import json
import pkgutil
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import jsonschema
import yaml

from omi_contract import formats, huggingface
from omi_contract.interfaces import DEFAULT_INTERFACES
from omi_contract.record import DEFAULT_INPUTS, DEFAULT_OUTPUTS, ModelRecord, RecordError, model_problems
from omi_plugin.metadata import strict_yaml
from omi_plugin.oci import canonical_json
from omi_plugin.oci.references import TAG_RE

# Fields whose strings are prose or data, where newlines and tabs are the author's own.
FREE_TEXT_FIELDS = ("description", "samples")


class ModelYamlError(ValueError):
    """One problem in a model.yaml: `<file>: <field>: <what is wrong> (<how to fix>)`."""

    def __init__(self, file: str, field: str, problem: str, fix: str) -> None:
        self.file, self.field, self.problem, self.fix = file, field, problem, fix
        super().__init__(f"{file}: {field}: {problem} ({fix})")


@functools.lru_cache(maxsize=None)
def model_schema() -> Dict[str, Any]:
    """model.schema.json, with the format names of the format table as `format`'s enum and the huggingface tasks as
    `task`'s (their one home)."""
    data = pkgutil.get_data("omi_plugin.metadata", "model.schema.json")
    assert data is not None
    schema = json.loads(data)
    schema["properties"]["format"]["enum"] = list(formats.NAMES)
    schema["properties"]["task"]["enum"] = list(huggingface.TASKS)
    return schema


def _field_path(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _explain(error: jsonschema.ValidationError) -> Tuple[str, str, str]:
    """(field, problem, fix) for a schema violation, in words a model author can act on."""
    field = _field_path(list(error.absolute_path))
    validator, value = error.validator, error.validator_value
    if validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else "?"
        where = f"{field}.{name}" if error.absolute_path else name
        return where, "is required", f"add `{name}:` to the file"
    if validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        where = f"{field}.{extra[0]}" if error.absolute_path else (extra[0] if extra else field)
        return where, "unknown field", f"remove it or use one of: {allowed}"
    if validator == "enum":
        return field, f"{error.instance!r} is not allowed", "use one of: " + ", ".join(map(str, value))
    if validator == "pattern":
        return field, f"{error.instance!r} has the wrong form", f"it must match {value}"
    if validator == "type":
        return field, f"expected {value}, got {type(error.instance).__name__}", f"write a {value} here"
    if validator in ("minItems", "minLength", "minProperties"):
        return field, "is empty", "give at least one value"
    if validator == "uniqueItems":
        return field, "has duplicate entries", "list each value once"
    return field, error.message, "see `pants help omi_model` for the model.yaml format"


@dataclass(frozen=True)
class ModelMetadata:
    """A validated model.yaml: where it was read from, and the record the image carries as omi-model.json."""

    source_file: str
    record: ModelRecord

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def version(self) -> str:
        return self.record.version

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def files(self) -> List[str]:
        return list(self.record.files)

    @property
    def interfaces(self) -> List[str]:
        return list(self.record.interfaces)

    @property
    def model_dir(self) -> str:
        return posixpath.dirname(self.source_file)

    def record_json(self) -> bytes:
        return canonical_json.dumps(dict(self.record.raw)) + b"\n"


def parse_yaml(data: Union[bytes, str], file: str) -> Dict[str, Any]:
    """A YAML mapping, read strictly (`strict_yaml`): UTF-8, JSON values, no repeated keys or alias bombs."""
    try:
        parsed = strict_yaml.load(data)
    except strict_yaml.YamlProblem as e:
        raise ModelYamlError(file, e.where, e.problem, e.fix) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(top level)"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ModelYamlError(file, where, f"malformed YAML: {problem}", "fix the YAML syntax") from None
    if not isinstance(parsed, dict):
        raise ModelYamlError(file, "(top level)", "expected a mapping of fields",
                             "start the file with `name: ...`, `version: ...`")
    return parsed


def parse_model_yaml(data: Union[bytes, str], file: str) -> Dict[str, Any]:
    """model.yaml's fields: `parse_yaml`, and no control characters outside its free-text fields."""
    parsed = parse_yaml(data, file)
    found = strict_yaml.control_character_problems(parsed, "", list(FREE_TEXT_FIELDS))
    if found:
        raise ModelYamlError(file, found.where, found.problem, found.fix)
    return parsed


@dataclass(frozen=True)
class FilesEntry:
    """One `files` entry and the model files it names: itself, or every available file under it, sorted."""

    index: int
    entry: str
    names: Tuple[str, ...]  # everything it names; empty when nothing available is it or lies under it
    new: Tuple[str, ...]  # those no earlier entry named (each file gets one layer)

    @property
    def is_file(self) -> bool:
        return self.names == (posixpath.normpath(self.entry),)


def expand_files(entries: Sequence[Any], available: Iterable[str]) -> List[FilesEntry]:
    """Each `files` entry with the model files it names; an entry may be a directory (an MLflow model, a Hugging
    Face snapshot). Paths are relative to model.yaml's directory; entries that are not strings are skipped."""
    present = sorted({posixpath.normpath(p) for p in available})
    seen: set = set()
    out: List[FilesEntry] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, str) or not entry:
            continue
        rel = posixpath.normpath(entry)
        under = rel.rstrip("/") + "/"
        names = (rel,) if rel in present else tuple(p for p in present if p.startswith(under))
        out.append(FilesEntry(i, entry, names, tuple(n for n in names if n not in seen)))
        seen.update(names)
    return out


def run_id_from_path(file: str, run_id_from: str) -> Optional[str]:
    """The repository-relative path `run_id_from` names (relative to model.yaml at `file`), or None outside it."""
    path = posixpath.normpath(posixpath.join(posixpath.dirname(file), run_id_from))
    return None if run_id_from.startswith("/") or path == ".." or path.startswith("../") else path


def mlmodel_run_id(text: Union[bytes, str], file: str) -> str:
    """The `run_id` of an MLflow `MLmodel` file."""
    data = parse_yaml(text, file)
    run_id = data.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise ModelYamlError(file, "run_id", "missing in the MLmodel file",
                             "log the model from an MLflow run, or set run_id in model.yaml")
    return run_id


@dataclass(frozen=True)
class RunId:
    """The model's run id (None when none could be read) and every problem found on the way, with its rule id."""

    value: Optional[str]
    problems: Tuple[Tuple[str, ModelYamlError], ...] = ()


def resolve_run_id(data: Dict[str, Any], file: str, mlmodel_text: Optional[Union[bytes, str]]) -> RunId:
    """`run_id`, or the `run_id` of the MLmodel file `run_id_from` names, checked as an OCI tag other than latest."""
    run_id = data.get("run_id")
    problems: List[Tuple[str, ModelYamlError]] = []
    if "run_id_from" in data:
        run_id_from = data["run_id_from"]
        if "run_id" in data:
            problems.append(("OMI107", ModelYamlError(file, "run_id_from", "both run_id and run_id_from are set",
                                                      "keep one of them")))
        elif isinstance(run_id_from, str):
            if run_id_from_path(file, run_id_from) is None:
                problems.append(("OMI107", ModelYamlError(
                    file, "run_id_from", f"{run_id_from!r} points outside the repository",
                    "name an MLmodel file inside the repository, relative to model.yaml")))
            elif mlmodel_text is None:
                problems.append(("OMI107", ModelYamlError(file, "run_id_from", f"{run_id_from} was not found",
                                                          "add the MLmodel file next to model.yaml or fix the path")))
            else:
                try:
                    run_id = mlmodel_run_id(mlmodel_text, posixpath.join(posixpath.dirname(file), run_id_from))
                except ModelYamlError as e:
                    problems.append(("OMI107", e))
    elif "run_id" not in data:
        problems.append(("OMI107", ModelYamlError(file, "run_id", "is required (the image tag is the model's origin id)",
                                                  "add `run_id: <id in your model registry>` or `run_id_from: MLmodel`")))
    if not isinstance(run_id, str) or not run_id:
        return RunId(None, tuple(problems))
    field = "run_id" if "run_id" in data else "run_id_from"
    if run_id == "latest":
        problems.append(("OMI109", ModelYamlError(
            file, field, "'latest' is not allowed as a tag (OMI requires the model's origin id)",
            "use the model's run id from its model registry")))
    elif not TAG_RE.match(run_id):
        problems.append(("OMI108", ModelYamlError(
            file, field, f"{run_id!r} is not a valid OCI tag",
            "use letters, digits, '_', '.', '-' (max 128, not starting with '.' or '-')")))
    return RunId(run_id, tuple(problems))


def load_model_yaml(text: Union[bytes, str], file: str, *, mlmodel_text: Optional[Union[bytes, str]] = None) -> ModelMetadata:
    """Validate model.yaml (text or bytes). `mlmodel_text` is the content of the `run_id_from` file, if any."""
    data = parse_model_yaml(text, file)
    errors = sorted(jsonschema.Draft7Validator(model_schema()).iter_errors(data),
                    key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        raise ModelYamlError(file, *_explain(errors[0]))
    for problem in model_problems(data):
        raise ModelYamlError(file, problem.field, problem.problem, problem.fix)
    run_id = resolve_run_id(data, file, mlmodel_text)
    if run_id.problems:
        raise run_id.problems[0][1]
    record: Dict[str, Any] = {k: v for k, v in data.items() if k != "run_id_from"}
    record["run_id"] = run_id.value
    record.setdefault("interfaces", list(DEFAULT_INTERFACES))
    record.setdefault("inputs", [dict(t) for t in DEFAULT_INPUTS])
    record.setdefault("outputs", [dict(t) for t in DEFAULT_OUTPUTS])
    try:
        return ModelMetadata(file, ModelRecord.from_json(record, file))
    except RecordError as e:  # the schema and model_problems leave nothing for it; kept so no record escapes unread
        raise ModelYamlError(file, e.model_problem.field, e.model_problem.problem, e.model_problem.fix) from None
