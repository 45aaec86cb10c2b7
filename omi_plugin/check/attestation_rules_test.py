"""The attestation rules (OMI501-504) on real layouts: pristine passes; each fault is one line naming the rule."""

from __future__ import annotations

import json
import os
from typing import List, Set, Tuple

import pytest

from omi_plugin.check.catalog import RULES
from omi_plugin.check.checker import CheckRequest, run_checks
from omi_plugin.oci import canonical_json
from omi_testutil import check_layouts as testutil

COVERED: Set[str] = set()


def _check(image: str, modelpack: str, attestations: str) -> List[str]:
    violations = run_checks(CheckRequest(
        target=testutil.TARGET, model_yaml=testutil.MODEL_YAML_PATH, model_yaml_text=testutil.MODEL_YAML,
        model_files={rel: len(data) for rel, data in testutil.MODEL_FILES.items()}, layout=image,
        modelpack_layout=modelpack, repository="tests/tiny", source_files=testutil.SOURCE_FILES,
        layout_name=testutil.IMAGE_NAME, modelpack_layout_name=testutil.MODELPACK_NAME,
        attestations_layout=attestations, attestations_layout_name=testutil.ATTESTATIONS_NAME))
    COVERED.update(v.rule for v in violations)
    assert all(v.rule != "OMI900" for v in violations), [str(v) for v in violations]
    return [f"{v.rule} {v}" for v in violations]


@pytest.fixture
def layouts(tmp_path) -> Tuple[str, str]:
    return testutil.build_layouts(str(tmp_path))


def _payloads(root: str) -> List[Tuple[str, dict]]:
    """(manifest path, manifest) of each referrer."""
    out = []
    for entry in json.load(open(os.path.join(root, "index.json")))["manifests"]:
        path = os.path.join(root, "blobs", "sha256", entry["digest"].split(":")[1])
        out.append((path, json.load(open(path))))
    return out


def _rewrite_payload(root: str, index: int, edit) -> None:
    """Edit one referrer's payload document and re-link its manifest and index.json, so only the content is wrong."""
    path, manifest = _payloads(root)[index]
    layer = manifest["layers"][0]
    blob = os.path.join(root, "blobs", "sha256", layer["digest"].split(":")[1])
    document = json.load(open(blob))
    edit(document)
    data = json.dumps(document).encode()
    digest = testutil._write_blob(root, data)
    layer["digest"], layer["size"] = digest, len(data)
    manifest_data = canonical_json.dumps(manifest)
    new = testutil._write_blob(root, manifest_data)
    index_path = os.path.join(root, "index.json")
    index_doc = json.load(open(index_path))
    for entry in index_doc["manifests"]:
        if entry["digest"] == "sha256:" + os.path.basename(path):
            entry["digest"], entry["size"] = new, len(manifest_data)
    with open(index_path, "wb") as f:
        f.write(canonical_json.dumps(index_doc))


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


def test_every_attestation_rule_is_exercised():
    # Runs after the tests above (pytest keeps file order).
    assert {rule for rule in RULES if rule.startswith("OMI5")} <= COVERED
