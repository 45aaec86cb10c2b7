"""The attestations rule with real Pants (RuleRunner): the referrers layout it writes, unsigned and signed.

The lockfile and git lookups are stand-ins here (their own rules, `wheel_hashes` and `source_revision`); the
end-to-end suite runs them for real.
"""

from __future__ import annotations

import hashlib
import json
from typing import Dict

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pants.core.util_rules import adhoc_binaries, external_tool, system_binaries
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import CreateDigest, Digest, DigestContents
from pants.engine.rules import rule
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.oci import media_types as mt
from omi_plugin.oci.descriptor import Blob
from omi_plugin.omi_image import AssembledImage
from omi_plugin.supply_chain import provenance
from omi_plugin.supply_chain import signing as core
from omi_plugin.supply_chain.sbom import DebianPackage
from omi_plugin.util_rules import attestations, sandbox_tools, signing
from omi_plugin.util_rules.attestations import (
    Attestations,
    AttestationsRequest,
    MaybeSourceRevision,
    SourceRevisionRequest,
    WheelHashes,
    WheelHashesRequest,
)
from omi_plugin.util_rules.model_inputs import ModelFile, ModelInputs
from omi_testutil import check_layouts
from omi_testutil import rules as testutil_rules

WHEEL = "numpy-1.26.4-cp311-cp311-linux_x86_64.whl"
WEIGHTS = b"weights"
ADDRESS = Address("m", target_name="m")


@rule
async def stand_in_wheel_hashes(request: WheelHashesRequest) -> WheelHashes:
    return WheelHashes(((WHEEL, ("a" * 64, f"https://files/{WHEEL}")),), ("3rdparty/python/runtime.lock", "b" * 64))


@rule
async def stand_in_revision(request: SourceRevisionRequest) -> MaybeSourceRevision:
    return MaybeSourceRevision(provenance.SourceRevision("0123abc", False))


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(rules=[attestations.attestations, stand_in_wheel_hashes, stand_in_revision, *signing.rules(),
                             *sandbox_tools.rules(), *testutil_rules.rules(), *adhoc_binaries.rules(),
                             *system_binaries.rules(), *external_tool.rules(),
                             QueryRule(Attestations, [AttestationsRequest]), QueryRule(Digest, [CreateDigest]),
                             QueryRule(DigestContents, [Digest])])


def _request(runner: RuleRunner) -> AttestationsRequest:
    metadata = check_layouts.metadata()
    contents = (("model.joblib", WEIGHTS), ("vocab/labels.txt", b"0\n1\n"))
    files = tuple(ModelFile(rel, None, f"m/{rel}") for rel, _ in contents)
    digests = tuple((f"sha256:{hashlib.sha256(data).hexdigest()}", len(data)) for _, data in contents)
    config = Blob.of_json(mt.CONFIG, {"config": {}})
    manifest = Blob.of_json(mt.MANIFEST, {"schemaVersion": 2, "config": config.descriptor.to_json(), "layers": []})
    model = Blob.of_json(mt.MANIFEST, {"schemaVersion": 2, "artifactType": mt.MODELPACK_ARTIFACT, "layers": []})
    assembled = AssembledImage(config, manifest, b"{}", config, model, b"{}", ("tiny-run-1",), ())
    return AttestationsRequest(
        ADDRESS, assembled, "tests/tiny", (ModelInputs(ADDRESS, metadata, files, Addresses()),), (digests,),
        ("m/model.yaml", b"name: tiny\n"), Addresses(), (WHEEL,), "tests/base", "sha256:" + "c" * 64,
        (DebianPackage("libc6", "2.36", "amd64", "d" * 64, "http://deb/libc6.deb", "bookworm"),),
        (("3rdparty/debian/base.lock.json", "e" * 64),), (("layer_compression", "gzip"),))


def _layout(runner: RuleRunner, made: Attestations) -> Dict[str, bytes]:
    return {c.path: c.content for c in runner.request(DigestContents, [made.layout])}


def _referrers(files: Dict[str, bytes]):
    for entry in json.loads(files["index.json"])["manifests"]:
        manifest = json.loads(files[f"blobs/sha256/{entry['digest'].split(':')[1]}"])
        yield entry["digest"], manifest, files[f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"]


def test_unsigned_sbom_and_provenance_refer_to_the_image_and_the_model(rule_runner: RuleRunner) -> None:
    request = _request(rule_runner)
    made = rule_runner.request(Attestations, [request])
    found = list(_referrers(_layout(rule_runner, made)))
    image, model = request.assembled.manifest.descriptor.digest, request.assembled.modelpack_manifest.descriptor.digest
    assert [(m["artifactType"], m["subject"]["digest"]) for _, m, _ in found] == [
        (mt.SPDX_JSON, image), (mt.IN_TOTO_JSON, image), (mt.IN_TOTO_JSON, model)]
    assert [d for d, _, _ in found] == [made.sbom_digest, *made.provenance_digests]
    sbom = json.loads(made.sbom)
    numpy = next(p for p in sbom["packages"] if p["name"] == "numpy")
    assert numpy["checksums"][0]["checksumValue"] == "a" * 64 and numpy["downloadLocation"] == f"https://files/{WHEEL}"
    weights = next(p for p in sbom["packages"] if p["name"] == "/models/tiny/model.joblib")
    assert weights["checksums"][0]["checksumValue"] == hashlib.sha256(WEIGHTS).hexdigest()
    statement = json.loads(found[1][2])
    dependencies = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert {"name": "model file", "uri": "m/model.joblib", "digest": {"sha256": hashlib.sha256(WEIGHTS).hexdigest()}} \
        in dependencies
    assert {"name": "debian lockfile", "uri": "3rdparty/debian/base.lock.json", "digest": {"sha256": "e" * 64}} \
        in dependencies
    assert statement["predicate"]["buildDefinition"]["externalParameters"]["source"]["revision"] == "0123abc"
    assert made.signature_digests == () and made.model_signature is None
    # The same request gives the same bytes.
    assert rule_runner.request(Attestations, [request]).layout == made.layout


def test_with_a_key_everything_is_signed(rule_runner: RuleRunner, tmp_path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    rule_runner.set_options([f"--omi-signing-key={tmp_path / 'key.pem'}"])
    request = _request(rule_runner)
    made = rule_runner.request(Attestations, [request])
    found = list(_referrers(_layout(rule_runner, made)))
    predicates = [m.get("annotations", {}).get(core.ANNOTATION_PREDICATE_TYPE) for _, m, _ in found]
    assert predicates == [None, provenance.SLSA_PROVENANCE_V1, provenance.SLSA_PROVENANCE_V1,
                          core.IMAGE_SIGNATURE_PREDICATE, core.MODEL_SIGNING_PREDICATE]
    statements = [core.verify(payload, key.public_key()) for _, m, payload in found[1:]]
    assert statements[2]["subject"][0]["digest"]["sha256"] == request.assembled.manifest.descriptor.digest.split(":")[1]
    signed_files = {r["name"]: r["digest"] for r in statements[3]["predicate"]["resources"]}
    assert signed_files["models/tiny/model.joblib"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert set(signed_files) == {"models/tiny/model.joblib", "models/tiny/vocab/labels.txt", "models/tiny/omi-model.json"}
    assert made.model_signature == found[4][2]
    assert made.signature_digests == (found[3][0], found[4][0])
