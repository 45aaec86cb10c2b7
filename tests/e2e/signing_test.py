"""Signed builds end to end: `pants package` signs with a key, `pants check` verifies with its public half, and
OpenSSF's own `model_signing verify key` accepts the model files as pulled from the registry's ModelPack artifact."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import REPO, Clone, run

from omi_plugin.blob_store.store import omi_cache_dir
from omi_testutil.check_layouts import rewrite_referrer_payload
from omi_testutil.registry import registry  # noqa: F401 - pytest fixture

DIGITS = ("examples/digits", "digits")
MULTIARCH = ("examples/digits", "digits-multiarch")
MODEL_SIGNING = ("model-signing==1.1.1", "pyOpenSSL==26.4.0")  # model-signing 1.1.1 imports OpenSSL undeclared
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


@pytest.fixture(scope="module")
def model_signing_cli() -> str:
    """OpenSSF's `model_signing` CLI from PyPI, in a venv of its own under the omi cache (installed once)."""
    cache = Path(omi_cache_dir(os.environ))
    venv = cache / "model-signing-1.1.1-py311"
    cli = venv / "bin" / "model_signing"
    if not cli.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        cert = ["--cert", "/etc/ssl/certs/ca-certificates.crt"] if Path("/etc/ssl/certs/ca-certificates.crt").exists() else []
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *cert,
                        *MODEL_SIGNING], check=True, env={**os.environ, "PIP_CONFIG_FILE": "/dev/null"})
    return str(cli)


@pytest.fixture(scope="module")
def signed_clone(clone_factory) -> Clone:
    clone = clone_factory("clone-signed", pantsd=False)
    keys = clone.root / "keys"
    keys.mkdir()
    for name in ("signing", "other"):
        run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(keys / f"{name}.pem")])
        run(["openssl", "ec", "-in", str(keys / f"{name}.pem"), "-pubout", "-out", str(keys / f"{name}.pub.pem")])
    return clone


def _env(clone: Clone, verify: str = "signing") -> Dict[str, str]:
    return {"PANTS_OMI_SIGNING_KEY": str(clone.root / "keys" / "signing.pem"),
            "PANTS_OMI_VERIFY_KEY": f"keys/{verify}.pub.pem"}


def test_package_signs_and_check_verifies_and_a_wrong_key_fails(signed_clone: Clone, packaged_clone: Clone) -> None:
    clone = signed_clone
    packaged = clone.pants("package", "examples/digits:digits", env=_env(clone))
    record = clone.record(*DIGITS)
    # Signing adds referrers; the image itself is the unsigned build's, byte for byte.
    assert record["image_digest"] == packaged_clone.record(*DIGITS)["image_digest"]
    attestations = record["attestations"]
    assert len(attestations["signature_digests"]) == 2, packaged.output[-2000:]
    assert (clone.root / "dist" / attestations["model_signature"]).is_file()
    assert "BEGIN" not in packaged.output  # the key is never printed

    checked = clone.pants("check", "examples/digits:digits", env=_env(clone))
    assert "omi check: OK" in checked.output, checked.output[-3000:]

    wrong = clone.pants("check", "examples/digits:digits", env=_env(clone, verify="other"), check=False)
    assert wrong.returncode != 0
    lines = [line for line in wrong.output.splitlines() if line.startswith("examples/digits:digits: attestations")]
    # One line per signature: four bundles (the provenance twice, the image, the model files), each the same reason.
    assert len(lines) == 4 and all("signed with another key than the one configured" in line for line in lines), \
        wrong.output[-3000:]


def test_an_index_is_signed_with_each_of_its_images(signed_clone: Clone, packaged_clone: Clone) -> None:
    clone = signed_clone
    clone.pants("package", ":".join(MULTIARCH), env=_env(clone))
    record = clone.record(*MULTIARCH)
    assert record["image_digest"] == packaged_clone.record(*MULTIARCH)["image_digest"]
    # The index's signature, each platform's image's, and the model files' (one for both: the same files, signed
    # deterministically).
    assert len(record["attestations"]["signature_digests"]) == 4
    checked = clone.pants("check", ":".join(MULTIARCH), env=_env(clone))
    assert "omi check: OK" in checked.output, checked.output[-3000:]
    wrong = clone.pants("check", ":".join(MULTIARCH), env=_env(clone, verify="other"), check=False)
    lines = [line for line in wrong.output.splitlines()
             if line.startswith("examples/digits:digits-multiarch: attestations")]
    # Every bundle: the index's provenance and signature, each platform's provenance (twice) and image signature,
    # and the model files' signature.
    assert wrong.returncode != 0 and len(lines) == 9, wrong.output[-3000:]
    assert all("signed with another key than the one configured" in line for line in lines)


def test_tampering_with_the_packaged_attestations_is_one_line_each(signed_clone: Clone, tmp_path) -> None:
    """The checker over the layouts in dist/ (as CI would run it on downloaded artifacts): a flipped byte in the
    signed provenance is reported, and so is a forged image signature (with the missing image signature it implies).
    `pants check` itself checks what it builds, so tampering with dist/ is checked this way."""
    clone = signed_clone
    if not (clone.root / "dist" / "examples.digits" / "digits.attestations.oci").exists():
        clone.pants("package", "examples/digits:digits", env=_env(clone))
    record = clone.record(*DIGITS)
    pub = str(clone.root / "keys" / "signing.pub.pem")
    for case in ("attestation", "signature"):
        work = tmp_path / case
        run(["cp", "-rL", str(clone.root / "dist" / "examples.digits"), str(work)])
        layout = work / "digits.attestations.oci"
        if case == "attestation":  # one byte of the signed provenance flipped where it lies
            payload = _signed_payload(layout, record["attestations"]["provenance_digests"][0])
            data = bytearray(payload.read_bytes())
            data[len(data) // 2] ^= 0x01
            payload.write_bytes(bytes(data))
            expected = "hashes to"
        else:  # a forged image signature, re-linked so that every digest matches
            def forge(bundle: Dict[str, Any]) -> None:
                sig = bundle["dsseEnvelope"]["signatures"][0]["sig"]
                bundle["dsseEnvelope"]["signatures"][0]["sig"] = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
            rewrite_referrer_payload(str(layout), record["attestations"]["signature_digests"][0], forge)
            expected = "does not verify with the configured key"
        result = subprocess.run(
            [sys.executable, "-m", "omi_plugin.check", "--target", "examples/digits:digits",
             "--model-yaml", str(clone.root / "examples/digits/model.yaml"), "--layout", str(work / "digits.oci"),
             "--modelpack-layout", str(work / "digits.modelpack.oci"), "--attestations-layout", str(layout),
             "--attestations-layout-name", "attestations", "--verify-key", pub],
            cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 1, result.stdout + result.stderr
        problems = [line for line in result.stdout.splitlines() if " attestations " in line]
        # The first line says what happened; those after it are what follows from it (e.g. "not signed").
        assert problems and expected in problems[0], result.stdout


def _signed_payload(layout: Path, manifest_digest: str) -> Path:
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest.split(":")[1]).read_text())
    return layout / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]


def _get(host: str, path: str) -> bytes:
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    request = urllib.request.Request(f"http://{host}/v2/examples/digits/{path}", headers={"Accept": accept})
    with urllib.request.urlopen(request) as response:
        return response.read()


def _image_signature_verifies(host: str, image_digest: str, public_key_file: Path) -> None:
    """From the image digest alone: its referrers hold a signature bundle whose DSSE envelope verifies (checked here
    with `cryptography` directly, not omi's verifier) and whose statement names the image."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    referrers = json.loads(_get(host, f"manifests/sha256-{image_digest.split(':')[1]}"))["manifests"]
    entry = next(r for r in referrers if r.get("annotations", {}).get("dev.sigstore.bundle.predicateType")
                 == "https://sigstore.dev/cosign/sign/v1")
    manifest = json.loads(_get(host, f"manifests/{entry['digest']}"))
    assert manifest["subject"]["digest"] == image_digest
    envelope = json.loads(_get(host, f"blobs/{manifest['layers'][0]['digest']}"))["dsseEnvelope"]
    payload, kind = base64.b64decode(envelope["payload"]), envelope["payloadType"].encode()
    signed = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    key = load_pem_public_key(public_key_file.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), signed, ec.ECDSA(SHA256()))  # raises if forged
    assert json.loads(payload)["subject"][0]["digest"]["sha256"] == image_digest.split(":")[1]


def test_model_signing_verifies_the_model_files_pulled_from_the_registry(signed_clone: Clone, registry,  # noqa: F811
                                                                         model_signing_cli, tmp_path) -> None:
    clone = signed_clone
    out = tmp_path / "published.json"
    clone.pants("publish", "examples/digits:digits", f"--publish-output={out}",
                env={**_env(clone), "PANTS_OMI_REGISTRIES": repr({"local": {"address": registry.host, "default": True}})})
    record = json.loads(out.read_text())[0]
    _image_signature_verifies(registry.host, record["image_digest"], clone.root / "keys" / "signing.pub.pem")
    # Pull the ModelPack artifact as a model client does: every layer unpacked into one directory.
    model = json.loads(_get(registry.host, f"manifests/{record['model_digest']}"))
    files = tmp_path / "model"
    files.mkdir()
    for layer in model["layers"]:
        blob = tmp_path / "layer"
        blob.write_bytes(_get(registry.host, f"blobs/{layer['digest']}"))
        with tarfile.open(blob) as tar:
            tar.extractall(files)
    # The model files' signature is a referrer of the model artifact.
    referrers: List[Dict[str, Any]] = json.loads(_get(
        registry.host, f"manifests/sha256-{record['model_digest'].split(':')[1]}"))["manifests"]
    signature = next(r for r in referrers if r.get("annotations", {}).get("dev.sigstore.bundle.predicateType")
                     == "https://model_signing/signature/v1.0")
    assert signature["artifactType"] == BUNDLE
    bundle_manifest = json.loads(_get(registry.host, f"manifests/{signature['digest']}"))
    sig = tmp_path / "model.sig"
    sig.write_bytes(_get(registry.host, f"blobs/{bundle_manifest['layers'][0]['digest']}"))
    pub = str(clone.root / "keys" / "signing.pub.pem")
    verify = [model_signing_cli, "verify", "key", "--signature", str(sig), "--public_key", pub, str(files)]
    accepted = subprocess.run(verify, capture_output=True, text=True)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    weights = next(p for p in files.rglob("*") if p.is_file() and p.name != "omi-model.json")
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    refused = subprocess.run(verify, capture_output=True, text=True)
    assert refused.returncode == 1 and "Hash mismatch" in refused.stdout + refused.stderr
