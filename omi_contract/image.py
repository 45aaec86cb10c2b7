"""Where things are in an OMI image and what it is told at start-up: paths, user, environment names, label keys."""

from __future__ import annotations

# Paths inside the image.
MODELS_DIR = "/models"  # one directory per model: /models/<name>/<model files>, /models/<name>/omi-model.json
RECORD_FILE = "omi-model.json"  # the model record, beside the model files
APP_DIR = "/opt/omi/app"  # first-party code (omi_runtime, custom handlers)
SITE_PACKAGES_DIR = "/opt/omi/site-packages"  # third-party distributions
NONROOT_UID = 65532
NONROOT_USER = f"{NONROOT_UID}:{NONROOT_UID}"
WORKING_DIR = "/tmp"

# Environment variables of the OMI spec, read by omi_runtime at start-up.
ENV_INTERFACE = "INTERFACE"
ENV_PROTOCOL = "PROTOCOL"
ENV_HTTP_PORT = "HTTP_PORT"
ENV_MODEL_NAME = "MODEL_NAME"
# Modzy's platforms pass the port this way when HTTP_PORT is unset (see `interfaces.Interface.port_env`).
ENV_PSC_MODEL_PORT = "PSC_MODEL_PORT"
SPEC_ENV = (ENV_INTERFACE, ENV_PROTOCOL, ENV_HTTP_PORT, ENV_MODEL_NAME)
# omi's own.
ENV_MODELS_DIR = "OMI_MODELS_DIR"
ENV_HOST = "OMI_HOST"
ENV_MAX_MESSAGE_BYTES = "OMI_MAX_MESSAGE_BYTES"
ENV_DRAIN_SECONDS = "OMI_DRAIN_SECONDS"

# omi_runtime's exit codes at start-up: a wrong environment or model directory, and a model that does not load (the
# smoke test then reports the model once, not once per interface).
EXIT_CONFIG = 2
EXIT_MODEL_LOAD = 3

# Labels (config) and annotations (manifest) of the OMI spec. 1.0 writes only the first.
LABEL_INTERFACES = "ml.openmodel.interfaces"
LABEL_PROTOCOLS = "ml.openmodel.protocols"
LABEL_PORT = "ml.openmodel.port"
LABEL_MODEL_NAME = "ml.openml.model_name"  # sic: the OMI 1.1 spec spells this one `openml`
SPEC_VERSIONS = ("1.0", "1.1")

# omi's own manifest annotation: the model's run id, its id in the model registry, which is also the image's first
# tag. (`org.opencontainers.image.revision` means the source-control revision: omi writes it only when stamping.)
ANNOTATION_RUN_ID = "dev.omi.model.run-id"

# The history note (`created_by`) of the image layer holding the third-party Python distributions: the SBOM lists
# what that layer holds, and `pants check` compares the two.
DEPENDENCY_LAYER_NOTE = "omi: third-party Python packages"
# The history notes of the layers holding a model's files (`<note> <path in model.yaml>`) and its record: `pants
# check` of an image of another platform serves those files from the build machine's copy instead of unpacking them.
MODEL_FILE_LAYER_NOTE = "omi: model file"
MODEL_RECORD_LAYER_NOTE = "omi: model record"

# The model artifact (ModelPack) goes with the image under the image's tags plus this suffix, in the same repository;
# the image manifest's `subject` names it.
MODEL_ARTIFACT_TAG_SUFFIX = "-model"
# The optional omlmd flavour of the model artifact (its `subject` is the ModelPack artifact).
OMLMD_ARTIFACT_TAG_SUFFIX = "-omlmd"
