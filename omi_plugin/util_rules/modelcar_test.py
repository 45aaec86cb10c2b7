"""The ModelCar rule with real Pants (RuleRunner): what cannot be linked, or a missing busybox lock, is one line."""

from __future__ import annotations

import pytest
from pants.core.util_rules import adhoc_binaries, external_tool, system_binaries
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.base_images.modelcar_layer import model_links
from omi_plugin.base_images.shipped_locks import MODELCAR_BUSYBOX, shipped_lock
from omi_plugin.oci.platforms import AMD64, ARM64, Platform
from omi_plugin.util_rules import debian_base, layers, modelcar, sandbox_tools
from omi_plugin.util_rules.modelcar import ModelCarLayer, ModelCarLayerRequest
from omi_testutil import rules as testutil_rules


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(rules=[*modelcar.rules(), *debian_base.rules(), *layers.rules(), *sandbox_tools.rules(), *testutil_rules.rules(),
                             *adhoc_binaries.rules(), *system_binaries.rules(), *external_tool.rules(),
                             QueryRule(ModelCarLayer, [ModelCarLayerRequest])])


def _error(runner: RuleRunner, *entries: str, platform: Platform = AMD64) -> str:
    request = ModelCarLayerRequest(Address("m", target_name="m"), "m/model.yaml", "digits", entries, platform)
    with pytest.raises(ExecutionError) as info:
        runner.request(ModelCarLayer, [request])
    return str(info.value)


def test_a_file_named_like_the_model_directory_cannot_be_linked(rule_runner: RuleRunner) -> None:
    assert ("m:m: m/model.yaml: files: files entry 'digits/weights.bin': its first path component 'digits' cannot "
            "be linked as /models/digits") in _error(rule_runner, "model.joblib", "digits/weights.bin")


def test_a_missing_busybox_lock_says_how_to_create_it(rule_runner: RuleRunner) -> None:
    rule_runner.set_options(["--omi-modelcar-lockfile=locks/none.lock.json"])
    assert ("m:m: modelcar: the busybox lock [omi].modelcar_lockfile = 'locks/none.lock.json' does not exist "
            "(create it: python -m omi_plugin.base_images.generate_lock") in _error(rule_runner, "model.joblib")


def test_a_busybox_lock_of_another_architecture_than_the_image_is_one_line(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"locks/busybox.lock.json": shipped_lock(MODELCAR_BUSYBOX).content.decode()})
    rule_runner.set_options(["--omi-modelcar-lockfile=locks/busybox.lock.json"])
    assert ("m:m: modelcar: the busybox lock [omi].modelcar_lockfile = 'locks/busybox.lock.json' is for amd64, and "
            "the image is linux/arm64 (unset the option for the locks omi ships, or build this target for amd64)"
            ) in _error(rule_runner, "model.joblib", platform=ARM64)


def test_links_are_relative_sorted_and_once_per_top_level_entry() -> None:
    links = model_links("m", ["model.joblib", "snapshot/a.bin", "snapshot/b.bin", "./tokenizer.json"])
    assert [(e.path, e.linkname) for e in links] == [
        ("models/model.joblib", "m/model.joblib"), ("models/snapshot", "m/snapshot"),
        ("models/tokenizer.json", "m/tokenizer.json")]
