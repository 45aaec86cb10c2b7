"""Bad input to `pants package` and `pants check`: one line naming target, file and field, no traceback, nothing
written, and a broken target never breaks another.

Every case test writes only its own directory under `bad/` and removes it afterwards, so the one daemon the module
shares sees exactly one broken target at a time: what a test asserts cannot depend on which other error the
engine happens to reach first. The monorepo tests then put many broken targets side by side on purpose.
"""

from __future__ import annotations

import json
import shutil
from typing import Dict, Iterator, Tuple

import pytest
from conftest import Clone

from omi_contract import formats

MODEL_YAML = """name: broken
version: "1"
run_id: run-1
format: sklearn
files: [model.joblib]
"""
BUILD = 'omi_model(name="broken", model_files=["*.joblib"])\n'


def _build(**fields: str) -> str:
    extra = "".join(f", {k}={v}" for k, v in fields.items())
    return f'omi_model(name="broken", model_files=["*.joblib"]{extra})\n'


def _yaml(old: str, new: str) -> str:
    assert old in MODEL_YAML
    return MODEL_YAML.replace(old, new)


def _alias_bomb() -> str:
    lines = [MODEL_YAML.rstrip("\n"), 'description: "x"', "resources: {}", "l0: &l0 [a, a, a, a, a, a, a, a, a, a]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 7)]
    return "\n".join(lines) + "\n"


# case -> (model.yaml, BUILD, the line `pants package` must print). Files are written as bytes where it matters.
FILE = "bad/{case}/model.yaml"
BUILD_FILE = "bad/{case}/BUILD"
CASES: Dict[str, Tuple[object, str, str]] = {
    # model.yaml content
    "malformed-yaml": (MODEL_YAML + "inputs: [\n", BUILD, f"{FILE}: line 7, column 1: malformed YAML"),
    "schema": (_yaml("format: sklearn", "format: tensorflow"), BUILD,
               f"{FILE}: format: 'tensorflow' is not allowed (use one of: {', '.join(formats.NAMES)})"),
    "missing-file": (_yaml("[model.joblib]", "[model.joblib, weights.bin]"), BUILD,
                     f"{FILE}: files[1]: model file 'weights.bin' is not provided"),
    "latest": (_yaml("run-1", "latest"), BUILD, f"{FILE}: run_id: 'latest' is not allowed as a tag"),
    "invalid-tag": (_yaml("run-1", "'-run/1'"), BUILD, f"{FILE}: run_id: '-run/1' is not a valid OCI tag"),
    "unknown-interface": (MODEL_YAML + "interfaces: [kfserving.v2, triton.v2]\n", BUILD,
                          f"{FILE}: interfaces[1]: 'triton.v2' is not allowed"),
    "empty-model": (MODEL_YAML, BUILD, "bad/empty-model/model.joblib: files[0]: model file is empty"),
    # keys YAML lets repeat, the last one silently winning
    "repeated-run-id": (MODEL_YAML + "run_id: run-2\n", BUILD,
                        f"{FILE}: line 6, column 1: key 'run_id' is repeated (first at line 3, column 1)"),
    "repeated-format": (MODEL_YAML + "format: onnx\n", BUILD, f"{FILE}: line 6, column 1: key 'format' is repeated"),
    "repeated-nested-key": (MODEL_YAML + "inputs: [{name: x, datatype: FP32, shape: [-1], datatype: INT64}]\n", BUILD,
                            f"{FILE}: line 6, column 49: key 'datatype' is repeated"),
    # anchors and aliases expanding far beyond the file
    "alias-bomb": (_alias_bomb(), BUILD, f"{FILE}: line 1, column 1: anchors and aliases expand to more than"),
    "self-alias": (MODEL_YAML + "authors: &a [x, *a]\n", BUILD, f"{FILE}: line 6, column 10: an alias refers to a node"),
    # other encodings than UTF-8
    "latin-1": ((MODEL_YAML + "description: modèle entraîné\n").encode("latin-1"), BUILD,
                f"{FILE}: line 6: is not UTF-8 (byte 0xe8 at offset"),
    "utf-16": (MODEL_YAML.encode("utf-16"), BUILD, f"{FILE}: line 1: is not UTF-8 (byte 0xff at offset 0)"),
    "cp1252-quote": ((MODEL_YAML + "description: the “best” model\n").encode("cp1252"), BUILD,
                     f"{FILE}: line 6: is not UTF-8 (byte 0x93"),
    # characters a grammar with a lax `$` would let through
    "run-id-block-newline": (_yaml("run_id: run-1\n", "run_id: |\n  run-1\n"), BUILD,
                             f"{FILE}: run_id: 'run-1\\n' contains the control character '\\n'"),
    "name-escaped-newline": (_yaml("name: broken", 'name: "broken\\n"'), BUILD,
                             f"{FILE}: name: 'broken\\n' contains the control character '\\n'"),
    "version-tab": (_yaml('version: "1"', 'version: "1\\t"'), BUILD,
                    f"{FILE}: version: '1\\t' contains the control character '\\t'"),
    "file-newline": (_yaml("[model.joblib]", '["model.joblib\\n"]'), BUILD,
                     f"{FILE}: files[0]: 'model.joblib\\n' contains the control character"),
    # values that used to surface as raw engine errors
    "run-id-from-outside": (_yaml("run_id: run-1", "run_id_from: ../../../../etc/MLmodel"), BUILD,
                            f"{FILE}: run_id_from: '../../../../etc/MLmodel' points outside the repository"),
    "run-id-from-absolute": (_yaml("run_id: run-1", "run_id_from: /etc/MLmodel"), BUILD,
                             f"{FILE}: run_id_from: '/etc/MLmodel' points outside the repository"),
    "sample-timestamp-tag": (MODEL_YAML + "samples: [{inputs: {input: [!!timestamp 2024-01-01]}}]\n", BUILD,
                             f"{FILE}: samples[0].inputs.input[0]: a YAML date is not a JSON value"),
    "sample-nan": (MODEL_YAML + "samples: [{inputs: {input: [.nan]}}]\n", BUILD,
                   f"{FILE}: samples[0].inputs.input[0]: nan is not a JSON number"),
    "binary-value": (MODEL_YAML + "description: !!binary aGVsbG8=\n", BUILD,
                     f"{FILE}: description: a YAML bytes is not a JSON value"),
    # BUILD fields: accepted when BUILD files are parsed, refused for this target by the rules
    "latest-extra-tag": (MODEL_YAML, _build(extra_tags='["latest"]'),
                         f"{BUILD_FILE}: extra_tags: 'latest' is not allowed"),
    "extra-tag-newline": (MODEL_YAML, _build(extra_tags='["v1\\n"]'),
                          f"{BUILD_FILE}: extra_tags: 'v1\\n' is not a valid OCI tag"),
    "extra-tag-grammar": (MODEL_YAML, _build(extra_tags='[".hidden"]'),
                          f"{BUILD_FILE}: extra_tags: '.hidden' is not a valid OCI tag"),
    "repository-uppercase": (MODEL_YAML, _build(repository='"Team/Digits"'),
                             f"{BUILD_FILE}: repository: 'Team/Digits' is not a valid repository name"),
    "repository-newline": (MODEL_YAML, _build(repository='"team/digits\\n"'),
                           f"{BUILD_FILE}: repository: 'team/digits\\n' is not a valid repository name"),
    "port-range": (MODEL_YAML, _build(http_port='"99999"'), f"{BUILD_FILE}: http_port: '99999' is not a TCP port"),
    "port-zero-int": (MODEL_YAML, _build(http_port="0"), f"{BUILD_FILE}: http_port: '0' is not a TCP port"),
    "port-words": (MODEL_YAML, _build(http_port='"http"'), f"{BUILD_FILE}: http_port: 'http' is not a TCP port"),
    "registry-grammar": (MODEL_YAML, _build(registries='["registry.example.com/team"]'),
                         f"{BUILD_FILE}: registries: 'registry.example.com/team' is not a registry host"),
    "omi-spec": (MODEL_YAML, _build(omi_spec='"2.0"'),
                 f"{BUILD_FILE}: omi_spec: '2.0' is not an OMI spec version (use one of: 1.0, 1.1)"),
    "output-path-escapes": (MODEL_YAML, _build(output_path='"../../outside"'),
                            f"{BUILD_FILE}: output_path: '../../outside' is not a path inside the dist directory"),
    "output-path-absolute": (MODEL_YAML, _build(output_path='"/tmp/omi-out"'),
                             f"{BUILD_FILE}: output_path: '/tmp/omi-out' is not a path inside the dist directory"),
    "output-path-shared": (MODEL_YAML, _build(output_path='"same"') + _build(output_path='"same"').replace(
                               'name="broken"', 'name="other"'),
                           f"{BUILD_FILE}: output_path: 'same' is also the output of bad/output-path-shared:other"),
    "base-image-missing-name": (MODEL_YAML, _build(base_image='":nope"'),
                                f"{BUILD_FILE}: base_image: ':nope' does not resolve to a target"),
    "base-image-missing-dir": (MODEL_YAML, _build(base_image='"//no/such/dir:base"'),
                               f"{BUILD_FILE}: base_image: '//no/such/dir:base' does not resolve to a target"),
    "no-model-yaml": (None, BUILD, f"{BUILD_FILE}: model_yaml: must have 1 file, but it had 0 files"),
    "model-yaml-elsewhere": (MODEL_YAML, _build(model_yaml='"meta/model.yml"'),
                             f"{BUILD_FILE}: model_yaml: must have 1 file, but it had 0 files"),
    # model files that are not what the format loads, judged from their first bytes without loading them
    "text-as-xgboost": (_yaml("format: sklearn", "format: xgboost"), BUILD,
                        "bad/text-as-xgboost/model.joblib: format xgboost: is not an XGBoost model (expected a Booster "
                        "saved with save_model as JSON or UBJSON): it is a text file starting 'not really a model'"),
    "lfs-pointer": (MODEL_YAML, BUILD, "bad/lfs-pointer/model.joblib: format sklearn: is not a scikit-learn model: it "
                    "is a git LFS pointer, not the file itself (run `git lfs pull`, or fetch the weights another way)"),
    "base-image-unpinned": (MODEL_YAML, 'omi_oci_base(name="base", image="registry.example.com/python:3.11")\n'
                                        + _build(base_image='":base"'),
                            "bad/base-image-unpinned:base: bad/base-image-unpinned/BUILD: image: "
                            "'registry.example.com/python:3.11' is not pinned by digest"),
}


MODEL_BYTES = {"empty-model": b"", "lfs-pointer": b"version https://git-lfs.github.com/spec/v1\noid sha256:"
               + b"0" * 64 + b"\nsize 52000\n"}


def _write_case(clone: Clone, case: str, directory: str = "bad") -> None:
    model_yaml, build, _ = CASES[case]
    root = clone.root / directory / case
    root.mkdir(parents=True)
    if model_yaml is not None:
        (root / "model.yaml").write_bytes(model_yaml if isinstance(model_yaml, bytes) else str(model_yaml).encode())
    (root / "BUILD").write_text(build)
    (root / "model.joblib").write_bytes(MODEL_BYTES.get(case, b"not really a model"))


@pytest.fixture(scope="module")
def bad_clone(clone_factory) -> Clone:
    return clone_factory("clone-bad-input", pantsd=True)


@pytest.fixture
def only_case(bad_clone: Clone, request) -> Iterator[str]:
    """The test's own case, alone under `bad/`, removed again afterwards."""
    case = request.param
    _write_case(bad_clone, case)
    try:
        yield case
    finally:
        shutil.rmtree(bad_clone.root / "bad")


def _assert_one_line(output: str, expected: str) -> None:
    lines = [line for line in output.splitlines() if expected in line]
    assert lines, f"expected {expected!r} in:\n{output[-3000:]}"
    assert "Traceback (most recent call last)" not in output
    for raw in ("IntrinsicError", "TypeError", "ResolveError", "InvalidFieldException"):
        assert raw not in output, f"raw engine error {raw} in:\n{output[-3000:]}"


@pytest.mark.parametrize("only_case", sorted(CASES), indirect=True)
def test_one_line_error_and_no_artifact(bad_clone: Clone, only_case: str) -> None:
    case = only_case
    result = bad_clone.pants("package", f"bad/{case}:broken", check=False)
    assert result.returncode != 0
    _assert_one_line(result.output, _case_line(case))
    assert not (bad_clone.root / "dist" / f"bad.{case}").exists()
    assert not list((bad_clone.root / "dist").glob("**/same.*"))


@pytest.mark.parametrize("only_case", ["latest-extra-tag", "port-range", "repeated-run-id"], indirect=True)
@pytest.mark.parametrize("goal", ["publish", "run", "check"])
def test_every_goal_refuses_with_the_same_line(bad_clone: Clone, only_case: str, goal: str) -> None:
    result = bad_clone.pants(goal, f"bad/{only_case}:broken", check=False, timeout=300)
    assert result.returncode != 0
    _assert_one_line(result.output, _case_line(only_case))


def test_a_model_that_does_not_load_is_reported_once_by_check(bad_clone: Clone) -> None:
    """A file of no known kind passes the package-time look at its first bytes; the library then refuses it, and
    `pants check` says so once for all three interfaces, with no "OK" above it."""
    root = bad_clone.root / "bad" / "unloadable"
    root.mkdir(parents=True)
    try:
        (root / "model.yaml").write_text(MODEL_YAML + "interfaces: [kfserving.v1, kfserving.v2, modzy.v2]\n")
        (root / "BUILD").write_text(BUILD)
        (root / "model.joblib").write_bytes(b"\x00\x01garbage" * 8)
        result = bad_clone.pants("check", "bad/unloadable:broken", check=False, timeout=600)
    finally:
        shutil.rmtree(bad_clone.root / "bad")
    assert result.returncode != 0
    lines = [line for line in result.output.splitlines() if "could not load it" in line]
    assert lines == ["bad/unloadable:broken: model broken: load: model.joblib: format sklearn: scikit-learn could not "
                     "load it (binary data of no known model format, first bytes 00 01 67 61 72 62 61 67): KeyError: 0 "
                     "(fix the model file or model.yaml, then package again)"], result.output[-3000:]
    assert "omi check: OK" not in result.output and "Traceback" not in result.output


TEXT_EXAMPLE = "examples/text_embedding"
# case -> (what to change in a copy of the text example: (model.yaml old, new) or a file to replace, the line)
TEXT_CASES: Dict[str, Tuple[Tuple[str, str], str]] = {
    "text-no-task": (("task: text-embedding\n", ""),
                     "model.yaml: task: is missing (set `task:` to text-embedding or text-classification)"),
    "text-dimension": (("shape: [-1, 384]", "shape: [-1, 768]"),
                       "model.yaml: outputs[0].shape: says 768 dimensions; the model's hidden_size is 384 (declare "
                       "shape [-1, 384])"),
    "text-no-tokenizer": (("", "model/tokenizer.json"), "model.yaml: files: no tokenizer.json among the model files"),
    "text-graph-inputs": (("", "model/model.onnx"), "model.yaml: files: model/model.onnx takes inputs ['input_0']; "
                          "the tokenizer gives input_ids, attention_mask, token_type_ids"),
    "text-config": (("", "model/config.json"), "bad/text-config/model/config.json: (file): is not JSON"),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_broken_text_model_directories_are_one_line_each(bad_clone: Clone, case: str) -> None:
    """The huggingface format's package-time checks, on a copy of the text example: read without loading the model
    (the graph's inputs from its protobuf, the config files as JSON)."""
    (old, new), expected = TEXT_CASES[case]
    root = bad_clone.root / "bad" / case
    shutil.copytree(bad_clone.root / TEXT_EXAMPLE, root)
    try:
        model_yaml = (root / "model.yaml").read_text(encoding="utf-8")
        if old:
            assert old in model_yaml
            (root / "model.yaml").write_text(model_yaml.replace(old, new), encoding="utf-8")
        elif case == "text-no-tokenizer":
            (root / new).unlink()
        elif case == "text-graph-inputs":
            shutil.copy(bad_clone.root / "examples/digits_onnx/model.onnx", root / new)
        else:
            (root / new).write_text("{not json")
        (root / "BUILD").write_text('omi_model(name="broken", model_files=["model/**"])\n')
        packaged = bad_clone.pants("package", f"bad/{case}:broken", check=False)
        checked = bad_clone.pants("check", f"bad/{case}:broken", check=False)
    finally:
        shutil.rmtree(bad_clone.root / "bad")
    line = expected if expected.startswith("bad/") else f"bad/{case}/{expected}"
    for result in (packaged, checked):  # `pants check` says it as a static rule (OMI115, OMI116), in the same words
        assert result.returncode != 0
        _assert_one_line(result.output, f"bad/{case}:broken: {line}")
    assert "omi check: 1 violation (OMI11" in checked.output
    assert not (bad_clone.root / "dist" / f"bad.{case}").exists()


def _case_line(case: str, directory: str = "bad") -> str:
    message = CASES[case][2].replace("bad/{case}", f"{directory}/{case}").replace("{case}", case)
    prefix = f"{directory}/{case}:base: " if message.startswith(f"{directory}/{case}:base: ") else ""
    return message if prefix else f"{directory}/{case}:broken: {message}"


def test_symlinks_out_of_the_repository_break_only_their_target(bad_clone: Clone, tmp_path) -> None:
    """Pants fails every goal on a symlink out of the build root; `./pants` hides such links from it."""
    outside = tmp_path / "weights.bin"
    outside.write_text("outside the repository")
    root = bad_clone.root / "bad" / "symlink-out"
    try:
        root.mkdir(parents=True)
        (root / "model.yaml").write_text(MODEL_YAML)
        (root / "BUILD").write_text(BUILD)
        (root / "model.joblib").symlink_to(outside)
        (bad_clone.root / "bad" / "docs").mkdir()
        (bad_clone.root / "bad" / "docs" / "null").symlink_to("/dev/null")
        (bad_clone.root / "bad" / "docs" / "up").symlink_to("../../../../../..")
        result = bad_clone.pants("package", "bad/symlink-out:broken", check=False)
        assert result.returncode != 0
        expected = (f"bad/symlink-out:broken: bad/symlink-out/model.joblib: model_files: is a symlink to {outside}, "
                    "outside the repository")
        _assert_one_line(result.output, expected)
        checked = bad_clone.pants("check", "bad::", check=False)
        assert checked.returncode != 0
        _assert_one_line(checked.output, expected)
        good = bad_clone.pants("package", "examples/digits:digits", check=False)
        assert good.returncode == 0, good.output[-3000:]
    finally:
        shutil.rmtree(bad_clone.root / "bad", ignore_errors=True)


def test_stale_debian_lock_says_how_to_refresh(bad_clone: Clone) -> None:
    lock = json.loads((bad_clone.root / "omi_plugin/base_images/locks/python3.11-bookworm.lock.json").read_text())
    gone = lock["packages"][0]
    gone["url"] = gone["url"].rsplit("/", 1)[0] + f"/{gone['name']}_0.0-gone_amd64.deb"
    try:
        bad_clone.write("bad/stale-lock/stale.lock.json", json.dumps(lock, indent=2))
        bad_clone.write("bad/stale-lock/model.yaml", MODEL_YAML)
        bad_clone.write("bad/stale-lock/model.joblib", "not really a model")
        bad_clone.write("bad/stale-lock/BUILD", 'omi_debian_base(name="stale", lockfile="stale.lock.json")\n'
                                                'omi_model(name="broken", model_files=["*.joblib"], base_image=":stale")\n')
        result = bad_clone.pants("package", "bad/stale-lock:broken", check=False)
        checked = bad_clone.pants("check", "bad/stale-lock:broken", check=False)
    finally:
        shutil.rmtree(bad_clone.root / "bad", ignore_errors=True)
    assert result.returncode != 0
    expected = (f"bad/stale-lock:stale: bad/stale-lock/stale.lock.json: the pinned Debian package {gone['name']} "
                f"{gone['version']} ({gone['url']}) is no longer on the mirror")
    assert expected in result.output, result.output[-3000:]
    assert "python -m omi_plugin.base_images.generate_lock --refresh bad/stale-lock/stale.lock.json" in result.output
    assert "Traceback (most recent call last)" not in result.output
    # model.yaml is fine, the image is not: check says both, never "OK" under the failure.
    assert checked.returncode != 0
    assert expected in checked.output and "omi check: the image cannot be built" in checked.output, checked.output[-3000:]
    assert "omi check: OK" not in checked.output


# A monorepo with many differently broken targets next to the good examples.
MONOREPO_CASES = ("latest-extra-tag", "port-range", "repository-uppercase", "omi-spec", "output-path-escapes",
                  "base-image-missing-name", "repeated-run-id", "latin-1", "run-id-block-newline", "schema",
                  "run-id-from-outside")


@pytest.fixture(scope="module")
def monorepo(bad_clone: Clone) -> Iterator[Clone]:
    for case in MONOREPO_CASES:
        _write_case(bad_clone, case, directory="mono")
    try:
        yield bad_clone
    finally:
        shutil.rmtree(bad_clone.root / "mono")


def test_check_reports_every_broken_target_in_a_monorepo(monorepo: Clone) -> None:
    result = monorepo.pants("check", "mono::", check=False)
    assert result.returncode != 0
    for case in MONOREPO_CASES:
        _assert_one_line(result.output, _case_line(case, directory="mono"))
    assert "omi check: OK, 0 violations" not in result.output, result.output[-3000:]


def test_good_target_packages_next_to_broken_ones(monorepo: Clone) -> None:
    result = monorepo.pants("package", "examples/digits:digits", check=False)
    assert result.returncode == 0, result.output[-3000:]
    assert (monorepo.root / "dist/examples.digits/digits.omi.json").is_file()
