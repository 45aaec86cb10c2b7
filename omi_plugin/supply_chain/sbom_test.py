"""The SPDX document: valid against the SPDX 2.3 schema, complete, stable, and readable back for `pants check`."""

import json

import jsonschema
import pytest

from omi_plugin.supply_chain import sbom

CONTENTS = sbom.ImageContents(
    repository="examples/digits", tag="run-7", image_digest="sha256:" + "1" * 64, base_name="3rdparty/debian:py",
    base_digest="sha256:" + "2" * 64,
    debian=(sbom.DebianPackage("libc6", "2.36-9+deb12u9", "amd64", "3" * 64,
                               "http://deb.debian.org/debian/pool/main/g/glibc/libc6_2.36-9+deb12u9_amd64.deb",
                               "bookworm"),
            sbom.DebianPackage("tzdata", "2024a-0+deb12u1", "all", "4" * 64, "http://deb/tzdata.deb", "bookworm")),
    python=(sbom.PythonDistribution("scikit_learn", "1.5.2", "scikit_learn-1.5.2-cp311-cp311-linux_x86_64.whl",
                                    "5" * 64, "https://files/scikit_learn.whl"),
            sbom.PythonDistribution("local_dist", "0.1", "local_dist-0.1-py3-none-any.whl"),
            sbom.PythonDistribution("torch", "2.1.0+cpu", "torch-2.1.0+cpu-cp311-cp311-linux_x86_64.whl")),
    models=(sbom.ModelContents("digits", "1.0.0", "run-7", "sklearn", (
        sbom.ModelFile("/models/digits/model.joblib", "sha256:" + "6" * 64, 1234),)),),
    app_version="0.9.0",
)


def _document():
    return sbom.spdx_document(CONTENTS, ["Tool: omi-0.9.0"])


def test_the_document_is_valid_spdx_2_3():
    validator = jsonschema.Draft7Validator(sbom.schema())
    errors = sorted(e.message for e in validator.iter_errors(_document()))
    assert errors == []
    ids = [p["SPDXID"] for p in _document()["packages"]]
    assert len(ids) == len(set(ids))


def test_a_document_missing_what_spdx_requires_is_invalid():
    broken = _document()
    del broken["packages"][0]["downloadLocation"]
    broken["packages"][1]["checksums"][0]["algorithm"] = "SHA999"
    assert len(list(jsonschema.Draft7Validator(sbom.schema()).iter_errors(broken))) == 2


def test_every_package_of_the_image_is_listed_with_its_hash_and_purl():
    doc = _document()
    by_name = {p["name"]: p for p in doc["packages"]}
    libc = by_name["libc6"]
    assert libc["checksums"] == [{"algorithm": "SHA256", "checksumValue": "3" * 64}]
    assert libc["externalRefs"][0]["referenceLocator"] == \
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-bookworm"
    sklearn = by_name["scikit_learn"]
    assert sklearn["externalRefs"][0]["referenceLocator"] == "pkg:pypi/scikit-learn@1.5.2"
    assert sklearn["checksums"][0]["checksumValue"] == "5" * 64
    assert "checksums" not in by_name["local_dist"]  # built from source: the lockfile pins no wheel hash
    assert by_name["/models/digits/model.joblib"]["checksums"][0]["checksumValue"] == "6" * 64
    image = by_name["examples/digits"]
    assert image["primaryPackagePurpose"] == "CONTAINER" and image["checksums"][0]["checksumValue"] == "1" * 64
    contained = {r["relatedSpdxElement"] for r in doc["relationships"] if r["relationshipType"] == "CONTAINS"}
    assert {p["SPDXID"] for p in doc["packages"]} - contained == {image["SPDXID"], "SPDXRef-base"}


def test_the_document_is_a_function_of_the_image():
    assert sbom.spdx_bytes(_document()) == sbom.spdx_bytes(_document())
    other = sbom.ImageContents(**{**CONTENTS.__dict__, "image_digest": "sha256:" + "9" * 64})
    assert sbom.document_namespace(other) != sbom.document_namespace(CONTENTS)
    assert _document()["creationInfo"]["created"] == "1970-01-01T00:00:00Z"


def test_python_distributions_read_back():
    assert sbom.python_distributions_in(json.loads(sbom.spdx_bytes(_document()))) == {
        "scikit-learn": "1.5.2", "local-dist": "0.1", "torch": "2.1.0+cpu"}


@pytest.mark.parametrize("name, expected", [("Scikit_Learn", "scikit-learn"), ("zope.interface", "zope-interface")])
def test_pypi_names_are_normalised(name, expected):
    assert sbom.canonical_pypi_name(name) == expected
