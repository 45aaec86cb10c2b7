"""Signing: bundles verify with the right key only, are deterministic, and carry `model_signing`'s statement."""

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from omi_plugin.supply_chain import signing


def _key(curve=ec.SECP256R1()):
    return ec.generate_private_key(curve)


def _pem(key, password=None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def test_a_bundle_verifies_with_its_key_and_says_what_it_signs():
    key = _key()
    bundle = signing.sign(signing.image_statement("team/m", "sha256:" + "1" * 64), key)
    statement = signing.verify(bundle, key.public_key())
    assert statement["subject"] == [{"name": "team/m", "digest": {"sha256": "1" * 64}}]
    assert json.loads(bundle)["mediaType"] == signing.BUNDLE_MEDIA_TYPE


def test_the_same_key_and_statement_give_the_same_bytes():
    key = _key()
    statement = signing.image_statement("team/m", "sha256:" + "1" * 64)
    assert signing.sign(statement, key) == signing.sign(statement, key)


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()])
def test_larger_curves_sign_and_verify(curve):
    key = _key(curve)
    assert signing.verify(signing.sign(signing.image_statement("m", "sha256:" + "2" * 64), key), key.public_key())


def test_another_key_is_refused_by_its_hint():
    bundle = signing.sign(signing.image_statement("m", "sha256:" + "1" * 64), _key())
    with pytest.raises(signing.SigningError, match="another key"):
        signing.verify(bundle, _key().public_key())


def test_a_tampered_payload_or_signature_is_refused():
    key = _key()
    bundle = json.loads(signing.sign(signing.image_statement("m", "sha256:" + "1" * 64), key))
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["subject"][0]["digest"]["sha256"] = "2" * 64
    forged = {**bundle, "dsseEnvelope": {**bundle["dsseEnvelope"],
                                         "payload": base64.b64encode(json.dumps(payload).encode()).decode()}}
    with pytest.raises(signing.SigningError, match="does not verify"):
        signing.verify(json.dumps(forged).encode(), key.public_key())
    sig = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 1
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(signing.SigningError, match="does not verify"):
        signing.verify(json.dumps(bundle).encode(), key.public_key())


def test_model_files_statement_is_model_signings():
    files = [("models/m/b.bin", "b" * 64), ("models/m/a.bin", "a" * 64)]
    statement = signing.model_files_statement("m", files)
    assert [r["name"] for r in statement["predicate"]["resources"]] == ["models/m/a.bin", "models/m/b.bin"]
    assert statement["subject"][0]["digest"]["sha256"] == hashlib.sha256(bytes.fromhex("a" * 64 + "b" * 64)).hexdigest()
    assert statement["predicate"]["serialization"]["method"] == "files"


def test_keys_load_with_their_password_and_wrong_ones_are_one_line():
    key = _key()
    assert signing.load_private_key(_pem(key, b"pw"), b"pw", "k.pem").private_numbers() == key.private_numbers()
    with pytest.raises(signing.SigningError, match="^k.pem: the key is encrypted and no password"):
        signing.load_private_key(_pem(key, b"pw"), None, "k.pem")
    with pytest.raises(signing.SigningError, match="^k.pem: not a PEM private key, or the wrong password"):
        signing.load_private_key(_pem(key, b"pw"), b"nope", "k.pem")
    ed = __import__("cryptography.hazmat.primitives.asymmetric.ed25519", fromlist=["x"]).Ed25519PrivateKey.generate()
    with pytest.raises(signing.SigningError, match="not an ECDSA key on P-256"):
        signing.load_private_key(_pem(ed), None, "k.pem")
