"""The omi targets: their fields, help text, and what makes a field's value wrong (`problem`, checked by rules)."""

from __future__ import annotations

import posixpath
from typing import Optional, Tuple, Union

from pants.backend.python.target_types import PythonResolveField
from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    Dependencies,
    MultipleSourcesField,
    SingleSourceField,
    SpecialCasedDependencies,
    StringField,
    StringSequenceField,
    Target,
    TriBoolField,
)
from pants.util.strutil import help_text

from omi_contract import formats
from omi_contract.image import SPEC_VERSIONS
from omi_contract.interfaces import DEFAULT_HTTP_PORT
from omi_plugin.oci import platforms
from omi_plugin.oci.compression import ALGORITHMS
from omi_plugin.oci.references import REPOSITORY_RE, TAG_RE
from omi_plugin.registry.reference import ReferenceError, validate_registry

# What is wrong with a field's value and how to fix it. Fields accept any well-typed value when BUILD files are
# parsed (so one bad target cannot break every goal in the repository); the rules refuse it for that target only.
FieldProblem = Tuple[str, str]


class ModelYamlSourceField(SingleSourceField):
    alias = "model_yaml"
    required = False
    default = "model.yaml"
    expected_file_extensions = (".yaml", ".yml")
    help = help_text(
        f"""
        The model's `model.yaml`: name, version, run id (the image tag), format, model files, tensors,
        interfaces and smoke-test samples. Its JSON schema ships with the plugin
        (`omi_plugin/metadata/model.schema.json`). It is read strictly: UTF-8 only, no key written twice, no
        aliases expanding past 10,000 values, only JSON values, no control characters outside `description` and
        `samples`; unquoted dates stay strings. Example:

            name: digits
            version: 1.0.0
            run_id: 6f1c2d0e            # the model's id in its registry (e.g. an MLflow run id)
            format: sklearn             # {' | '.join(formats.NAMES)}
            files: [model.joblib]       # relative to model.yaml, bundled under /models/<name>/
            inputs:  [{{name: input-0, datatype: FP32, shape: [-1, 64]}}]
            outputs: [{{name: predict, datatype: INT64, shape: [-1]}}]
            interfaces: [kfserving.v1, kfserving.v2, modzy.v2]
        """
    )


class ModelFilesField(MultipleSourcesField):
    alias = "model_files"
    default = ()
    help = help_text(
        """
        Model files in this directory, as globs (e.g. `["model.joblib"]`). Files can also come from `file` or
        `resource` targets in `dependencies`, including `http_source` downloads pinned by sha256. Every file named
        in model.yaml's `files` must be provided one of these ways. A `files` entry may name a directory (an MLflow
        model, a Hugging Face snapshot): glob its files here (`["snapshot/**"]`); each becomes its own layer, in
        sorted order, so changing one file rebuilds and re-pushes only that layer.
        """
    )


def digest_pinned_problem(value: Optional[str], what: str) -> Optional[FieldProblem]:
    """A registry reference that is not `registry/repository@sha256:<64 hex>`: a tag can name other bytes tomorrow."""
    hex_digest = (value or "").rsplit("@sha256:", 1)[-1] if "@sha256:" in (value or "") else ""
    if not (len(hex_digest) == 64 and all(c in "0123456789abcdef" for c in hex_digest)):
        return (f"{value!r} is not pinned by digest",
                f"pin the {what} by digest: registry/repo@sha256:<64 hex digits>; "
                "`skopeo inspect docker://registry/repo:tag` prints it")
    return None


class ModelArtifactField(StringField):
    alias = "model_artifact"
    help = help_text(
        """
        The model files from a model artifact in a registry, pinned by digest, instead of `model_files`:
        `registry.example.com/team/digits@sha256:<64 hex>` (a tag alone is refused). ModelPack artifacts (KitOps,
        modctl, `modelpack-client`; raw or tar layers, gzip or zstd) and omlmd artifacts are read; model.yaml's
        `files` name paths inside the artifact (`org.cncf.model.filepath`, or omlmd's file titles). The artifact is
        downloaded once, each layer verified against its digest while it streams, into omi's blob store, where the
        next build finds it with no network; a file's own (raw) layer is written straight into the image layer
        that holds the file, its only copy. The image names the artifact as its OCI `subject`, so the registry
        lists the image among the artifact's referrers. Credentials come from the Docker config (`DOCKER_CONFIG` or
        `~/.docker/config.json`); plain HTTP is used for a registry on loopback, or one `[omi].registries` marks
        `insecure`.
        """
    )

    @staticmethod
    def problem(value: Optional[str]) -> Optional[FieldProblem]:
        return digest_pinned_problem(value, "model artifact") if value is not None else None


class OmiModelDependenciesField(Dependencies):
    help = help_text(
        """
        Python code and requirements the model's handler needs (they go into the runtime layers), and `file` /
        `resource` targets that provide model files (they become model layers). The runtime itself
        (`[omi].runtime`) is always added.
        """
    )


class BundledModelsField(SpecialCasedDependencies):
    alias = "bundled_models"
    help = help_text(
        """
        Other `omi_model` targets whose models this image also carries, each under `/models/<its name>/`, one layer
        per model file, with its handler and libraries in the runtime layers. The container serves the model that
        `MODEL_NAME` names (the OMI spec's way to switch between bundled models); the default, the tag, the
        annotations and the ModelPack artifact are this target's own model's. Every bundled model must serve each
        of this model's `interfaces`, so the image's `ml.openmodel.interfaces` holds for all of them, and the names
        must differ. Only the bundled targets' model.yaml, model files and dependencies are used: base, port,
        compression and tags are this target's. `pants check` smoke-tests every model by its `MODEL_NAME`.
        Example: `bundled_models=["examples/digits_onnx:digits-onnx"]`.
        """
    )


class BaseImageField(StringField):
    alias = "base_image"
    help = help_text(
        """
        Address of the base image target: an `omi_debian_base` (pinned Debian packages), an `omi_oci_base`
        (pulled by digest) or an `omi_oci_archive_base` (a vendored OCI layout archive). Defaults to
        `[omi].default_base_image`, and when that is empty to omi's own: CPython 3.11 from Debian 12 (bookworm)
        packages pinned by the lock the plugin ships.
        """
    )


class OmiModelResolveField(PythonResolveField):
    help = help_text(
        """
        The Python resolve (from `[python].resolves`) the image's Python comes from: the `omi-runtime` server, the
        libraries of the model's `format` and the model's own `dependencies`, locked together. Defaults to
        `[python].default_resolve`.
        """
    )


class RepositoryField(StringField):
    alias = "repository"
    help = help_text(
        """
        Repository name of the image in a registry, e.g. `models/digits`. `{name}` is replaced by the model name
        from model.yaml. Defaults to `[omi].default_repository`.
        """
    )

    @staticmethod
    def problem(value: Optional[str]) -> Optional[FieldProblem]:
        if value is not None and not REPOSITORY_RE.match(value.replace("{name}", "x")):
            return (f"{value!r} is not a valid repository name",
                    "use lowercase path components like `team/model-name`")
        return None


class ExtraTagsField(StringSequenceField):
    alias = "extra_tags"
    default = ()
    help = help_text(
        """
        Tags to add besides the model's run id (which is always the first tag). `latest` is refused: OMI images are
        referenced by the model's origin id.
        """
    )

    @staticmethod
    def problem(value: Optional[Tuple[str, ...]]) -> Optional[FieldProblem]:
        for tag in value or ():
            if tag == "latest":
                return ("'latest' is not allowed",
                        "OMI images are tagged with the model's run id; name a version instead")
            if not TAG_RE.match(tag):
                return (f"{tag!r} is not a valid OCI tag",
                        "use letters, digits, '_', '.', '-'; at most 128 characters, not starting with '.' or '-'")
        return None


class OmiSpecVersionField(StringField):
    alias = "omi_spec"
    default = SPEC_VERSIONS[0]
    choices = SPEC_VERSIONS
    help = help_text(
        """
        Which OMI spec's labels to write: `1.0` or `1.1`. `1.0`: `ml.openmodel.interfaces=["kfserving.v1",...]`.
        `1.1` adds `ml.openmodel.protocols`, `ml.openmodel.port` and `ml.openml.model_name` and uses the 1.1
        interfaces form.
        """
    )

    @classmethod
    def problem(cls, value: Optional[str]) -> Optional[FieldProblem]:
        if value is not None and value not in cls.choices:
            return f"{value!r} is not an OMI spec version", "use one of: " + ", ".join(cls.choices)
        return None


class HttpPortField(StringField):
    alias = "http_port"
    default = str(DEFAULT_HTTP_PORT)
    help = "The default `HTTP_PORT` of the image, e.g. `8080` (the container can override it at start-up)."

    @classmethod
    def compute_value(cls, raw_value: Optional[Union[int, str]], address: Address) -> Optional[str]:
        # `http_port=8080` is what users write; the environment variable it becomes is a string.
        if isinstance(raw_value, int) and not isinstance(raw_value, bool):
            raw_value = str(raw_value)
        return super().compute_value(raw_value, address)  # type: ignore[arg-type]  # a bool is refused there

    @staticmethod
    def problem(value: Optional[str]) -> Optional[FieldProblem]:
        if value is not None and not (value.isascii() and value.isdigit() and 0 < int(value) < 65536):
            return f"{value!r} is not a TCP port", "use 1-65535"
        return None


class OmiRegistriesField(StringSequenceField):
    alias = "registries"
    default = ("<all default registries>",)
    help = help_text(
        """
        Registries `pants publish` pushes to: addresses (`registry.example.com`, `127.0.0.1:5000`) or `@alias`es of
        `[omi].registries`. By default, every registry marked `"default": true` there.
        """
    )

    @classmethod
    def problem(cls, value: Optional[Tuple[str, ...]]) -> Optional[FieldProblem]:
        for registry in value or ():
            if registry in cls.default or registry.startswith("@"):
                continue  # aliases are looked up in [omi].registries when publishing
            try:
                validate_registry(registry)
            except ReferenceError as e:
                return str(e).split(" (", 1)[0], "give HOST[:PORT], e.g. ghcr.io or 127.0.0.1:5000, or an @alias"
        return None


class PlatformsField(StringSequenceField):
    alias = "platforms"
    help = help_text(
        """
        The platforms the image is built for, e.g. `["linux/arm64"]` or `["linux/amd64", "linux/arm64"]` (default:
        `[omi].platforms`, `linux/amd64`). `linux/amd64` and `linux/arm64` (arm64 images say `variant: v8`) are
        built from any build machine without emulation: omi's default base from that architecture's Debian lock,
        the Python dependencies resolved for it from the lockfile's wheels, bytecode compiled by the build machine's
        twin interpreter (CPython writes the same bytecode on both). A base of a platform other than the build
        machine's must hold the twin's CPython (omi's default base does; an `omi_oci_base` pinned by an index digest
        gives each platform its manifest). With two platforms, `pants package` writes one OCI image index tagged
        with the run id, listing each platform's image (the same image a one-platform build writes; the model
        layers are the same blobs in both).
        """
    )

    @staticmethod
    def problem(value: Optional[Tuple[str, ...]]) -> Optional[FieldProblem]:
        return platforms_problem(value) if value is not None else None


def platforms_problem(value: Tuple[str, ...]) -> Optional[FieldProblem]:
    """What is wrong with a list of platforms, from the field or from `[omi].platforms`."""
    parsed = []
    for text in value:
        try:
            parsed.append(platforms.parse(text))
        except platforms.PlatformError as e:
            return str(e), "use linux/amd64 or linux/arm64"
    if not parsed:
        return "names no platform", "name linux/amd64, linux/arm64 or both, or leave the field out"
    if len(set(parsed)) != len(parsed):
        return (f"names {parsed[0].name if parsed.count(parsed[0]) > 1 else parsed[1].name} twice",
                "name each platform once")
    return None


class SkipPushField(BoolField):
    alias = "skip_push"
    default = False
    help = "If true, `pants publish` skips this model."


class ModelCarField(TriBoolField):
    alias = "modelcar"
    help = help_text(
        """
        Make the image also a KServe ModelCar (`storageUri: oci://<image>`): add a static busybox (`sh`, `ln`,
        `mkdir`, `sleep`, `cat`, `ls`, from the Debian lock `[omi].modelcar_lockfile`, ~2 MB) for the sidecar's
        `sh -c "ln -sf /proc/$$/root/models /mnt/models && sleep infinity"`, link the first path component of each
        of model.yaml's `files` at the top of `/models`, where KServe's model servers look, and start the server as
        the image's `Cmd` (KServe passes the sidecar's command as `args`). Unset: `[omi].modelcar`.
        """
    )


class LayerCompressionField(StringField):
    alias = "layer_compression"
    valid_choices = ALGORITHMS
    help = help_text(
        """
        Compression of the image's base, dependency and code layers: `gzip` (read by every registry and runtime),
        `zstd` (smaller, faster to unpack; podman, containerd 1.5+, CRI-O) or `none`. The compressors are pinned by
        `[omi-tools]`, so the compressed digests are the same on every machine. Unset: `[omi].layer_compression`.
        """
    )


class ModelCompressionField(StringField):
    alias = "model_compression"
    valid_choices = ("auto", *ALGORITHMS)
    help = help_text(
        """
        Compression of the model file layers (shared with the ModelPack artifact): `auto` compresses a file's layer
        with the `layer_compression` algorithm only when samples of it shrink to 90% or less (weights stored as
        float tensors rarely do, and compressing them costs build and pull time for nothing); `gzip`, `zstd` or
        `none` decide for every file. Unset: `[omi].model_compression`.
        """
    )


class OmiModelOutputPathField(OutputPathField):
    help = help_text(
        """
        Where the OCI image layout is written, relative to `--distdir`, without extension: the layout goes to
        `<output_path>.oci/`, the build record to `<output_path>.omi.json` and the ModelPack artifact to
        `<output_path>.modelpack.oci/`. Defaults to `<path.with.dots>/<target name>`.
        """
    )

    @staticmethod
    def problem(value: Optional[str]) -> Optional[FieldProblem]:
        if value is None:
            return None
        clean = posixpath.normpath(value)
        if value.startswith("/") or clean == ".." or clean.startswith("../") or clean == ".":
            return (f"{value!r} is not a path inside the dist directory",
                    "give a relative path like `models/digits`, without `..`")
        return None


class OmiModelTarget(Target):
    alias = "omi_model"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        ModelYamlSourceField,
        ModelFilesField,
        ModelArtifactField,
        OmiModelDependenciesField,
        OmiModelResolveField,
        BundledModelsField,
        BaseImageField,
        RepositoryField,
        ExtraTagsField,
        HttpPortField,
        OmiSpecVersionField,
        OmiRegistriesField,
        PlatformsField,
        SkipPushField,
        ModelCarField,
        LayerCompressionField,
        ModelCompressionField,
        OmiModelOutputPathField,
    )
    help = help_text(
        """
        An ML model packaged as an Open Model Interface (OMI) container image.

        `pants package` writes a reproducible OCI image layout (same sources, same digest, on any machine) with the
        model files, the runtime and its dependencies as separate layers on a pinned base, tagged with the model's
        run id, plus a CNCF ModelPack artifact over the same model blobs and a JSON build record.
        `pants run` serves the model locally. Example BUILD:

            omi_model(
                name="digits",
                model_files=["model.joblib"],
                repository="examples/digits",
            )
        """
    )


class DebianLockfileField(SingleSourceField):
    alias = "lockfile"
    expected_file_extensions = (".json",)
    help = help_text(
        """
        A lock file of Debian packages (name, version, URL, sha256, size), written by
        `pants run omi_plugin/base_images/generate_lock.py -- ...`.
        """
    )


class OmiDebianBaseTarget(Target):
    alias = "omi_debian_base"
    core_fields = (*COMMON_TARGET_FIELDS, DebianLockfileField)
    help = help_text(
        """
        A distroless-style base image assembled from pinned Debian packages: every `.deb` in the lock file is
        downloaded (verified by sha256), unpacked without running any package manager or maintainer script, and
        written as one normalised layer with a non-root user (65532), `/tmp`, CA certificates and dpkg status
        records for scanners.
        """
    )


class OciImageReferenceField(StringField):
    alias = "image"
    required = True
    help = help_text(
        """
        The base image, pinned by digest: `registry.example.com/team/python@sha256:<64 hex>`. A tag alone is refused,
        since what it names can change between builds; `name:tag@sha256:...` is accepted (the digest wins).
        """
    )

    @staticmethod
    def problem(value: Optional[str]) -> Optional[FieldProblem]:
        return digest_pinned_problem(value, "base")


class InsecureRegistryField(BoolField):
    alias = "insecure"
    default = False
    help = "Allow plain HTTP to a registry that is not on loopback (loopback registries may always use it)."


class BasePythonField(StringField):
    alias = "python"
    default = "/usr/bin/python3.11"
    help = "Absolute path of the CPython 3.11 interpreter in the base image (e.g. `/usr/local/bin/python3.11`)."


class BaseLibraryPathField(StringSequenceField):
    alias = "library_path"
    help = help_text(
        """
        Directories of the base image (relative to its root) holding the interpreter's shared libraries: used to run
        the base's own Python at build time to compile bytecode. Default: the Debian directory of the image's
        platform and `usr/local/lib` (`usr/lib/x86_64-linux-gnu` or `usr/lib/aarch64-linux-gnu`).
        """
    )


class OmiOciBaseTarget(Target):
    alias = "omi_oci_base"
    core_fields = (*COMMON_TARGET_FIELDS, OciImageReferenceField, InsecureRegistryField, BasePythonField,
                   BaseLibraryPathField)
    help = help_text(
        """
        A base image pulled from a registry by digest, every blob verified against its sha256 while it streams.
        Credentials come from the Docker config (`DOCKER_CONFIG` or `~/.docker/config.json`). Example:

            omi_oci_base(
                name="python-slim",
                image="registry.example.com/base/python@sha256:...",
                python="/usr/local/bin/python3.11",
            )
        """
    )


class OciArchiveSourceField(SingleSourceField):
    alias = "source"
    expected_file_extensions = (".tar",)
    help = help_text(
        """
        An OCI layout archive (`skopeo copy docker://registry/repo@sha256:... oci-archive:base.tar`). Every blob is
        verified against its digest when it is unpacked.
        """
    )


class OmiOciArchiveBaseTarget(Target):
    alias = "omi_oci_archive_base"
    core_fields = (*COMMON_TARGET_FIELDS, OciArchiveSourceField, BasePythonField, BaseLibraryPathField)
    help = help_text(
        """
        A base image read from a local OCI layout archive (a tar of an OCI image layout, as `skopeo` and `podman`
        write with `oci-archive:`), for teams that vendor their base or work offline. Example:

            omi_oci_archive_base(name="base", source="python-base.oci.tar", python="/usr/local/bin/python3.11")
        """
    )
