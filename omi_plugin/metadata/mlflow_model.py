"""What omi reads from an MLflow model directory (format: mlflow) at package time, without MLflow itself.

- The model directory is the one holding the `MLmodel` file among the model files.
- Its signature (`signature.inputs`/`outputs`, JSON strings in MLmodel) is mapped to model.yaml's tensors by the
  rule the runtime's handler feeds the model by (`omi_contract.tensor_names`);
  each disagreement is one line naming both files.
- Its `requirements.txt` (what MLflow recorded when the model was logged) is checked against the Python
  distributions the image's dependency layer holds, which come from the lockfile.

Pure Python (PyYAML, packaging), no Pants imports.
"""

from __future__ import annotations

import json
import posixpath
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from omi_contract.record import ModelRecord, TensorSpec
from omi_contract.tensor_names import match_positions
from omi_plugin.metadata.model_yaml import ModelYamlError, parse_yaml

with warnings.catch_warnings():
    # packaging 21.3, the version Pants 2.17 runs with, calls pyparsing by names pyparsing 3 deprecates.
    warnings.simplefilter("ignore", DeprecationWarning)
    from packaging.markers import default_environment
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

MLMODEL = "MLmodel"
REQUIREMENTS = "requirements.txt"

# Distributions that provide a requirement under another name: MLflow records `mlflow` even when the lighter
# `mlflow-skinny` is what is installed; the images carry XGBoost's CPU-only build.
PROVIDED_BY: Mapping[str, Tuple[str, ...]] = {"mlflow": ("mlflow", "mlflow-skinny"),
                                              "xgboost": ("xgboost", "xgboost-cpu")}

# MLflow tensor-spec dtypes (numpy's names) and column types, as OMI datatypes.
TENSOR_DTYPES: Mapping[str, str] = {
    "bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP64", "object": "BYTES", "str": "BYTES", "bytes": "BYTES",
}
COLUMN_TYPES: Mapping[str, str] = {
    "boolean": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32", "double": "FP64",
    "string": "BYTES", "binary": "BYTES",
}


@dataclass(frozen=True)
class SignatureField:
    """One input or output of an MLflow signature."""

    name: Optional[str]
    datatype: Optional[str]  # the OMI datatype; None when OMI has none for it
    shape: Optional[Tuple[int, ...]]  # a tensor's shape; None for a column
    written: str  # as MLflow writes it, for messages

    @property
    def is_column(self) -> bool:
        return self.shape is None


def mlmodel_directory(files: Sequence[str]) -> Optional[str]:
    """The model directory (relative to model.yaml; "" for model.yaml's own) of the one MLmodel file, else None."""
    found = sorted(posixpath.dirname(f) for f in files if posixpath.basename(f) == MLMODEL)
    return found[0] if len(found) == 1 else None


def mlmodel_problem(files: Sequence[str], yaml_file: str) -> Optional[ModelYamlError]:
    """Why the model files are not one MLflow model directory, if they are not."""
    count = sum(1 for f in files if posixpath.basename(f) == MLMODEL)
    if count == 1:
        return None
    problem = "no MLmodel file among the model files" if count == 0 else f"{count} MLmodel files among the model files"
    return ModelYamlError(yaml_file, "files", f"format mlflow: {problem}",
                          "list the MLflow model directory (the one holding MLmodel) in `files` and glob its files "
                          "in the target's `model_files`, e.g. `model/**`; one MLflow model per omi_model")


def _field(spec: Mapping[str, Any], file: str, where: str) -> SignatureField:
    name = spec.get("name") if isinstance(spec.get("name"), str) else None
    if spec.get("type") == "tensor":
        tensor = spec.get("tensor-spec") or {}
        dtype = str(tensor.get("dtype", ""))
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            raise ModelYamlError(file, where, f"tensor-spec without a shape: {json.dumps(spec)}",
                                 "log the model again with a signature from mlflow.models.infer_signature")
        return SignatureField(name, TENSOR_DTYPES.get(dtype), tuple(shape), f"tensor {dtype} {list(shape)}")
    kind = str(spec.get("type", ""))
    return SignatureField(name, COLUMN_TYPES.get(kind), None, f"column {name!r} of type {kind}")


def signature(mlmodel: Mapping[str, Any], which: str, file: str) -> Optional[List[SignatureField]]:
    """The `inputs` or `outputs` of MLmodel's signature; None when the model was logged without one."""
    text = (mlmodel.get("signature") or {}).get(which)
    if not text:
        return None
    where = f"signature.{which}"
    try:
        specs = json.loads(text) if isinstance(text, str) else text
    except ValueError as e:
        raise ModelYamlError(file, where, f"is not JSON ({e})", "log the model again with MLflow") from None
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ModelYamlError(file, where, "is not a list of fields", "log the model again with MLflow")
    return [_field(spec, file, f"{where}[{i}]") for i, spec in enumerate(specs)]


def _compare(which: str, declared: Sequence[TensorSpec], fields: Sequence[SignatureField], yaml_file: str,
             mlmodel_file: str) -> List[ModelYamlError]:
    refit = f"declare what the MLflow signature in {mlmodel_file} says, or log the model again with the signature " \
            "you want"
    columns = [f for f in fields if f.is_column]
    if len(declared) == 1 and len(fields) > 1 and len(columns) == len(fields):
        # One feature matrix declared for a column-based model: the runtime splits it over the columns.
        types = {f.datatype for f in fields}
        tensor = declared[0]
        problems = []
        if len(types) != 1 or None in types:
            problems.append(ModelYamlError(yaml_file, f"{which}[0]", f"one tensor for {len(fields)} columns of "
                                           "different types in the MLflow signature",
                                           f"declare one {which[:-1]} per column: {refit}"))
        elif tensor.datatype != next(iter(types)):
            problems.append(ModelYamlError(yaml_file, f"{which}[0].datatype", f"{tensor.datatype} differs from the "
                                           f"MLflow signature's columns ({fields[0].written} = {fields[0].datatype})",
                                           refit))
        if tensor.shape[1:] != (len(fields),):
            problems.append(ModelYamlError(yaml_file, f"{which}[0].shape", f"{list(tensor.shape)} does not hold the "
                                           f"MLflow signature's {len(fields)} columns", f"use [-1, {len(fields)}]"))
        return problems
    if len(declared) != len(fields):
        return [ModelYamlError(yaml_file, which, f"{len(declared)} declared, the MLflow signature in {mlmodel_file} "
                               f"has {len(fields)} ({', '.join(f.written for f in fields)})", refit)]
    problems = []
    for i, j in match_positions([t.name for t in declared], [f.name for f in fields]):
        tensor, field = declared[i], fields[j]
        where = f"{which}[{i}]"
        if field.datatype is None:
            problems.append(ModelYamlError(yaml_file, where, f"the MLflow signature's {field.written} has no OMI "
                                           "datatype", "log the model with numeric, boolean or string fields"))
        elif tensor.datatype != field.datatype:
            problems.append(ModelYamlError(yaml_file, f"{where}.datatype", f"{tensor.datatype} differs from the "
                                           f"MLflow signature's {field.written} = {field.datatype}", refit))
        if field.shape is None:
            if tensor.shape not in ((-1,), (-1, 1)):
                problems.append(ModelYamlError(yaml_file, f"{where}.shape", f"{list(tensor.shape)} for the MLflow "
                                               f"signature's {field.written}, one value per row", "use [-1]"))
        elif len(field.shape) != len(tensor.shape) or any(
                s != -1 and s != d for s, d in zip(field.shape, tensor.shape)):
            problems.append(ModelYamlError(yaml_file, f"{where}.shape", f"{list(tensor.shape)} differs from the "
                                           f"MLflow signature's {field.written}", refit))
    return problems


PYFUNC = "python_function"


def flavour_problem(mlmodel_text: bytes, mlmodel_file: str) -> Optional[ModelYamlError]:
    """Why `mlflow.pyfunc` cannot load the model, if MLmodel shows it: no `python_function` flavour."""
    flavors = parse_yaml(mlmodel_text, mlmodel_file).get("flavors")
    if not isinstance(flavors, dict) or PYFUNC not in flavors:
        found = ", ".join(sorted(map(str, flavors))) if isinstance(flavors, dict) and flavors else "none"
        return ModelYamlError(mlmodel_file, "flavors", f"no {PYFUNC} flavour (found: {found}): format mlflow serves "
                              "models through mlflow.pyfunc", "log the model with a flavour that adds python_function "
                              "(mlflow.sklearn.log_model, mlflow.pyfunc.log_model, ...), or serve it with a custom "
                              "handler")
    return None


def signature_problems(record: ModelRecord, yaml_file: str, mlmodel_text: bytes,
                       mlmodel_file: str) -> List[ModelYamlError]:
    """Every way model.yaml's inputs and outputs disagree with the MLflow signature (none without a signature)."""
    mlmodel = parse_yaml(mlmodel_text, mlmodel_file)
    problems: List[ModelYamlError] = []
    for which, declared in (("inputs", record.inputs), ("outputs", record.outputs)):
        fields = signature(mlmodel, which, mlmodel_file)
        if fields is not None:
            problems.extend(_compare(which, declared, fields, yaml_file, mlmodel_file))
    return problems


def image_environment(python_version: str, machine: str) -> Dict[str, str]:
    """Marker values of the image's interpreter (CPython on Linux), for requirements with environment markers."""
    env = dict(default_environment())
    major_minor = ".".join(python_version.split(".")[:2])
    env.update({"python_version": major_minor, "python_full_version": python_version, "sys_platform": "linux",
                "platform_system": "Linux", "os_name": "posix", "platform_machine": machine,
                "implementation_name": "cpython", "platform_python_implementation": "CPython",
                "implementation_version": python_version})
    return env


def requirement_problems(requirements_text: bytes, requirements_file: str, distributions: Mapping[str, str],
                         environment: Mapping[str, str]) -> List[ModelYamlError]:
    """Each requirement the MLflow model recorded that the image's distributions (name -> version) do not meet."""
    installed = {canonicalize_name(name): version for name, version in distributions.items()}
    problems = []
    lines = requirements_text.decode("utf-8", "replace").splitlines()
    for number, line in enumerate(lines, 1):
        text = line.split(" #", 1)[0].strip()
        if not text or text.startswith(("#", "-")):  # comments; pip options such as -r and --index-url
            continue
        where = f"line {number}"
        try:
            requirement = Requirement(text)
        except InvalidRequirement as e:
            problems.append(ModelYamlError(requirements_file, where, f"{text!r} is not a requirement ({e})",
                                           "write it as `name==version`"))
            continue
        if requirement.marker is not None and not requirement.marker.evaluate(dict(environment)):
            continue
        name = canonicalize_name(requirement.name)
        providers = [p for p in PROVIDED_BY.get(name, (name,)) if canonicalize_name(p) in installed]
        if not providers:
            problems.append(ModelYamlError(
                requirements_file, where, f"the MLflow model requires {text}, which is not among the image's Python "
                "packages", f"add `{requirement.name}` to the omi_model's `dependencies` (from the lockfile)"))
            continue
        version = installed[canonicalize_name(providers[0])]
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            problems.append(ModelYamlError(
                requirements_file, where, f"the MLflow model requires {text}, the lockfile gives {providers[0]} "
                f"{version}", f"log the model again with {providers[0]} {version} installed, or change the "
                "lockfile's pin"))
    return problems
