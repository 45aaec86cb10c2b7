"""The huggingface format's rules: the task and its tensors in model.yaml, and what a model directory says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from omi_contract import huggingface as hf
from omi_contract.record import model_problems

TEXT = {"name": "text", "datatype": "BYTES", "shape": [-1]}
EMBEDDING = {"name": "embedding", "datatype": "FP32", "shape": [-1, 384]}


def _doc(**fields: Any) -> Dict[str, Any]:
    return {"name": "m", "version": "1", "format": "huggingface", "files": ["model"], "inputs": [TEXT], **fields}


def _problems(doc: Dict[str, Any]) -> list:
    return [(p.rule, p.field, p.problem) for p in model_problems(doc)]


def test_a_task_and_fitting_tensors_pass() -> None:
    assert _problems(_doc(task="text-embedding", outputs=[EMBEDDING])) == []
    assert _problems(_doc(task="text-classification", outputs=[
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}])) == []


@pytest.mark.parametrize(("fields", "expected"), [
    ({"outputs": [EMBEDDING]}, ("OMI115", "task", "is missing")),
    ({"task": "fill-mask", "outputs": [EMBEDDING]}, ("OMI115", "task", "'fill-mask' is not a task of format huggingface")),
    ({"task": "text-embedding", "outputs": [{"name": "embedding", "datatype": "FP64", "shape": [-1, 384]}]},
     ("OMI115", "outputs[0]", "is the embedding (FP64 [-1, 384]), which is FP32 of rank 2")),
    ({"task": "text-embedding", "outputs": [EMBEDDING, {"name": "x", "datatype": "FP32", "shape": [-1]}]},
     ("OMI115", "outputs[1]", "is one output too many: a text-embedding model answers embedding")),
    ({"task": "text-classification", "outputs": [{"name": "probabilities", "datatype": "BYTES", "shape": [-1]}]},
     ("OMI115", "outputs[0]", "is the probabilities (BYTES [-1]), which is FP32 of rank 2")),
    ({"task": "text-embedding", "inputs": [{"name": "ids", "datatype": "INT64", "shape": [-1, 128]}],
      "outputs": [EMBEDDING]}, ("OMI115", "inputs[0]", "is INT64 [-1, 128]; texts are BYTES [-1]")),
    ({"task": "text-embedding", "outputs": [EMBEDDING], "max_length": 1},
     ("OMI115", "max_length", "1 is not a number of tokens")),
])
def test_task_and_tensor_problems(fields: Dict[str, Any], expected: tuple) -> None:
    assert _problems(_doc(**fields))[0] == expected


def test_outputs_take_roles_by_name_else_by_position() -> None:
    assert hf.output_roles("text-classification", ["label", "probabilities"]) == ["label", "probabilities"]
    assert hf.output_roles("text-classification", ["predict", "scores"]) == ["label", "probabilities"]
    assert hf.output_roles("text-classification", ["logits", "a", "b", "c"]) == ["logits", "label", "probabilities",
                                                                               None]
    assert hf.output_roles("text-embedding", ["vector"]) == ["embedding"]


SENTENCE_TRANSFORMERS = {
    "model/config.json": {"hidden_size": 384, "max_position_embeddings": 512},
    "model/tokenizer_config.json": {"model_max_length": 512},
    "model/sentence_bert_config.json": {"max_seq_length": 256},
    "model/modules.json": [{"path": "", "type": "sentence_transformers.models.Transformer"},
                           {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                           {"path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
    "model/1_Pooling/config.json": {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False},
}


def _read(files: Dict[str, Any], max_length: Optional[int] = None) -> hf.TextModel:
    paths = [*files, "model/tokenizer.json", "model/model.onnx"]
    return hf.read_text_model(paths, lambda path: json.loads(json.dumps(files[path])) if path in files else None,
                              max_length)


def test_a_sentence_transformers_directory_says_pooling_normalisation_and_length() -> None:
    model = _read(SENTENCE_TRANSFORMERS)
    assert (model.directory, model.graph, model.tokenizer) == ("model", "model/model.onnx", "model/tokenizer.json")
    assert (model.pooling, model.normalize, model.max_length, model.hidden_size) == ("cls", True, 256, 384)
    assert _read(SENTENCE_TRANSFORMERS, max_length=64).max_length == 64
    too_long = _doc(task="text-embedding", outputs=[EMBEDDING], max_length=300)
    assert [p[:2] for p in hf.directory_problems(too_long, _read(SENTENCE_TRANSFORMERS, 300), None)] == [
        ("max_length", "300 is more than the model reads (256 tokens, from its config files)")]


def test_a_plain_classifier_directory_says_labels_and_limits() -> None:
    model = _read({"model/config.json": {"hidden_size": 768, "max_position_embeddings": 514, "model_type": "roberta",
                                         "id2label": {"1": "POSITIVE", "0": "NEGATIVE"}},
                   "model/tokenizer_config.json": {"model_max_length": 1000000000000000019884624838656}})
    assert (model.labels, model.pooling, model.normalize, model.max_length) == (("NEGATIVE", "POSITIVE"), "mean",
                                                                                  False, 512)


@pytest.mark.parametrize(("files", "message"), [
    ({"model/config.json": {"id2label": {"0": "a", "2": "b"}}}, "model/config.json: id2label: ids \\[0, 2\\] are not 0..1"),
    ({"model/config.json": {"id2label": {"x": "a"}}}, "model/config.json: id2label: keys are not class ids"),
    ({"model/config.json": [1]}, "model/config.json: \\(file\\): is not a JSON object"),
    ({}, "model/config.json: \\(file\\): is missing"),
    ({**SENTENCE_TRANSFORMERS, "model/1_Pooling/config.json": {"pooling_mode_cls_token": True,
                                                              "pooling_mode_max_tokens": True}},
     "model/1_Pooling/config.json: pooling_mode_\\*: sets cls and max pooling mode"),
])
def test_directory_files_that_say_nothing_usable_are_one_line(files: Dict[str, Any], message: str) -> None:
    with pytest.raises(hf.TextModelError, match=message):
        _read(files)


def test_locate_needs_one_tokenizer_and_one_graph_beside_it() -> None:
    assert hf.locate(["tokenizer.json", "onnx/model.onnx", "config.json"]) == ("", "onnx/model.onnx")
    with pytest.raises(hf.TextModelError, match="model.yaml: files: no .onnx file beside a/tokenizer.json"):
        hf.locate(["a/tokenizer.json", "b/model.onnx"])
    with pytest.raises(hf.TextModelError, match="several tokenizer.json files"):
        hf.locate(["a/tokenizer.json", "b/tokenizer.json"])


def test_directory_problems_compare_declared_widths_and_graph_inputs() -> None:
    model = _read({"model/config.json": {"hidden_size": 8, "id2label": {"0": "a", "1": "b"}}})
    doc = _doc(task="text-classification", outputs=[{"name": "label", "datatype": "BYTES", "shape": [-1]},
                                                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}])
    assert [p[:2] for p in hf.directory_problems(doc, model, ["input_ids", "attention_mask"])] == [
        ("outputs[1].shape", "says 3 classes; config.json id2label has 2")]
    problems = list(hf.directory_problems(_doc(task="text-embedding", outputs=[EMBEDDING]), model, ["pixel_values"]))
    assert [p[0] for p in problems] == ["outputs[0].shape", "files"]
    assert "takes inputs ['pixel_values']; the tokenizer gives input_ids" in problems[1][1]


def test_directory_facts_read_from_disk_travel_as_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 4}))
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "model.onnx").write_bytes(b"\x80\x04 a pickle")
    facts = hf.DirectoryFacts.read([(name, str(tmp_path / name)) for name in ("config.json", "tokenizer.json",
                                                                          "model.onnx")])
    again = hf.DirectoryFacts.from_json(facts.to_json())
    assert again == facts and list(again.documents) == ["config.json"]  # tokenizer.json is not read
    found = again.check(_doc(task="text-embedding", outputs=[EMBEDDING]), ["config.json", "tokenizer.json",
                                                                          "model.onnx"])
    assert found is not None and (found.path, found.field) == ("model.onnx", "(file)")
    assert found.problem.startswith("cannot be read as an ONNX graph: ")


def test_an_output_naming_a_role_twice_is_a_problem() -> None:
    doc = _doc(task="text-classification", outputs=[{"name": "label", "datatype": "BYTES", "shape": [-1]},
                                                    {"name": "labels", "datatype": "BYTES", "shape": [-1]}])
    assert ("OMI115", "outputs[1].name", "names the label again (as outputs[0] does)") in _problems(doc)


@pytest.mark.parametrize(("files", "message"), [
    ({**SENTENCE_TRANSFORMERS, "model/modules.json": [{"path": "../../etc", "type": hf.POOLING_MODULE}]},
     "model/modules.json: path: '../../etc/config.json' points outside the model directory"),
    ({**SENTENCE_TRANSFORMERS, "model/1_Pooling/config.json": {"pooling_mode_mean_tokens": True,
                                                              "pooling_mode_mean_sqrt_len_tokens": True}},
     "sets pooling_mode_mean_sqrt_len_tokens, which omi does not serve"),
    ({**SENTENCE_TRANSFORMERS, "model/1_Pooling/config.json": None}, "model/1_Pooling/config.json: \\(file\\): is missing"),
])
def test_sentence_transformers_settings_omi_cannot_honour_are_refused(files: Dict[str, Any], message: str) -> None:
    with pytest.raises(hf.TextModelError, match=message):
        _read({k: v for k, v in files.items() if v is not None})


def test_a_module_path_is_normalised() -> None:
    files = {**SENTENCE_TRANSFORMERS, "model/modules.json": [{"path": "./1_Pooling", "type": hf.POOLING_MODULE}]}
    assert _read(files).pooling == "cls"


def test_a_regression_model_is_not_a_classifier() -> None:
    model = _read({"model/config.json": {"hidden_size": 8, "problem_type": "regression", "id2label": {"0": "score"}}})
    doc = _doc(task="text-classification", outputs=[{"name": "label", "datatype": "BYTES", "shape": [-1]}])
    assert [p[0] for p in hf.directory_problems(doc, model, None)] == ["task"]


def test_settings_files_that_are_not_utf8_are_refused_alike_at_package_time_and_load(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b'{"hidden_size": 4, "name": "mod\xe8le"}')
    facts = hf.DirectoryFacts.read([("config.json", str(tmp_path / "config.json"))])
    with pytest.raises(hf.TextModelError, match="config.json: \\(file\\): is not UTF-8 text"):
        hf.DirectoryFacts.from_json(facts.to_json()).read_json("config.json")
    with pytest.raises(hf.TextModelError, match="config.json: \\(file\\): is not UTF-8 text"):
        hf.parse_json("config.json", (tmp_path / "config.json").read_bytes())
