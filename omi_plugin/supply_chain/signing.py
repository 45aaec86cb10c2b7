"""Signatures as Sigstore bundles (v0.3) holding a DSSE envelope over an in-toto statement, made with a key.

The model files' signature is the statement OpenSSF's `model_signing` writes and verifies (`model_signing verify key`):
one resource per file with its sha256, named by its path in the directory the ModelPack artifact unpacks into, so the
signature is made from the digests omi already knows, without reading the model bytes again. The image's signature
is a statement about the image manifest digest; signed provenance is the provenance statement in a bundle.
ECDSA keys on P-256, P-384 or P-521 (the curves `model_signing` accepts), hashed with SHA-256/384/512 to match.
`cryptography` is imported only here, so only the tools that sign or verify need it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from omi_plugin.oci import media_types as mt
from omi_plugin.supply_chain.provenance import STATEMENT_TYPE

BUNDLE_MEDIA_TYPE = mt.SIGSTORE_BUNDLE
IN_TOTO_PAYLOAD_TYPE = mt.IN_TOTO_JSON
MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"
IMAGE_SIGNATURE_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
ANNOTATION_PREDICATE_TYPE = mt.ANNOTATION_BUNDLE_PREDICATE_TYPE
# What `model_signing` ignores unless told otherwise; the verifier applies the list the signature records.
MODEL_SIGNING_IGNORED = (".git", ".gitattributes", ".github", ".gitignore")


class SigningError(ValueError):
    """A key or a signature that cannot be used (one line, never the key itself)."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def model_files_statement(model_name: str, files: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    """`model_signing`'s statement for files (path relative to the unpacked model, sha256 hex), sha256 per file."""
    resources = sorted(files)
    subject_digest = hashlib.sha256(b"".join(bytes.fromhex(digest) for _, digest in resources)).hexdigest()
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": subject_digest}}],
        "predicateType": MODEL_SIGNING_PREDICATE,
        "predicate": {
            "resources": [{"name": path, "digest": digest, "algorithm": "sha256"} for path, digest in resources],
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False,
                              "ignore_paths": list(MODEL_SIGNING_IGNORED)},
        },
    }


def image_statement(name: str, digest: str) -> Dict[str, Any]:
    return {"_type": STATEMENT_TYPE, "subject": [{"name": name, "digest": {"sha256": digest.split(":")[-1]}}],
            "predicateType": IMAGE_SIGNATURE_PREDICATE, "predicate": {}}


def _hash_for(key: Any) -> Any:
    from cryptography.hazmat.primitives import hashes

    return {"secp256r1": hashes.SHA256(), "secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}[key.curve.name]


def load_private_key(pem: bytes, password: Optional[bytes], where: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem, password=password or None)
    except TypeError:
        raise SigningError(f"{where}: the key is encrypted and no password was given, or a password was given for "
                           "a key that has none (set OMI_SIGNING_KEY_PASSWORD accordingly)") from None
    except ValueError:
        raise SigningError(f"{where}: not a PEM private key, or the wrong password") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
        raise SigningError(f"{where}: not an ECDSA key on P-256, P-384 or P-521 (the curves model_signing verifies); "
                           "make one with `openssl ecparam -name prime256v1 -genkey -noout -out key.pem`")
    return key


def load_public_key(pem: bytes, where: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except ValueError:
        raise SigningError(f"{where}: not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SigningError(f"{where}: not an ECDSA public key")
    return key


def public_key_hint(public_key: Any) -> str:
    """What `model_signing` records to name the key: the sha256 of its SubjectPublicKeyInfo PEM."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def sign(statement: Mapping[str, Any], private_key: Any) -> bytes:
    """A Sigstore bundle (key material by hint, no transparency log entry) with the DSSE-signed statement."""
    from cryptography.hazmat.primitives.asymmetric import ec

    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    # RFC 6979 deterministic ECDSA (the pinned `cryptography` has it): the same key and statement give the same bytes,
    # so a signed build is as reproducible as an unsigned one.
    algorithm = ec.ECDSA(_hash_for(private_key), deterministic_signing=True)
    signature = private_key.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload), algorithm)
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": public_key_hint(private_key.public_key())},
                                 "tlogEntries": []},
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": IN_TOTO_PAYLOAD_TYPE,
                         "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}]},
    }
    return json.dumps(bundle, sort_keys=True, separators=(",", ":")).encode()


def verify(bundle_bytes: bytes, public_key: Any) -> Dict[str, Any]:
    """The statement a bundle signs, if `public_key` made the signature; SigningError (one line) otherwise."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        bundle = json.loads(bundle_bytes)
        envelope = bundle["dsseEnvelope"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
        payload_type = envelope["payloadType"]
    except (ValueError, KeyError, TypeError):
        raise SigningError("not a Sigstore bundle with a DSSE envelope") from None
    if bundle.get("mediaType") != BUNDLE_MEDIA_TYPE or payload_type != IN_TOTO_PAYLOAD_TYPE or not signatures:
        raise SigningError(f"not a signed in-toto bundle ({bundle.get('mediaType')!r}, {payload_type!r})")
    hint = ((bundle.get("verificationMaterial") or {}).get("publicKey") or {}).get("hint")
    if hint is not None and hint != public_key_hint(public_key):
        raise SigningError("signed with another key than the one configured (the key hints differ)")
    for signature in signatures:
        try:
            public_key.verify(signature, pae(payload_type, payload), ec.ECDSA(_hash_for(public_key)))
            break
        except InvalidSignature:
            continue
    else:
        raise SigningError("the signature does not verify with the configured key (tampered or another key)")
    try:
        statement = json.loads(payload)
    except ValueError:
        raise SigningError("the signed payload is not JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise SigningError("the signed payload is not an in-toto v1 statement")
    return statement
