"""`pants run` for `omi_model`: serve the model locally with the same runtime and environment variables as the image.

The model files and `omi-model.json` of each model the image carries are laid out as in the image
(`<chroot>/models/<name>/`), and the runtime runs
from a venv PEX built from the same dependencies. `INTERFACE`, `PROTOCOL`, `HTTP_PORT` and `MODEL_NAME` set in the
calling shell override the image defaults, as they would with `podman run -e`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexRequest
from pants.backend.python.util_rules.pex_environment import PexEnvironment, PythonExecutable
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

from omi_contract import image as contract
from omi_contract import interfaces
from omi_plugin.target_types import HttpPortField, ModelYamlSourceField
from omi_plugin.util_rules.image_models import ImageModels, ImageModelsRequest
from omi_plugin.util_rules.model_inputs import ModelsDirectory

OMI_ENV = (*contract.SPEC_ENV, contract.ENV_PSC_MODEL_PORT, contract.ENV_MAX_MESSAGE_BYTES)


@dataclass(frozen=True)
class OmiModelRunFieldSet(RunFieldSet):
    required_fields = (ModelYamlSourceField,)
    run_in_sandbox_behavior = RunInSandboxBehavior.RUN_REQUEST_HERMETIC

    model_yaml: ModelYamlSourceField
    http_port: HttpPortField


@rule(desc="Prepare to serve an OMI model locally", level=LogLevel.DEBUG)
async def run_omi_model(field_set: OmiModelRunFieldSet, pex_env: PexEnvironment) -> RunRequest:
    models = await Get(ImageModels, ImageModelsRequest(field_set.address))
    metadata = models.own.metadata

    pex_request = await Get(PexRequest, PexFromTargetsRequest(
        models.python_addresses,
        output_filename="omi-runtime.pex",
        internal_only=True,
        main=EntryPoint("omi_runtime"),
        description=f"Build the runtime of {field_set.address}",
    ))
    environment = pex_env.in_sandbox(working_directory=None)
    venv_pex, python, user_env = await MultiGet(
        Get(VenvPex, VenvPexRequest(pex_request, environment)),
        Get(PythonExecutable, InterpreterConstraints, pex_request.interpreter_constraints),
        Get(EnvironmentVars, EnvironmentVarsRequest(OMI_ENV)),
    )

    models_dir = await Get(ModelsDirectory, ImageModels, models)
    digest = await Get(Digest, MergeDigests([venv_pex.digest, models_dir.digest]))

    default = interfaces.default_pair(tuple(metadata.interfaces))
    defaults = {contract.ENV_INTERFACE: default.interface, contract.ENV_PROTOCOL: default.protocol,
                contract.ENV_HTTP_PORT: field_set.http_port.value or str(interfaces.DEFAULT_HTTP_PORT),
                contract.ENV_MODEL_NAME: metadata.name}
    omi_env = {**defaults, **{k: v for k, v in user_env.items() if v}}
    return RunRequest(
        digest=digest,
        args=[f"{{chroot}}/{venv_pex.pex.argv0}"],
        extra_env={
            **environment.environment_dict(python=python),
            **omi_env,
            contract.ENV_MODELS_DIR: f"{{chroot}}/{models_dir.path}",
            "PYTHONUNBUFFERED": "1",
        },
        append_only_caches={**environment.append_only_caches, **dict(venv_pex.append_only_caches or {})},
    )


def rules():
    return [*collect_rules(), *OmiModelRunFieldSet.rules()]
