"""The field rules with real Pants (RuleRunner): a bad BUILD value is one line for its own target, nobody else's."""

from __future__ import annotations

import json
from typing import Tuple

import pytest
from pants.engine.addresses import Address
from pants.engine.target import AllTargets
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.target_types import OmiDebianBaseTarget, OmiModelTarget, OmiOciArchiveBaseTarget, OmiOciBaseTarget
from omi_plugin.util_rules import target_fields
from omi_plugin.util_rules.target_fields import (
    ESCAPING_LINKS_ENV,
    OmiFieldError,
    TargetFieldProblems,
    TargetFieldsRequest,
)

BASE = 'omi_debian_base(name="base", lockfile="base.lock.json")\n'


@pytest.fixture
def rule_runner() -> RuleRunner:
    runner = RuleRunner(
        rules=[*target_fields.rules(), QueryRule(TargetFieldProblems, [TargetFieldsRequest]),
               QueryRule(AllTargets, [])],
        target_types=[OmiModelTarget, OmiDebianBaseTarget, OmiOciBaseTarget, OmiOciArchiveBaseTarget],
    )
    runner.write_files({"base/BUILD": BASE, "base/base.lock.json": "{}"})
    runner.set_options(["--omi-default-base-image=base:base"])
    return runner


def _problems(runner: RuleRunner, path: str, name: str) -> Tuple[str, ...]:
    return runner.request(TargetFieldProblems, [TargetFieldsRequest(Address(path, target_name=name))]).lines


def _model(name: str, **fields: str) -> str:
    extra = "".join(f", {k}={v}" for k, v in fields.items())
    return f'omi_model(name="{name}", model_files=["*.joblib"]{extra})\n'


def test_sound_fields_have_no_problems(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"m/BUILD": _model("m", http_port='"9000"', extra_tags='["v1"]', repository='"team/m"')})
    assert _problems(rule_runner, "m", "m") == ()


def test_an_integer_port_is_what_users_write(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"m/BUILD": _model("m", http_port="9000")})
    assert _problems(rule_runner, "m", "m") == ()


def test_every_bad_field_is_one_line_naming_target_build_file_and_field(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"m/BUILD": _model("m", extra_tags='["latest"]', http_port='"99999"', omi_spec='"3"',
                                               repository='"Team/M"', output_path='"../up"', base_image='":nope"')})
    lines = _problems(rule_runner, "m", "m")
    assert lines[:5] == (
        "m:m: m/BUILD: repository: 'Team/M' is not a valid repository name (use lowercase path components like "
        "`team/model-name`)",
        "m:m: m/BUILD: extra_tags: 'latest' is not allowed (OMI images are tagged with the model's run id; name a "
        "version instead)",
        "m:m: m/BUILD: http_port: '99999' is not a TCP port (use 1-65535)",
        "m:m: m/BUILD: omi_spec: '3' is not an OMI spec version (use one of: 1.0, 1.1)",
        "m:m: m/BUILD: output_path: '../up' is not a path inside the dist directory (give a relative path like "
        "`models/digits`, without `..`)",
    )
    assert lines[5].startswith("m:m: m/BUILD: base_image: ':nope' does not resolve to a target")
    assert len(lines) == 6 and all("\n" not in line for line in lines)
    with pytest.raises(OmiFieldError, match="^m:m: m/BUILD: repository: "):
        TargetFieldProblems(lines).raise_first()


def test_a_bad_target_leaves_its_neighbours_alone(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"m/BUILD": _model("good") + _model("bad", extra_tags='["latest"]', http_port='"0"')})
    assert {str(t.address) for t in rule_runner.request(AllTargets, [])} >= {"m:good", "m:bad"}
    assert _problems(rule_runner, "m", "good") == ()
    assert len(_problems(rule_runner, "m", "bad")) == 2


def test_two_models_writing_one_output(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"a/BUILD": _model("m", output_path='"shared"'),
                             "b/BUILD": _model("m", output_path='"shared"'),
                             "c/BUILD": _model("m", output_path='"own"')})
    assert _problems(rule_runner, "a", "m") == (
        "a:m: a/BUILD: output_path: 'shared' is also the output of b:m (give each omi_model its own output_path)",)
    assert _problems(rule_runner, "c", "m") == ()


def test_unpinned_oci_base(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"b/BUILD": 'omi_oci_base(name="b", image="registry.example.com/py:3.11")\n'
                                        'omi_oci_base(name="ok", image="r.example.com/py@sha256:' + "a" * 64 + '")\n'})
    assert _problems(rule_runner, "b", "b") == (
        "b:b: b/BUILD: image: 'registry.example.com/py:3.11' is not pinned by digest (pin the base by digest: "
        "registry/repo@sha256:<64 hex digits>; `skopeo inspect docker://registry/repo:tag` prints it)",)
    assert _problems(rule_runner, "b", "ok") == ()


def test_a_model_file_hidden_as_a_symlink_out_of_the_repository(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"m/BUILD": _model("m"), "m/other.bin": "x"})
    links = {"m/model.joblib": "/elsewhere/model.joblib", "docs/null": "/dev/null"}
    rule_runner.set_options(["--omi-default-base-image=base:base"], env={ESCAPING_LINKS_ENV: json.dumps(links)})
    assert _problems(rule_runner, "m", "m") == (
        "m:m: m/model.joblib: model_files: is a symlink to /elsewhere/model.joblib, outside the repository (Pants "
        "cannot read the repository with it, so `./pants` hides it from Pants) (copy the file into the repository, "
        "or provide it with an `http_source` pinned by sha256)",)


def test_platforms_omi_does_not_build_and_model_artifacts_by_tag(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"m/BUILD": _model("typo", platforms='["linux/s390x"]')
                             + _model("two", platforms='["linux/amd64", "linux/arm64"]')
                             + _model("twice", platforms='["linux/arm64", "linux/aarch64"]')
                             + _model("none", platforms='[]')
                             + _model("arm", platforms='["linux/arm64/v8"]')
                             + _model("tagged", model_artifact='"registry.example.com/ml/m:v1"')})
    assert _problems(rule_runner, "m", "typo") == (
        "m:typo: m/BUILD: platforms: 'linux/s390x' is not a platform omi builds images for (it builds linux/amd64, "
        "linux/arm64) (use linux/amd64 or linux/arm64)",)
    assert _problems(rule_runner, "m", "two") == ()
    assert _problems(rule_runner, "m", "twice") == (
        "m:twice: m/BUILD: platforms: names linux/arm64 twice (name each platform once)",)
    assert _problems(rule_runner, "m", "none") == (
        "m:none: m/BUILD: platforms: names no platform (name linux/amd64, linux/arm64 or both, or leave the field "
        "out)",)
    assert _problems(rule_runner, "m", "arm") == ()
    assert _problems(rule_runner, "m", "tagged") == (
        "m:tagged: m/BUILD: model_artifact: 'registry.example.com/ml/m:v1' is not pinned by digest (pin the model "
        "artifact by digest: registry/repo@sha256:<64 hex digits>; `skopeo inspect docker://registry/repo:tag` "
        "prints it)",
        "m:tagged: m/BUILD: model_artifact: is set together with model_files (take the model files from the "
        "artifact or from the repository, not both: remove one of the two fields)")
