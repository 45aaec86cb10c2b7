"""Every rule the checker enforces, by stable id: what `pants check` users look up when a line names one.

Ids never change meaning; retired rules keep their number. 1xx: model.yaml and inputs, 2xx: OCI image layout,
3xx: ModelPack artifact, 4xx: live smoke test, 5xx: attestations, 9xx: the checker itself.
"""

from __future__ import annotations

from typing import Dict

from omi_contract.interfaces import OMI_MINIMUM, OMI_NAMES, SERVED

RULES: Dict[str, str] = {
    # Metadata (model.yaml, model files, target fields)
    "OMI100": "model.yaml is readable YAML and a mapping of fields",
    "OMI101": "model.yaml matches its schema (omi_plugin/metadata/model.schema.json); every error is reported",
    "OMI102": "every file listed in `files` is present among the model files",
    "OMI103": "every model file is non-empty",
    "OMI104": f"every declared interface is an OMI string: {', '.join(OMI_NAMES)}",
    "OMI105": f"declared interfaces include the OMI 1.0 minimum, {' and '.join(OMI_MINIMUM)}",
    "OMI106": f"every declared interface is one omi_runtime serves ({', '.join(SERVED)})",
    "OMI107": "a run id is present (`run_id`, or `run_id_from` naming a readable MLflow MLmodel file)",
    "OMI108": "the run id is a valid OCI tag",
    "OMI109": "the run id is not `latest`",
    "OMI110": "the repository name is a valid OCI repository path",
    "OMI111": "a custom handler is importable: its `pkg.mod:Class` module is among the sources",
    "OMI112": "model files stay inside the model directory",
    "OMI113": "tensor names are unique among inputs and among outputs",
    "OMI114": "samples name only declared inputs and outputs",
    "OMI115": "a huggingface model declares a task (text-embedding, text-classification) and the tensors it gives",
    "OMI116": "a huggingface model directory has tokenizer.json, config.json and one ONNX graph taking what the "
              "tokenizer gives; declared dimensions equal the model's hidden size and number of labels",
    # OCI image layout (also applied to the ModelPack layout where marked *)
    "OMI200": "* the directory is an OCI image layout (oci-layout version 1.0.0, index.json)",
    "OMI201": "* index.json matches the image-spec image-index schema",
    "OMI202": "* every manifest matches the image-spec image-manifest schema",
    "OMI203": "the image config matches the image-spec config schema",
    "OMI204": "* every referenced blob is present in blobs/sha256",
    "OMI205": "* every blob's sha256 matches its descriptor's digest",
    "OMI206": "* every blob's size matches its descriptor's size",
    "OMI207": "manifest, config and layer media types are the OCI image ones",
    "OMI208": "rootfs.diff_ids has one entry per layer, each the sha256 of the uncompressed layer",
    "OMI209": "the manifest annotation ml.openmodel.interfaces is a JSON list equal to the declared interfaces",
    "OMI210": "the config label ml.openmodel.interfaces is a JSON list equal to the declared interfaces",
    "OMI211": "Env sets INTERFACE, PROTOCOL, HTTP_PORT, MODEL_NAME consistent with the model and its interfaces",
    "OMI212": "ExposedPorts contains <HTTP_PORT>/tcp",
    "OMI213": "the container runs as a non-root User",
    "OMI214": "* no ref name in index.json is `latest`",
    "OMI215": "* index.json carries at least one ref name (tag), each a valid OCI tag",
    "OMI216": "the run id (origin id) is among the image's tags",
    "OMI217": "OMI 1.1: ml.openmodel.protocols lists each interface's protocols, indexed like interfaces",
    "OMI218": "OMI 1.1: ml.openmodel.port equals HTTP_PORT",
    "OMI219": "OMI 1.1: ml.openml.model_name equals the model name",
    "OMI220": "the image and ModelPack manifests' annotation dev.omi.model.run-id, where present, equals the run id",
    "OMI221": "an image index lists each image under the platform (os, architecture, variant) its config says",
    # ModelPack artifact
    "OMI301": "the ModelPack config matches the model-spec v0.0.7 config schema (date-times really checked)",
    "OMI302": "config.paramSize matches ^\\d+(\\.\\d)?[QqTtBbMmKk]$",
    "OMI303": "every modelfs.diffIds entry is a sha256 digest",
    "OMI304": "modelfs.diffIds has one entry per layer, in layer order, each the uncompressed layer's sha256",
    "OMI305": "every layer carries the org.cncf.model.filepath annotation",
    "OMI306": "every layer media type is a ModelPack one (weight, weight.config, doc, code, dataset)",
    "OMI307": "artifactType and config media type are the ModelPack ones",
    "OMI308": "every ModelPack layer is the same blob as one of the image's layers",
    "OMI309": "every model file of model.yaml is a layer of the artifact (by its filepath annotation)",
    "OMI310": "the image manifest's subject is this ModelPack artifact's manifest (digest, size, media type)",
    "OMI311": "a model from a registry artifact: the model artifact layout is that artifact, every blob it holds whole "
              "(a raw layer may be left to the registry)",
    # Attestations (SBOM and provenance referrers)
    "OMI501": "each attestation (SBOM, provenance, signature) refers to this build's image or model artifact; "
              "the SBOM and the provenance are there",
    "OMI502": "the SBOM is valid SPDX 2.3 (the SPDX project's JSON schema)",
    "OMI503": "the SBOM lists every Python distribution of the image's dependency layer, at its version, and no other",
    "OMI504": "the provenance is a SLSA v1 in-toto statement whose subjects are the image and the model artifact",
    "OMI505": "with [omi].verify_key: every signature verifies with that key, and the image, model files and provenance are signed",
    "OMI506": "the model files' signature lists exactly the files of the model artifact, each with its sha256",
    "OMI507": "the image's signature names the image manifest's digest",
    # Live smoke test
    "OMI401": "the runtime starts and becomes ready within the time limit for each declared interface",
    "OMI402": "health/readiness endpoints answer ready",
    "OMI403": "each sample is accepted and answered",
    "OMI404": "responses carry the declared outputs: names, datatypes, shapes",
    "OMI405": "responses equal the sample's expected outputs",
    "OMI406": "gRPC server reflection lists the interface's service and methods",
    "OMI407": "Modzy Status, Run and Shutdown behave as the Modzy v2 contract says",
    # The checker itself
    "OMI900": "the checker hit an unexpected error (a bug in the checker or an unreadable input)",
}


def describe(rule: str) -> str:
    return RULES.get(rule, "unknown rule")


def markdown_table() -> str:
    """The rule list for docs: `| id | rule |` rows."""
    rows = ["| id | rule |", "|---|---|"]
    rows.extend(f"| {rule} | {text.replace('|', '/')} |" for rule, text in RULES.items())
    return "\n".join(rows)
