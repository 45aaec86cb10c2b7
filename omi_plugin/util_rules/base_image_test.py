"""The base-image dispatch with real Pants (RuleRunner): each kind reaches its own rule, anything else is refused."""

from __future__ import annotations

import pytest
from pants.core.util_rules import adhoc_binaries, external_tool, system_binaries
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.target_types import OmiDebianBaseTarget, OmiModelTarget, OmiOciArchiveBaseTarget, OmiOciBaseTarget
from omi_plugin.util_rules import base_image, debian_base, layers, oci_base, sandbox_tools, target_fields
from omi_plugin.util_rules.base_image import BaseImage, BaseImageRequest
from omi_testutil import rules as testutil_rules


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[*base_image.rules(), *debian_base.rules(), *oci_base.rules(), *target_fields.rules(),
               *sandbox_tools.rules(), *testutil_rules.rules(), *layers.rules(), *adhoc_binaries.rules(),
               *system_binaries.rules(),
               *external_tool.rules(), QueryRule(BaseImage, [BaseImageRequest])],
        target_types=[OmiModelTarget, OmiDebianBaseTarget, OmiOciBaseTarget, OmiOciArchiveBaseTarget],
    )


def _error(runner: RuleRunner, address: Address) -> str:
    with pytest.raises(ExecutionError) as info:
        runner.request(BaseImage, [BaseImageRequest(address)])
    return str(info.value)


def test_a_target_that_is_no_base_kind_is_refused(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"m/BUILD": 'omi_model(name="m")\n', "m/model.yaml": ""})
    assert ("m:m: is a `omi_model`, not a base image (point base_image at an omi_debian_base, omi_oci_base or "
            "omi_oci_archive_base target)") in _error(rule_runner, Address("m", target_name="m"))


def test_an_oci_base_reaches_its_own_rule(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"b/BUILD": 'omi_oci_base(name="b", image="registry.example.com/py:3.11")\n'})
    assert "b:b: b/BUILD: image: 'registry.example.com/py:3.11' is not pinned by digest" in _error(
        rule_runner, Address("b", target_name="b"))


def test_a_debian_base_reaches_its_own_rule(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"d/BUILD": 'omi_debian_base(name="d", lockfile="lock.json")\n',
                             "d/lock.json": '{"not": "a lock"}'})
    assert "d:d: d/lock.json: lock_format is missing" in _error(rule_runner, Address("d", target_name="d"))

