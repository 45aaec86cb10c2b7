"""Pants backend entry point for omi (the `pantsbuild.plugin` entry points of the omi-plugin wheel, or
`backend_packages = ["omi_plugin"]`): registers the targets and rules."""

from omi_plugin.pants_version import require_supported_pants

require_supported_pants()  # before anything that imports a Pants API by name

from omi_plugin import tools_subsystem  # noqa: E402
from omi_plugin.goals import check, package, publish, run  # noqa: E402
from omi_plugin.target_types import (  # noqa: E402
    OmiDebianBaseTarget,
    OmiModelTarget,
    OmiOciArchiveBaseTarget,
    OmiOciBaseTarget,
)
from omi_plugin.util_rules import (  # noqa: E402
    attestations,
    base_image,
    debian_base,
    foreign_smoke,
    foreign_wheels,
    image_layers,
    image_models,
    layers,
    mlflow_model,
    model_artifact,
    model_inputs,
    modelcar,
    oci_base,
    runtime_library,
    sandbox_tools,
    signing,
    stored_layers,
    target_fields,
)


def target_types():
    return [OmiModelTarget, OmiDebianBaseTarget, OmiOciBaseTarget, OmiOciArchiveBaseTarget]


def rules():
    return [
        *tools_subsystem.rules(),
        *sandbox_tools.rules(),
        *sandbox_tools.library_rules(),
        *layers.rules(),
        *base_image.rules(),
        *debian_base.rules(),
        *oci_base.rules(),
        *target_fields.rules(),
        *model_inputs.rules(),
        *model_artifact.rules(),
        *runtime_library.rules(),
        *stored_layers.rules(),
        *mlflow_model.rules(),
        *foreign_wheels.rules(),
        *foreign_smoke.rules(),
        *image_layers.rules(),
        *image_models.rules(),
        *attestations.rules(),
        *signing.rules(),
        *modelcar.rules(),
        *package.rules(),
        *run.rules(),
        *check.rules(),
        *publish.rules(),
    ]
