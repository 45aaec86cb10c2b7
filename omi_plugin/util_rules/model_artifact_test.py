"""The model artifact rule with real Pants (RuleRunner) and a real registry: the artifact fetched into the blob store
by the sandboxed tool (its weights straight into their image layer), found there in the next session with the registry
gone, plain HTTP to another host only when `[omi].registries` marks it insecure, and a missing digest one line."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest
from pants.engine.addresses import Address
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.blob_store.store import BlobStore
from omi_plugin.registry.client import Registry
from omi_plugin.registry.conftest import registry  # noqa: F401 - pytest fixture
from omi_plugin.registry.model_fetch import StoredArtifact
from omi_plugin.registry.model_fetch_test import _artifact
from omi_plugin.util_rules import model_artifact
from omi_plugin.util_rules.model_artifact import StoredModelArtifactRequest
from omi_testutil import rules as testutil_rules
from omi_testutil.registry import FAST_RETRY, stop_registry

ADDRESS = Address("m", target_name="m")


@pytest.fixture
def rule_runner(tmp_path: Path) -> RuleRunner:
    runner = RuleRunner(rules=[*model_artifact.rules(), *testutil_rules.blob_store_rules(),
                               QueryRule(StoredArtifact, [StoredModelArtifactRequest])])
    runner.set_options([f"--omi-blob-store={tmp_path / 'store'}"])
    return runner


def test_fetched_once_then_found_with_the_registry_gone(rule_runner: RuleRunner, registry, tmp_path: Path) -> None:  # noqa: F811
    digest, weights, _ = _artifact(Registry(registry.host, load_docker_config=False, retry=FAST_RETRY))
    reference = f"{registry.host}/models/text@{digest}"
    stored = rule_runner.request(StoredArtifact, [StoredModelArtifactRequest(ADDRESS, reference)])
    assert stored.reference == reference and stored.manifest.digest == digest
    weights_file = next(f for f in stored.files if f.path == "model.onnx")
    assert Path(BlobStore(str(tmp_path / "store")).blob(weights_file.digest)).read_bytes() == weights

    stop_registry(registry)
    rule_runner.set_options([f"--omi-blob-store={tmp_path / 'store'}"])  # a new session: the rule runs again
    assert rule_runner.request(StoredArtifact, [StoredModelArtifactRequest(ADDRESS, reference)]) == stored


def test_a_digest_the_registry_does_not_have_is_one_line(rule_runner: RuleRunner, registry) -> None:  # noqa: F811
    reference = f"{registry.host}/models/text@sha256:{'0' * 64}"
    with pytest.raises(Exception) as caught:
        rule_runner.request(StoredArtifact, [StoredModelArtifactRequest(ADDRESS, reference)])
    assert (f"m:m: model_artifact: {registry.host}/models/text: manifest sha256:{'0' * 64} not found (check the "
            "reference and the repository)") in str(caught.value)


def test_with_the_model_directory_the_weights_are_written_once_as_their_image_layer(
        rule_runner: RuleRunner, registry, tmp_path: Path) -> None:  # noqa: F811
    digest, weights, _ = _artifact(Registry(registry.host, load_docker_config=False, retry=FAST_RETRY))
    reference = f"{registry.host}/models/text@{digest}"
    stored = rule_runner.request(StoredArtifact, [StoredModelArtifactRequest(ADDRESS, reference, "models/text")])
    store = BlobStore(str(tmp_path / "store"))
    weights_file = next(f for f in stored.files if f.path == "model.onnx")
    assert weights_file.within and not store.has(weights_file.digest)
    with weights_file.open(store) as f:
        assert f.read() == weights


def _name_of_this_machine() -> str:
    """A name of this machine that resolves to loopback but is no loopback name to omi (it needs `insecure`)."""
    name = socket.gethostname()
    try:
        if not ipaddress.ip_address(socket.gethostbyname(name)).is_loopback:
            pytest.skip(f"{name} does not resolve to a loopback address here")
    except OSError:
        pytest.skip(f"{name} does not resolve here")
    return name


def test_plain_http_to_another_host_only_when_the_registry_is_marked_insecure(
        rule_runner: RuleRunner, registry, tmp_path: Path) -> None:  # noqa: F811
    digest, _, _ = _artifact(Registry(registry.host, load_docker_config=False, retry=FAST_RETRY))
    host = f"{_name_of_this_machine()}:{registry.host.rsplit(':', 1)[1]}"
    reference = f"{host}/models/text@{digest}"
    with pytest.raises(Exception) as caught:
        rule_runner.request(StoredArtifact, [StoredModelArtifactRequest(ADDRESS, reference)])
    assert f"m:m: model_artifact: {host}/models/text" in str(caught.value)
    rule_runner.set_options([f"--omi-blob-store={tmp_path / 'store'}",
                             f"--omi-registries={{'mirror': {{'address': '{host}', 'insecure': True}}}}"])
    assert rule_runner.request(StoredArtifact, [StoredModelArtifactRequest(ADDRESS, reference)]).manifest.digest == digest
