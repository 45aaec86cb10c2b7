"""The attestation rules (OMI501-504) on real layouts: pristine passes; each fault is one line naming the rule."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from typing import List, Optional, Set, Tuple

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from omi_contract.violation import Collector
from omi_plugin.check.attestation_rules import artifact_file_digests
from omi_plugin.check.catalog import RULES
from omi_plugin.check.checker import CheckRequest, run_checks
from omi_plugin.check.layout_rules import scan_layout
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.descriptor import Blob, Descriptor, sha256_digest
from omi_plugin.oci.image import build_manifest
from omi_plugin.oci.platforms import AMD64, ARM64
from omi_plugin.supply_chain import signing
from omi_testutil import check_layouts as testutil
from omi_testutil.registry import write_layout

COVERED: Set[str] = set()


def _check(image: str, modelpack: str, attestations: str, verify_key: Optional[bytes] = None) -> List[str]:
    violations = run_checks(CheckRequest(
        target=testutil.TARGET, model_yaml=testutil.MODEL_YAML_PATH, model_yaml_text=testutil.MODEL_YAML,
        model_files={rel: len(data) for rel, data in testutil.MODEL_FILES.items()}, layout=image,
        modelpack_layout=modelpack, repository="tests/tiny", source_files=testutil.SOURCE_FILES,
        layout_name=testutil.IMAGE_NAME, modelpack_layout_name=testutil.MODELPACK_NAME,
        attestations_layout=attestations, attestations_layout_name=testutil.ATTESTATIONS_NAME, verify_key=verify_key))
    COVERED.update(v.rule for v in violations)
    assert all(v.rule != "OMI900" for v in violations), [str(v) for v in violations]
    return [f"{v.rule} {v}" for v in violations]


@pytest.fixture
def layouts(tmp_path) -> Tuple[str, str]:
    return testutil.build_layouts(str(tmp_path))


def _rewrite_payload(root: str, index: int, edit) -> None:
    digest = json.load(open(os.path.join(root, "index.json")))["manifests"][index]["digest"]
    testutil.rewrite_referrer_payload(root, digest, edit)


def test_pristine_attestations_pass(layouts, tmp_path):
    image, modelpack = layouts
    assert _check(image, modelpack, testutil.build_attestations(str(tmp_path), image, modelpack)) == []


def test_an_sbom_missing_a_distribution_of_the_layer_is_one_line(layouts, tmp_path):
    image, modelpack = layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack, distributions=("dep-1.0", "extra-3"))
    lines = _check(image, modelpack, attestations)
    assert [line.split(": ", 2)[-1] for line in lines] == [
        "packages: does not list other-dist, but the dependency layer holds other-dist 2.5 "
        "(run `pants package` for the target again)",
        "packages: lists extra 3, which the dependency layer does not hold (run `pants package` for the target again)"]
    assert all(line.startswith("OMI503 ") for line in lines)


def test_an_sbom_that_is_not_spdx_is_refused(layouts, tmp_path):
    image, modelpack = layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack)
    _rewrite_payload(attestations, 0, lambda doc: doc.pop("spdxVersion"))
    lines = _check(image, modelpack, attestations)
    assert len(lines) == 1 and lines[0].startswith("OMI502 ") and "'spdxVersion' is a required property" in lines[0]


def test_a_tampered_provenance_subject_is_refused(layouts, tmp_path):
    image, modelpack = layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack)
    _rewrite_payload(attestations, 1, lambda doc: doc["subject"][0]["digest"].update(sha256="0" * 64))
    lines = _check(image, modelpack, attestations)
    assert lines and all(line.startswith("OMI504 ") for line in lines)
    assert "not the image and the model artifact" in lines[0]


def test_attestations_of_another_build_are_refused(layouts, tmp_path):
    image, modelpack = layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack)
    other_image, other_modelpack = testutil.build_layouts(str(tmp_path / "other"), spec_version="1.1")
    # The 1.1 labels differ from model.yaml's 1.0 expectations too (OMI209/210); only the OMI5xx lines matter here.
    lines = [line for line in _check(other_image, other_modelpack, attestations) if line.startswith("OMI5")]
    assert {line.split()[0] for line in lines} == {"OMI501", "OMI504"}
    # The model artifact does not change with the labels: only the two referrers of the image are foreign.
    assert sum("neither the image nor the model artifact of this build" in line for line in lines) == 2


KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_signed_attestations_pass_with_the_key(layouts, tmp_path):
    image, modelpack = layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack, key=KEY)
    assert _check(image, modelpack, attestations, PUBLIC) == []
    assert _check(image, modelpack, attestations) == []  # without a key, only the contents are checked


def test_a_wrong_key_is_one_line_per_signature(layouts, tmp_path):
    image, modelpack = layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack, key=KEY)
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    lines = _check(image, modelpack, attestations, other)
    # One line per signature, and nothing more: what their failure implies is not reported again.
    assert len(lines) == 4 and all(line.startswith("OMI505 ") and "signed with another key" in line for line in lines)


def test_a_tampered_signature_is_refused(layouts, tmp_path):
    image, modelpack = layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack, key=KEY)

    def flip(bundle):
        sig = bundle["dsseEnvelope"]["signatures"][0]["sig"]
        bundle["dsseEnvelope"]["signatures"][0]["sig"] = ("A" if sig[5] != "A" else "B").join([sig[:5], sig[6:]])
    _rewrite_payload(attestations, 3, flip)
    lines = _check(image, modelpack, attestations, PUBLIC)
    assert len(lines) == 1 and lines[0].startswith("OMI505 ") and "does not verify with the configured key" in lines[0]


def test_signed_model_files_that_are_not_the_artifacts_are_refused(layouts, tmp_path):
    image, modelpack = layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack, key=KEY,
                                               model_files={"model.joblib": b"other bytes"})
    lines = _check(image, modelpack, attestations, PUBLIC)
    assert [line.split()[0] for line in lines] == ["OMI506", "OMI506"]
    assert "signs models/tiny/model.joblib with sha256" in lines[0]
    assert "does not sign models/tiny/vocab/labels.txt" in lines[1]


def test_an_image_signature_over_another_digest_is_refused(layouts, tmp_path):
    image, modelpack = layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack, key=KEY)

    def resign(bundle):
        bundle.clear()
        bundle.update(json.loads(signing.sign(signing.image_statement("tests/tiny", "sha256:" + "0" * 64), KEY)))
    _rewrite_payload(attestations, 3, resign)
    lines = _check(image, modelpack, attestations, PUBLIC)
    assert len(lines) == 1 and lines[0].startswith("OMI507 ") and "names sha256:0000" in lines[0]


def test_unsigned_attestations_fail_when_a_key_asks_for_signatures(layouts, tmp_path):
    image, modelpack = layouts
    lines = _check(image, modelpack, testutil.build_attestations(str(tmp_path), image, modelpack), PUBLIC)
    assert len(lines) == 1 and lines[0].startswith("OMI505 ")
    assert "the image, the model files, the provenance are not signed" in lines[0]


def test_every_attestation_rule_is_exercised():
    # Runs after the tests above (pytest keeps file order).
    assert {rule for rule in RULES if rule.startswith("OMI5")} <= COVERED


@pytest.fixture
def index_layouts(tmp_path) -> Tuple[str, str]:
    return testutil.build_layouts(str(tmp_path), platforms=(AMD64, ARM64))


def test_an_image_index_and_its_attestations_pass(index_layouts, tmp_path):
    image, modelpack = index_layouts
    assert _check(image, modelpack, testutil.build_attestations(str(tmp_path), image, modelpack)) == []


def test_an_index_platform_without_its_sbom_is_one_line(index_layouts, tmp_path):
    image, modelpack = index_layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack)
    index_path = os.path.join(attestations, "index.json")
    index = json.load(open(index_path))
    arm64_sbom = index["manifests"].pop(1)  # the SBOMs come first, amd64's then arm64's
    with open(index_path, "w") as f:
        json.dump(index, f)
    image_index = json.load(open(os.path.join(image, "index.json")))["manifests"][0]["digest"]
    arm64 = json.load(open(os.path.join(image, "blobs", "sha256", image_index.split(":")[1])))["manifests"][1]
    assert arm64_sbom["artifactType"] == "application/spdx+json"
    assert _check(image, modelpack, attestations) == [
        f"OMI501 {testutil.TARGET}: {testutil.ATTESTATIONS_NAME}: manifests: no SBOM refers to the image "
        f"{arm64['digest']} of the index (run `pants package` for the target again)"]


def test_an_index_provenance_that_leaves_out_a_platform_is_refused(index_layouts, tmp_path):
    image, modelpack = index_layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack)
    last = len(json.load(open(os.path.join(attestations, "index.json")))["manifests"]) - 1
    _rewrite_payload(attestations, last, lambda doc: doc["subject"].pop(2))  # the index's: drop the arm64 image
    lines = _check(image, modelpack, attestations)
    assert len(lines) == 1 and lines[0].startswith("OMI504 ") and "not the image and the model artifact" in lines[0]


def test_an_index_without_the_provenance_of_one_of_its_images_is_one_line(index_layouts, tmp_path):
    image, modelpack = index_layouts
    attestations = testutil.build_attestations(str(tmp_path), image, modelpack)
    index_path = os.path.join(attestations, "index.json")
    index = json.load(open(index_path))
    image_index = json.load(open(os.path.join(image, "index.json")))["manifests"][0]["digest"]
    arm64 = json.load(open(os.path.join(image, "blobs", "sha256", image_index.split(":")[1])))["manifests"][1]
    # The arm64 image's own provenance (the referrers after the two SBOMs: amd64's two, then arm64's two).
    del index["manifests"][4]
    with open(index_path, "w") as f:
        json.dump(index, f)
    assert _check(image, modelpack, attestations) == [
        f"OMI501 {testutil.TARGET}: {testutil.ATTESTATIONS_NAME}: manifests: no provenance refers to "
        f"{arm64['digest']}, an image of the index (run `pants package` for the target again)"]


def test_the_files_of_a_registry_artifact_are_its_raw_layers_and_its_tar_layers_files(tmp_path):
    """A raw layer is one file named by its annotation, whose digest is the layer's even when its blob was left to
    the registry; a tar layer's files are read from it."""
    root = str(tmp_path / "artifact")
    weights = b"weights" * 100
    tokenizer = io.BytesIO()
    with tarfile.open(fileobj=tokenizer, mode="w") as tar:
        info = tarfile.TarInfo("./tokenizer/vocab.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"[UNK"))
    config = Blob.of_json(mt.MODELPACK_CONFIG, {"descriptor": {}, "config": {}, "modelfs": {}})
    tar_layer = Blob(Descriptor(mt.MODELPACK_WEIGHT_CONFIG_TAR, sha256_digest(tokenizer.getvalue()),
                                len(tokenizer.getvalue()), {mt.ANNOTATION_MODEL_FILEPATH: "tokenizer"}),
                     tokenizer.getvalue())
    raw = Descriptor(mt.MODELPACK_WEIGHT_RAW, sha256_digest(weights), len(weights),
                     {mt.ANNOTATION_MODEL_FILEPATH: "model.onnx"})
    manifest = build_manifest(config.descriptor, [raw, tar_layer.descriptor], artifact_type=mt.MODELPACK_ARTIFACT)
    write_layout(root, [(manifest.descriptor, ["v1"])])
    for blob in (config, tar_layer, manifest):  # the raw layer's blob is left to the registry
        with open(os.path.join(root, "blobs", "sha256", blob.descriptor.digest[7:]), "wb") as f:
            f.write(blob.data)
    out = Collector(testutil.TARGET, "artifact")
    scan = scan_layout(out, root, "artifact")
    assert scan is not None and not out.violations
    assert artifact_file_digests(scan) == {"model.onnx": hashlib.sha256(weights).hexdigest(),
                                           "tokenizer/vocab.txt": hashlib.sha256(b"[UNK").hexdigest()}
