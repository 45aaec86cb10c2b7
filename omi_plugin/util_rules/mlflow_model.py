"""Package-time checks of an MLflow model (format: mlflow): its signature against model.yaml, its recorded
requirements against the image's Python packages. The rule adapter over `omi_plugin.metadata.mlflow_model`."""

from __future__ import annotations

import platform
import posixpath
import re
from dataclasses import dataclass
from typing import Tuple

from pants.engine.fs import Digest, DigestContents
from pants.engine.rules import Get, MultiGet, collect_rules, rule

from omi_plugin.metadata import mlflow_model
from omi_plugin.metadata.model_yaml import ModelYamlError
from omi_plugin.util_rules.model_inputs import ModelInputs, OmiModelError, single_file_digests


@dataclass(frozen=True)
class MlflowModelCheckRequest:
    inputs: ModelInputs
    distributions: Tuple[Tuple[str, str], ...]  # (name, version) in the image's dependency layer
    python: str  # the base image's interpreter, e.g. usr/bin/python3.11, for environment markers
    machine: str = ""  # the image's `platform.machine()` (x86_64, aarch64); "" for the build machine's


@dataclass(frozen=True)
class MlflowModelChecked:
    """The MLflow model agrees with model.yaml and the image (the rule raises otherwise)."""

    mlmodel: str  # repository path of the MLmodel file


def python_version(interpreter: str) -> str:
    found = re.search(r"python(\d+\.\d+)", posixpath.basename(interpreter))
    return found.group(1) if found else "3"


@rule(desc="Check the MLflow model against model.yaml and the image")
async def check_mlflow_model(request: MlflowModelCheckRequest) -> MlflowModelChecked:
    inputs = request.inputs
    metadata = inputs.metadata
    relpaths = [f.relpath for f in inputs.files]
    problem = mlflow_model.mlmodel_problem(relpaths, metadata.source_file)
    if problem is not None:
        raise OmiModelError(f"{inputs.address}: {problem}")
    directory = mlflow_model.mlmodel_directory(relpaths) or ""
    mlmodel_rel = posixpath.join(directory, mlflow_model.MLMODEL)
    requirements_rel = posixpath.join(directory, mlflow_model.REQUIREMENTS)
    wanted = [f for f in inputs.files if f.relpath in (mlmodel_rel, requirements_rel)]
    contents = await MultiGet(Get(DigestContents, Digest, d) for d in await single_file_digests(wanted))
    by_relpath = {f.relpath: c[0].content for f, c in zip(wanted, contents)}
    mlmodel_file = posixpath.join(metadata.model_dir, mlmodel_rel)
    requirements_file = posixpath.join(metadata.model_dir, requirements_rel)

    try:
        flavour = mlflow_model.flavour_problem(by_relpath[mlmodel_rel], mlmodel_file)
        if flavour is not None:
            raise flavour
        problems = mlflow_model.signature_problems(metadata.record, metadata.source_file, by_relpath[mlmodel_rel],
                                                   mlmodel_file)
    except ModelYamlError as e:
        raise OmiModelError(f"{inputs.address}: {e}") from None
    if requirements_rel not in by_relpath:
        problems.append(ModelYamlError(
            requirements_file, "(file)", f"missing next to {mlmodel_file}",
            "log the model with MLflow 1.20 or newer, which records its requirements, or add the file to the "
            "model directory and to `model_files`"))
    else:
        environment = mlflow_model.image_environment(python_version(request.python),
                                                     request.machine or platform.machine())
        problems.extend(mlflow_model.requirement_problems(by_relpath[requirements_rel], requirements_file,
                                                          dict(request.distributions), environment))
    if problems:
        more = f" [and {len(problems) - 1} more]" if len(problems) > 1 else ""
        raise OmiModelError(f"{inputs.address}: {problems[0]}{more}")
    return MlflowModelChecked(mlmodel_file)


def rules():
    return collect_rules()
