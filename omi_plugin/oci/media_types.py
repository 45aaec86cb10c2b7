"""Media types and annotation keys of the OCI image spec and ModelPack that omi reads or writes (OMI's own keys are
in `omi_contract.image`)."""

import re
from typing import Tuple

OCI_LAYOUT_VERSION = "1.0.0"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
EMPTY_JSON = "application/vnd.oci.empty.v1+json"

MODELPACK_ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
MODELPACK_CONFIG = "application/vnd.cncf.model.config.v1+json"
MODELPACK_WEIGHT_TAR = "application/vnd.cncf.model.weight.v1.tar"
MODELPACK_WEIGHT_RAW = "application/vnd.cncf.model.weight.v1.raw"
MODELPACK_WEIGHT_CONFIG_TAR = "application/vnd.cncf.model.weight.config.v1.tar"
MODELPACK_DOC_TAR = "application/vnd.cncf.model.doc.v1.tar"

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_REVISION = "org.opencontainers.image.revision"
ANNOTATION_VERSION = "org.opencontainers.image.version"
ANNOTATION_DESCRIPTION = "org.opencontainers.image.description"
ANNOTATION_LICENSES = "org.opencontainers.image.licenses"
ANNOTATION_AUTHORS = "org.opencontainers.image.authors"
ANNOTATION_SOURCE = "org.opencontainers.image.source"
ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"
ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
ANNOTATION_MODEL_FILEPATH = "org.cncf.model.filepath"
ANNOTATION_MODEL_FILE_METADATA = "org.cncf.model.file.metadata+json"
ANNOTATION_MODEL_FILE_MEDIATYPE_UNTESTED = "org.cncf.model.file.mediatype.untested"
# A ModelPack layer of any kind, as other tools push them: raw (the file's bytes) or a tar, compressed or not.
MODELPACK_LAYER = re.compile(r"^application/vnd\.cncf\.model\.(weight|weight\.config|doc|code|dataset)\.v1\."
                             r"(raw|tar|tar\+gzip|tar\+zstd)$")


def modelpack_packing(media_type: str) -> Tuple[str, str]:
    """("raw", "") for a layer that is one file's bytes (any layer not a ModelPack tar: omlmd's are raw), or ("tar",
    "" | "gzip" | "zstd")."""
    found = MODELPACK_LAYER.match(media_type)
    if found and found.group(2) != "raw":
        return "tar", found.group(2).partition("+")[2]
    return "raw", ""

# Artifacts that refer to an image or a model artifact (OCI 1.1 `subject`): SBOM, provenance, signatures.
SPDX_JSON = "application/spdx+json"
IN_TOTO_JSON = "application/vnd.in-toto+json"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
ANNOTATION_IN_TOTO_PREDICATE_TYPE = "in-toto.io/predicate-type"
ANNOTATION_BUNDLE_PREDICATE_TYPE = "dev.sigstore.bundle.predicateType"
