"""The check goal's rules with real Pants (RuleRunner): every target gets its own result, whatever broke another.

The per-target check (static checker, image build, smoke test) is the end-to-end suite's; a stand-in rule plays it
here, failing in the ways a real one can (a violation, an exception from deep in a build) on chosen targets.
"""

from __future__ import annotations

import pytest
from pants.core.goals.check import CheckResults
from pants.engine.addresses import Address
from pants.engine.rules import rule
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.goals import check
from omi_plugin.goals.check import OmiCheckRequest, OmiTargetCheck, OmiTargetCheckResult, one_line_error
from omi_plugin.goals.package import OmiModelFieldSet
from omi_plugin.target_types import OmiModelTarget


class DeepFailure(Exception):
    pass


@rule
async def stand_in_target_check(request: OmiTargetCheck) -> OmiTargetCheckResult:
    name = request.field_set.address.target_name
    if name == "crashes":
        raise DeepFailure("Traceback (most recent call last):\n  ...\nValueError: layer tool exited 1")
    if name == "names-itself":
        raise DeepFailure(f"{request.field_set.address}: m/BUILD: repository: 'A' is not valid (use lowercase)")
    if name == "violates":
        return OmiTargetCheckResult(1, "m:violates: m/model.yaml: run_id: is required (add it)\n")
    return OmiTargetCheckResult(0, "omi check: OK, 0 violations\n")


@pytest.fixture
def rule_runner() -> RuleRunner:
    runner = RuleRunner(
        rules=[check.guarded_target_check, check.check_omi, stand_in_target_check,
               QueryRule(CheckResults, [OmiCheckRequest])],
        target_types=[OmiModelTarget],
    )
    runner.write_files({"m/model.yaml": "", "m/BUILD": "".join(
        f'omi_model(name="{n}")\n' for n in ("ok", "crashes", "names-itself", "violates"))})
    return runner


def test_each_target_is_its_own_partition_and_a_crash_is_one_line(rule_runner: RuleRunner) -> None:
    names = ("ok", "crashes", "names-itself", "violates")
    field_sets = tuple(OmiModelFieldSet.create(rule_runner.get_target(Address("m", target_name=n))) for n in names)
    results = rule_runner.request(CheckResults, [OmiCheckRequest(field_sets)])
    assert results.checker_name == "omi"
    by_target = {r.partition_description: (r.exit_code, r.stdout) for r in results.results}
    assert by_target == {
        "m:ok": (0, "omi check: OK, 0 violations\n"),
        "m:crashes": (1, "m:crashes: check: ValueError: layer tool exited 1\n"),
        "m:names-itself": (1, "m:names-itself: m/BUILD: repository: 'A' is not valid (use lowercase)\n"),
        "m:violates": (1, "m:violates: m/model.yaml: run_id: is required (add it)\n"),
    }


def test_one_line_error_keeps_a_message_that_names_its_target() -> None:
    address = Address("m", target_name="t")
    assert one_line_error(address, ValueError("m:t: m/BUILD: x: bad (fix)"), "package") == "m:t: m/BUILD: x: bad (fix)"
    assert one_line_error(address, ValueError("a\nb\n  last words "), "package") == "m:t: package: last words"
    assert one_line_error(address, ValueError(""), "check") == "m:t: check: ValueError"
