"""The signing rule with real Pants (RuleRunner): a key file or an environment variable signs; a missing or unusable
key is one line naming the target and the option, never the key; a replaced key file is read again."""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.supply_chain import signing as core
from omi_plugin.util_rules import signing

KEY = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
STATEMENT = json.dumps(core.image_statement("team/m", "sha256:" + "1" * 64)).encode()
ADDRESS = Address("m", target_name="m")


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(rules=[*signing.rules(), QueryRule(signing.SignedStatements, [signing.SignStatementsRequest])])


def _sign(runner: RuleRunner) -> signing.SignedStatements:
    return runner.request(signing.SignedStatements, [signing.SignStatementsRequest(ADDRESS, (("image", STATEMENT),))])


def test_a_key_file_signs(rule_runner: RuleRunner, tmp_path) -> None:
    (tmp_path / "key.pem").write_bytes(PEM)
    rule_runner.set_options([f"--omi-signing-key={tmp_path / 'key.pem'}"])
    (name, bundle), = _sign(rule_runner).bundles
    assert name == "image"
    assert core.verify(bundle, KEY.public_key())["subject"][0]["digest"]["sha256"] == "1" * 64


def test_a_key_in_the_environment_signs(rule_runner: RuleRunner) -> None:
    rule_runner.set_options(["--omi-signing-key=env:TEST_OMI_KEY"], env={"TEST_OMI_KEY": PEM.decode()})
    (_, bundle), = _sign(rule_runner).bundles
    assert core.verify(bundle, KEY.public_key())


def test_a_replaced_key_file_is_read_again(rule_runner: RuleRunner, tmp_path) -> None:
    # The rule is uncacheable: in the next run, the same request after the key file changed signs with the new key.
    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(PEM)
    rule_runner.set_options([f"--omi-signing-key={tmp_path / 'key.pem'}"])
    (_, first), = _sign(rule_runner).bundles
    (tmp_path / "key.pem").write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    rule_runner.set_options([f"--omi-signing-key={tmp_path / 'key.pem'}"])  # the next run: a new session
    (_, second), = _sign(rule_runner).bundles
    assert core.verify(first, KEY.public_key()) and core.verify(second, other.public_key())


def test_a_relative_key_path_is_from_the_build_root_and_tilde_is_home() -> None:
    assert signing.key_file_path("keys/k.pem", "/repo") == "/repo/keys/k.pem"
    assert signing.key_file_path("~/k.pem", "/repo").startswith(os.path.expanduser("~") + "/")


@pytest.mark.parametrize("setup, expected", [
    (lambda tmp: ["--omi-signing-key=env:TEST_OMI_UNSET"],
     "m:m: [omi].signing_key: environment variable TEST_OMI_UNSET is not set"),
    (lambda tmp: [f"--omi-signing-key={tmp / 'absent.pem'}"], "cannot read the signing key"),
    (lambda tmp: (tmp / "ed.pem").write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
     and [f"--omi-signing-key={tmp / 'ed.pem'}"], "not an ECDSA key on P-256, P-384 or P-521"),
])
def test_an_unusable_key_is_one_line(rule_runner: RuleRunner, tmp_path, setup, expected) -> None:
    rule_runner.set_options(setup(tmp_path))
    with pytest.raises(ExecutionError) as info:
        _sign(rule_runner)
    assert expected in str(info.value)
    assert "BEGIN" not in str(info.value)
