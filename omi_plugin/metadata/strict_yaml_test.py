import pytest

from omi_plugin.metadata import strict_yaml
from omi_plugin.metadata.model_yaml import ModelYamlError, load_model_yaml
from omi_plugin.metadata.strict_yaml import YamlProblem

GOOD = """name: digits
version: "1.0"
run_id: abc123
format: sklearn
files: [model.joblib]
"""


def _problem(data) -> YamlProblem:
    with pytest.raises(YamlProblem) as info:
        strict_yaml.load(data)
    return info.value


def _model_error(data) -> str:
    with pytest.raises(ModelYamlError) as info:
        load_model_yaml(data, "ex/model.yaml")
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("text, where, key", [
    ("a: 1\nb: 2\na: 3\n", "line 3, column 1", "'a'"),
    ("x:\n  inner: 1\n  inner: 2\n", "line 3, column 3", "'inner'"),
    ("- {n: 1, n: 2}\n", "line 1, column 10", "'n'"),
    ('"q": 1\nq: 2\n', "line 2, column 1", "'q'"),
])
def test_repeated_keys_are_refused_where_they_repeat(text: str, where: str, key: str) -> None:
    problem = _problem(text)
    assert problem.where == where
    assert f"key {key} is repeated" in problem.problem


def test_repeated_run_id_names_the_field_line() -> None:
    assert _model_error(GOOD + "run_id: other\n").startswith(
        "ex/model.yaml: line 6, column 1: key 'run_id' is repeated (first at line 3, column 1)")


def test_same_key_in_different_mappings_is_fine() -> None:
    assert strict_yaml.load("a: {n: 1}\nb: {n: 2}\n") == {"a": {"n": 1}, "b": {"n": 2}}


def test_billion_laughs_is_refused_without_expanding() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    problem = _problem("\n".join(lines) + "\n")
    assert "anchors and aliases expand to more than" in problem.problem


def test_modest_anchor_reuse_is_fine() -> None:
    text = "t: &t {name: x, datatype: FP32, shape: [-1, 4]}\nu: [*t, *t, *t]\n"
    assert strict_yaml.load(text)["u"][2] == {"name": "x", "datatype": "FP32", "shape": [-1, 4]}


def test_self_referencing_alias_is_refused() -> None:
    assert "contains it" in _problem("a: &a [1, *a]\n").problem


@pytest.mark.parametrize("data", [
    "name: café\n".encode("latin-1"),
    "name: x\n".encode("utf-16"),
    b"name: \xff\xfe\n",
])
def test_other_encodings_are_refused(data: bytes) -> None:
    problem = _problem(data)
    assert "is not UTF-8" in problem.problem and problem.fix == "save the file as UTF-8"


def test_utf8_with_or_without_bom_is_read() -> None:
    assert strict_yaml.load("name: café\n".encode()) == {"name": "café"}
    assert strict_yaml.load("name: café\n".encode("utf-8-sig")) == {"name": "café"}


def test_non_utf8_model_yaml_names_file_and_line() -> None:
    data = (GOOD + "description: résumé\n").encode("latin-1")
    assert _model_error(data).startswith("ex/model.yaml: line 6: is not UTF-8 (byte 0xe9")


@pytest.mark.parametrize("text, value", [
    ("v: 2024-01-01\n", "2024-01-01"),
    ("v: 2001-12-14t21:59:43.10-05:00\n", "2001-12-14t21:59:43.10-05:00"),
    ("v: [2024-01-01, 3]\n", ["2024-01-01", 3]),
])
def test_unquoted_dates_stay_the_strings_written(text: str, value) -> None:
    assert strict_yaml.load(text) == {"v": value}


@pytest.mark.parametrize("text, where, what", [
    ("v: !!binary aGVsbG8=\n", "v", "a YAML bytes is not a JSON value"),
    ("v: !!set {a, b}\n", "v", "a YAML set is not a JSON value"),
    ("v: !!timestamp 2024-01-01\n", "v", "a YAML date is not a JSON value"),
    ("v: [1, .nan]\n", "v[1]", "nan is not a JSON number"),
    ("v: {x: -.inf}\n", "v.x", "-inf is not a JSON number"),
    ("v: {1: a}\n", "v", "key 1 is a int, not a string"),
    ("on: x\n", "(top level)", "key True is a bool, not a string"),
])
def test_values_json_cannot_carry_are_refused(text: str, where: str, what: str) -> None:
    problem = _problem(text)
    assert (problem.where, problem.problem) == (where, what)


def test_unquoted_date_in_a_sample_is_its_string() -> None:
    text = GOOD + ("inputs: [{name: day, datatype: BYTES, shape: [-1]}]\n"
                   "samples: [{inputs: {day: [2024-01-01]}}]\n")
    assert load_model_yaml(text, "ex/model.yaml").record.raw["samples"][0]["inputs"]["day"] == ["2024-01-01"]


@pytest.mark.parametrize("text, field", [
    (GOOD.replace("run_id: abc123", "run_id: |\n  abc123\n"), "run_id"),
    (GOOD.replace("name: digits", 'name: "digits\\n"'), "name"),
    (GOOD.replace('version: "1.0"', 'version: "1.0\\t"'), "version"),
    (GOOD.replace("[model.joblib]", '["model.joblib\\n"]'), "files[0]"),
    (GOOD + 'handler: "pkg.mod:Handler\\n"\n'.replace("sklearn", "custom"), "handler"),
    (GOOD + 'inputs: [{name: "x\\n", datatype: FP32, shape: [-1]}]\n', "inputs[0].name"),
])
def test_control_characters_in_names_tags_and_paths_are_refused(text: str, field: str) -> None:
    assert _model_error(text).startswith(f"ex/model.yaml: {field}: ")
    assert "contains the control character" in _model_error(text)


def test_free_text_keeps_its_newlines() -> None:
    text = GOOD + "description: |\n  Two lines\n  of prose.\n"
    assert load_model_yaml(text, "ex/model.yaml").record.description == "Two lines\nof prose.\n"


@pytest.mark.parametrize("run_id_from", ["../../../etc/MLmodel", "/etc/MLmodel", "../../MLmodel"])
def test_run_id_from_outside_the_repository_is_refused(run_id_from: str) -> None:
    text = GOOD.replace("run_id: abc123", f"run_id_from: {run_id_from}")
    assert _model_error(text).startswith(f"ex/model.yaml: run_id_from: '{run_id_from}' points outside the repository")
