"""The model record: model.yaml with its defaults applied, as the image carries it in `/models/<name>/omi-model.json`.

`ModelRecord.from_json` is the one reader (the runtime at start-up, the plugin after validating model.yaml).
`model_problems` is the one generator of the rules a JSON schema cannot express: `pants package` stops at the
first, `pants check` reports all of them, and the runtime refuses to start on any. The rules tolerate data of
the wrong shape (they run on any model.yaml that parses), leaving its report to the shape rules.
"""

from __future__ import annotations

import itertools
import json
import posixpath
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from omi_contract import formats, huggingface, interfaces

DATATYPES: Tuple[str, ...] = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                              "FP16", "FP32", "FP64", "BYTES", "BF16")
# What a model.yaml that declares no tensors gets: one variable-length BYTES tensor each way.
DEFAULT_INPUTS: Tuple[Mapping[str, Any], ...] = ({"name": "input", "datatype": "BYTES", "shape": [-1]},)
DEFAULT_OUTPUTS: Tuple[Mapping[str, Any], ...] = ({"name": "output", "datatype": "BYTES", "shape": [-1]},)
# Modzy v2 file names of the first input and output when a tensor sets no `filename`.
DEFAULT_INPUT_FILENAME = "input"
DEFAULT_OUTPUT_FILENAME = "results.json"


@dataclass(frozen=True)
class ModelProblem:
    """One broken rule of a model record; `rule` is its `pants check` id, `field` a path like `inputs[0].name`."""

    rule: str
    field: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem} ({self.fix})"


class RecordError(ValueError):
    """A record the runtime cannot serve: `<where>: <field>: <problem> (<fix>)`."""

    def __init__(self, where: str, problem: ModelProblem) -> None:
        self.where, self.model_problem = where, problem
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class TensorSpec:
    """A declared input or output tensor. `shape` uses -1 for a variable dimension."""

    name: str
    datatype: str
    shape: Tuple[int, ...]
    description: str = ""
    filename: Optional[str] = None
    media_types: Tuple[str, ...] = ()
    max_size: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    @property
    def raw_file(self) -> bool:
        """A BYTES input whose declared media types are none of them JSON (`text/plain`, `image/png`): a Modzy item's
        file is one element as it is, not a JSON document of rows."""
        return is_raw_file(self.datatype, self.media_types)


def is_raw_file(datatype: Any, media_types: Sequence[Any]) -> bool:
    def json_type(media_type: Any) -> bool:
        essence = media_type.split(";", 1)[0].strip().lower() if isinstance(media_type, str) else ""
        return essence == "application/json" or essence.endswith("+json")

    return datatype == "BYTES" and bool(media_types) and not any(json_type(m) for m in media_types)


@dataclass(frozen=True)
class ModelRecord:
    """A model record; `raw` is the whole document (custom handlers may read fields of their own from it)."""

    name: str
    version: str
    format: str
    files: Tuple[str, ...]
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]
    interfaces: Tuple[str, ...] = interfaces.DEFAULT_INTERFACES
    run_id: str = ""
    description: str = ""
    authors: Tuple[str, ...] = ()
    licenses: Tuple[str, ...] = ()
    source: str = ""
    handler: Optional[str] = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    timeout: Mapping[str, Any] = field(default_factory=dict)
    max_batch_size: Optional[int] = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # the mappings are dicts; the document identifies the record
        return hash(json.dumps(self.raw, sort_keys=True))

    def input_filename(self, index: int = 0) -> str:
        return self.inputs[index].filename or DEFAULT_INPUT_FILENAME

    def output_filename(self, index: int = 0) -> str:
        return self.outputs[index].filename or DEFAULT_OUTPUT_FILENAME

    @staticmethod
    def from_json(doc: Any, where: str) -> "ModelRecord":
        """The record of a parsed omi-model.json; RecordError names the first problem (`where` is the file)."""
        for problem in record_problems(doc):
            raise RecordError(where, problem)
        return ModelRecord(
            name=doc["name"],
            version=doc["version"],
            format=doc["format"],
            files=tuple(doc.get("files") or ()),
            inputs=tuple(_tensor(t) for t in doc.get("inputs") or DEFAULT_INPUTS),
            outputs=tuple(_tensor(t) for t in doc.get("outputs") or DEFAULT_OUTPUTS),
            interfaces=tuple(doc.get("interfaces", interfaces.DEFAULT_INTERFACES)),
            run_id=str(doc.get("run_id") or ""),
            description=str(doc.get("description") or ""),
            authors=tuple(doc.get("authors") or ()),
            licenses=tuple(doc.get("licenses") or ()),
            source=str(doc.get("source") or ""),
            handler=doc.get("handler") or None,
            resources=dict(doc.get("resources") or {}),
            timeout=dict(doc.get("timeout") or {}),
            max_batch_size=doc.get("max_batch_size"),
            raw=doc,
        )


def _tensor(doc: Mapping[str, Any]) -> TensorSpec:
    return TensorSpec(
        name=doc["name"],
        datatype=doc["datatype"],
        shape=tuple(doc["shape"]),
        description=str(doc.get("description") or ""),
        filename=doc.get("filename") or None,
        media_types=tuple(doc.get("media_types") or ()),
        max_size=str(doc.get("max_size") or ""),
    )


def record_problems(doc: Any) -> Iterator[ModelProblem]:
    """Every problem of a record: the shape of the fields the server reads, then `model_problems`."""
    if not isinstance(doc, dict):
        yield ModelProblem("OMI101", "(top level)", "expected a JSON object", "write the record as a JSON object")
        return
    shape = list(_shape_problems(doc))
    yield from shape
    if not shape:
        yield from model_problems(doc)


def _shape_problems(doc: Mapping[str, Any]) -> Iterator[ModelProblem]:
    for key in ("name", "version", "format"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            yield ModelProblem("OMI101", key, "is missing or not a string", f"set `{key}:` in model.yaml")
    if isinstance(doc.get("format"), str) and doc["format"] and formats.lookup(doc["format"]) is None:
        yield ModelProblem("OMI101", "format", f"{doc['format']!r} is not allowed",
                           "use one of: " + ", ".join(formats.NAMES))
    files = doc.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        yield ModelProblem("OMI101", "files", "must be a list of paths", "list the model files relative to model.yaml")
    declared = doc.get("interfaces", list(interfaces.DEFAULT_INTERFACES))
    if not isinstance(declared, list) or not declared or not all(isinstance(i, str) for i in declared):
        yield ModelProblem("OMI101", "interfaces", "must be a non-empty list of strings",
                           "use e.g. [kfserving.v2, modzy.v2], or leave the field out for every served one")
    for kind in ("inputs", "outputs"):
        tensors = doc.get(kind)
        if tensors is None:
            continue
        if not isinstance(tensors, list) or not tensors:
            yield ModelProblem("OMI101", kind, "must list at least one tensor",
                               "declare name, datatype and shape of each, or leave the field out")
            continue
        for i, tensor in enumerate(tensors):
            yield from _tensor_shape_problems(tensor, f"{kind}[{i}]")
    max_batch = doc.get("max_batch_size")
    if max_batch is not None and (not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1):
        yield ModelProblem("OMI101", "max_batch_size", f"{max_batch!r} is not a positive integer",
                           "give the largest batch the model accepts, e.g. 32")


def _tensor_shape_problems(tensor: Any, where: str) -> Iterator[ModelProblem]:
    if not isinstance(tensor, dict):
        yield ModelProblem("OMI101", where, "expected an object with name, datatype, shape",
                           "write `{name: ..., datatype: ..., shape: [...]}`")
        return
    if not isinstance(tensor.get("name"), str) or not tensor["name"]:
        yield ModelProblem("OMI101", f"{where}.name", "expected a non-empty string", "name the tensor")
    if tensor.get("datatype") not in DATATYPES:
        yield ModelProblem("OMI101", f"{where}.datatype", f"{tensor.get('datatype')!r} is not allowed",
                           "use one of: " + ", ".join(DATATYPES))
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= -1
                                              for d in shape):
        yield ModelProblem("OMI101", f"{where}.shape", f"expected a list of integers >= -1, got {shape!r}",
                           "use -1 for a variable dimension, e.g. [-1, 64]")


def model_problems(data: Mapping[str, Any]) -> Iterator[ModelProblem]:
    """Every rule a JSON schema cannot express, in a fixed order: files, handler, interfaces, tensors, the format's."""
    return itertools.chain(file_path_problems(data), handler_problems(data), interface_problems(data),
                           tensor_problems(data), format_problems(data))


def points_outside(path: str) -> bool:
    """A `files` entry that is absolute or climbs out of the model directory."""
    clean = posixpath.normpath(path)
    return path.startswith("/") or clean == ".." or clean.startswith("../")


def file_path_problems(data: Mapping[str, Any]) -> Iterator[ModelProblem]:
    files = data.get("files")
    for i, path in enumerate(files if isinstance(files, list) else []):
        if isinstance(path, str) and path and points_outside(path):
            yield ModelProblem("OMI112", f"files[{i}]", f"{path!r} points outside the model directory",
                               "list files relative to model.yaml, inside its directory")


def handler_problems(data: Mapping[str, Any]) -> Iterator[ModelProblem]:
    name = data.get("format")
    fmt = formats.lookup(name) if isinstance(name, str) else None
    if fmt is not None and not fmt.handler and data.get("handler") is None:
        yield ModelProblem("OMI111", "handler", f"is required when format is {fmt.name}",
                           "add `handler: your_package.module:HandlerClass`")


def interface_problems(data: Mapping[str, Any]) -> Iterator[ModelProblem]:
    declared = data.get("interfaces", list(interfaces.DEFAULT_INTERFACES))
    for i, name in enumerate(declared if isinstance(declared, list) else []):
        row = interfaces.lookup(name) if isinstance(name, str) else None
        if row is None:
            yield ModelProblem("OMI104", f"interfaces[{i}]", f"{name!r} is not an OMI interface string",
                               "use one of: " + ", ".join(interfaces.OMI_NAMES))
        elif not row.served:
            yield ModelProblem("OMI106", f"interfaces[{i}]",
                               f"{name!r} is an OMI interface omi_runtime does not serve",
                               "use " + _one_of(interfaces.SERVED))


def _one_of(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def tensor_names(tensors: Any, default: Sequence[Mapping[str, Any]]) -> List[Any]:
    """Declared tensor names (the defaults' when the field is absent); None for an entry without a name."""
    if tensors is None:
        return [t["name"] for t in default]
    return [t.get("name") if isinstance(t, dict) else None for t in tensors] if isinstance(tensors, list) else []


def tensor_problems(data: Mapping[str, Any]) -> Iterator[ModelProblem]:
    """Tensor names declared twice, and samples naming tensors that are not declared."""
    declared = {"inputs": tensor_names(data.get("inputs"), DEFAULT_INPUTS),
                "outputs": tensor_names(data.get("outputs"), DEFAULT_OUTPUTS)}
    for kind, names in declared.items():
        for i, name in enumerate(names):
            if name is not None and names.index(name) != i:
                yield ModelProblem("OMI113", f"{kind}[{i}].name", f"{name!r} is declared twice",
                                   "give each tensor a unique name")
    samples = data.get("samples")
    for i, sample in enumerate(samples if isinstance(samples, list) else []):
        if not isinstance(sample, dict):
            continue
        for kind in ("inputs", "outputs"):
            given = sample.get(kind)
            if not isinstance(given, dict):
                continue
            allowed = {n for n in declared[kind] if isinstance(n, str)}
            for name in given:
                if name not in allowed:
                    yield ModelProblem("OMI114", f"samples[{i}].{kind}.{name}", f"is not a declared {kind[:-1]}",
                                       "use one of: " + ", ".join(sorted(allowed)))


def format_problems(data: Mapping[str, Any]) -> Iterator[ModelProblem]:
    """What a format asks of model.yaml beyond the common fields: a huggingface model's task and its tensors."""
    if data.get("format") == huggingface.FORMAT:
        for where, problem, fix in huggingface.record_problems(data):
            yield ModelProblem("OMI115", where, problem, fix)
