"""The `[omi]` options: where the runtime and built-in handlers come from, default base image and repository naming."""

from __future__ import annotations

from pants.option.option_types import BoolOption, DictOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import help_text

from omi_contract.formats import BUILTIN_HANDLER_TARGETS


class OmiSubsystem(Subsystem):
    options_scope = "omi"
    help = "Options for building Open Model Interface (OMI) model images with `omi_model` targets."

    runtime = StrOption(
        default="omi_runtime:lib",
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            Address of the Python target that provides the `omi_runtime` server. It is added to every model's
            runtime layers and started as `python -m omi_runtime`.
            """
        ),
    )
    builtin_handlers = DictOption[str](
        default=dict(BUILTIN_HANDLER_TARGETS),
        help=help_text(
            """
            Address of the Python target providing the built-in handler of each model `format`, with the libraries
            it needs. A model that sets no `handler` gets the one for its `format` added to its runtime layers, so
            an image carries only its own format's libraries (no onnxruntime in a scikit-learn image).
            """
        ),
    )
    default_base_image = StrOption(
        default="3rdparty/debian:python3.11-bookworm",
        help="Address of the base image target used by `omi_model` targets that set no `base_image`.",
    )
    registries = DictOption[dict](
        help=help_text(
            """
            Registries to publish to, by alias: in pants.toml a table per registry, e.g. `[omi.registries.local]`
            with `address = "127.0.0.1:5000"` and `default = true`; on the command line a Python dict, e.g.
            `--omi-registries="{'local': {'address': '127.0.0.1:5000', 'default': True}}"`.
            `insecure: true` allows plain HTTP for a non-loopback registry (loopback always may use it).
            Credentials come from the Docker config (`DOCKER_CONFIG` or `~/.docker/config.json`).
            """
        ),
    )
    smoke_checker = StrOption(
        default="omi_plugin/check:smoke",
        help="Address of the Python target providing `omi_plugin.check.smoke`, run by `pants check` for live tests.",
    )
    modelcar = BoolOption(
        default=False,
        help="Make every `omi_model` image also a KServe ModelCar unless its `modelcar` field says otherwise.",
    )
    modelcar_lockfile = StrOption(
        default="3rdparty/debian/busybox-bookworm.lock.json",
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            Debian lock (repository-relative path) pinning `busybox-static`, whose static busybox gives ModelCar
            images their shell. Create or refresh it with `python -m omi_plugin.base_images.generate_lock`.
            """
        ),
    )
    stamp_vcs_revision = BoolOption(
        default=False,
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            Write the git commit of the repository as the images' `org.opencontainers.image.revision` annotation.
            Off by default: it changes every image digest with every commit, even when nothing in the image did.
            The model's run id is always written, as `dev.omi.model.run-id`.
            """
        ),
    )
    default_repository = StrOption(
        default="{name}",
        help="Repository name for targets that set no `repository`; `{name}` is the model name from model.yaml.",
    )
