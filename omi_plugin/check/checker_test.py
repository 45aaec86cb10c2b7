"""The checker as `pants check` uses it: the library API, the CLI, the shipped example, crash containment."""

import json
import os
from dataclasses import dataclass

import pytest

from omi_plugin.check import __main__ as cli
from omi_plugin.check import checker
from omi_plugin.check.catalog import RULES, markdown_table
from omi_plugin.check.checker import CheckRequest, run_checks
from omi_testutil import check_layouts as testutil

DIST = os.path.join(testutil.REPO_ROOT, "dist", "examples.digits")
EXAMPLE_YAML = os.path.join(testutil.REPO_ROOT, "examples", "digits", "model.yaml")


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    return testutil.build_layouts(str(tmp_path_factory.mktemp("layouts")))


@dataclass
class _Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def _cli(capsys):
    """The CLI's main(), in process: a subprocess would not see the test's third-party packages under Pants."""

    def run(*args: str) -> _Result:
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return _Result(code, captured.out, captured.err)

    return run


def _write_json(tmp_path, name, value) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return str(path)


@pytest.mark.skipif(not os.path.isdir(DIST) or not os.path.isfile(EXAMPLE_YAML),
                    reason="dist/examples.digits not built")
@pytest.mark.parametrize("via_cli", [False, True])
def test_packaged_example_is_compliant(tmp_path, via_cli: bool, _cli) -> None:
    model_dir = os.path.dirname(EXAMPLE_YAML)
    files = {"model.joblib": os.path.getsize(os.path.join(model_dir, "model.joblib"))}
    layout, modelpack = os.path.join(DIST, "digits.oci"), os.path.join(DIST, "digits.modelpack.oci")
    if not via_cli:
        assert run_checks(CheckRequest("examples/digits:digits", EXAMPLE_YAML, model_files=files, layout=layout,
                                       modelpack_layout=modelpack, repository="examples/digits")) == []
        return
    result = _cli("--target", "examples/digits:digits", "--model-yaml", EXAMPLE_YAML, "--model-files-json",
                  _write_json(tmp_path, "files.json", files), "--layout", layout, "--modelpack-layout", modelpack,
                  "--repository", "examples/digits")
    assert (result.returncode, result.stdout, result.stderr) == (0, "omi check: OK, 0 violations\n", "")


def test_cli_reports_every_violation_and_exits_1(tmp_path, layouts, _cli) -> None:
    model_yaml = tmp_path / "model.yaml"
    model_yaml.write_text(testutil.MODEL_YAML.replace("run_id: tiny-run-1", "run_id: latest"))
    result = _cli("--target", "t:t", "--model-yaml", str(model_yaml), "--model-files-json",
                  _write_json(tmp_path, "files.json", {"model.joblib": 0}), "--layout", layouts[0],
                  "--layout-name", "img", "--rule-ids")
    lines = result.stdout.splitlines()
    assert result.returncode == 1 and result.stderr == ""
    assert lines[0] == f"t:t: {model_yaml}: files[0]: 'model.joblib' is empty (0 bytes) (point at the real model " \
                       f"file; an empty file cannot be loaded) [OMI103]"
    assert lines[-1] == "omi check: 5 violations (OMI102 x1, OMI103 x1, OMI109 x1, OMI216 x1, OMI220 x1)"
    assert "Traceback" not in result.stdout + result.stderr


def test_cli_without_a_model_yaml_or_layout_never_tracebacks(tmp_path, _cli) -> None:
    result = _cli("--target", "t:t", "--model-yaml", str(tmp_path / "absent.yaml"), "--layout",
                  str(tmp_path / "absent.oci"))
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"t:t: {tmp_path / 'absent.yaml'}: (file): cannot be read: No such file or directory (pass the path of the "
        f"target's model.yaml)",
        f"t:t: {tmp_path / 'absent.oci'}/oci-layout: (file): is missing: not an OCI image layout (rebuild the layout)",
        f"t:t: {tmp_path / 'absent.oci'}: (directory): does not exist (build the target first (`pants package`))",
        "omi check: 3 violations (OMI100 x1, OMI200 x2)"]


def test_cli_usage_errors_exit_2(tmp_path, _cli) -> None:
    bad = tmp_path / "files.json"
    bad.write_text("[1]")
    result = _cli("--target", "t:t", "--model-yaml", "m.yaml", "--model-files-json", str(bad))
    assert result.returncode == 2 and result.stderr == f"omi check: error: {bad}: model files must be a JSON dict\n"


def test_cli_lists_rules(_cli) -> None:
    result = _cli("--list-rules")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == len(RULES)
    assert markdown_table().count("\n") == len(RULES) + 1


def test_a_crashing_rule_group_becomes_one_violation_and_the_others_still_run(monkeypatch, layouts) -> None:
    def boom(*args, **kwargs):
        raise KeyError("config")

    monkeypatch.setattr(checker, "check_image", boom)
    violations = run_checks(CheckRequest("t:t", "m/model.yaml", testutil.MODEL_YAML.replace("1.0.0", "1"),
                                         layout=layouts[0], layout_name="img"))
    assert [str(v) for v in violations] == [
        "t:t: m/model.yaml: version: expected string, got int (write a string here)",
        "t:t: img: (checker): image rules crashed: KeyError: 'config' (this is a bug in omi_plugin.check or an "
        "unreadable input: report it with this line)"]
    assert [v.rule for v in violations] == ["OMI101", "OMI900"]


def test_run_id_from_reads_the_mlmodel_next_to_model_yaml(tmp_path) -> None:
    (tmp_path / "MLmodel").write_text("run_id: latest\n")
    (tmp_path / "model.yaml").write_text(testutil.MODEL_YAML.replace("run_id: tiny-run-1", "run_id_from: MLmodel"))
    violations = run_checks(CheckRequest("t:t", str(tmp_path / "model.yaml")))
    assert [(v.rule, v.field) for v in violations] == [("OMI109", "run_id_from")]


def test_unknown_spec_version_is_reported() -> None:
    assert [v.rule for v in run_checks(CheckRequest("t:t", "m.yaml", "", spec_version="2.0"))] == ["OMI900"]


def test_a_directory_entry_is_checked_file_by_file() -> None:
    from omi_plugin.check.metadata_rules import MetadataInputs, check_metadata

    text = ("name: m\nversion: '1'\nrun_id: r1\nformat: custom\nhandler: h:H\n"
            "files: [snapshot, absent]\ninterfaces: [kfserving.v2, modzy.v2]\n")
    result = check_metadata("t:t", MetadataInputs("m/model.yaml", text,
                                                  model_files={"snapshot/a.bin": 3, "snapshot/b/c.json": 0}))
    assert [(v.rule, v.field) for v in result.violations] == [("OMI102", "files[1]")]
    assert result.expectations.files == ("snapshot/a.bin", "snapshot/b/c.json", "absent")
