"""The huggingface handler on real files: the example's all-MiniLM-L6-v2 (tokenizer and int8 ONNX graph) against
the torch reference kept in its model.yaml, and a small classifier graph built here on the same tokenizer, whose
logits the test computes itself. Broken directories are one line each, through the server's model loader."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml  # type: ignore[import-untyped]

from omi_contract.record import ModelRecord
from omi_runtime.dataplane import ModelRuntime
from omi_runtime.errors import BadRequest
from omi_runtime.handlers.base import ModelContext
from omi_runtime.handlers.huggingface import HuggingFaceHandler

EXAMPLE = Path("examples/text_embedding")
LABELS = ["negative", "neutral", "positive"]


def _texts(*texts: str | bytes) -> np.ndarray:
    return np.array([t.encode() if isinstance(t, str) else t for t in texts], dtype=object)


def _record(doc: dict[str, Any]) -> ModelRecord:
    return ModelRecord.from_json({"name": "m", "version": "1", "format": "huggingface", "files": ["model"],
                                  "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}], **doc}, "x")


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLE / "model.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def embedder(example: dict[str, Any]) -> HuggingFaceHandler:
    handler = HuggingFaceHandler()
    handler.load(ModelContext(EXAMPLE, ModelRecord.from_json(example, "model.yaml")))
    return handler


def test_embeddings_match_the_torch_reference(embedder: HuggingFaceHandler, example: dict[str, Any]) -> None:
    sample = example["samples"][0]
    got = embedder.predict({"text": _texts(*sample["inputs"]["text"])})["embedding"]
    expected = np.array(sample["outputs"]["embedding"], dtype=np.float32)
    assert got.shape == (2, 384) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= sample["tolerance"]
    assert (1 - (got * expected).sum(axis=1)).max() < 1e-3  # cosine distance, the int8 weights' share
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # modules.json has Normalize


def test_batched_and_one_by_one_answers_are_equal(embedder: HuggingFaceHandler) -> None:
    texts = ["short", "a much longer sentence that pads the others " * 5, "", "naïve café — 東京"]
    batch = embedder.predict({"text": _texts(*texts)})["embedding"]
    one_by_one = np.concatenate([embedder.predict({"text": _texts(t)})["embedding"] for t in texts])
    assert np.array_equal(batch, one_by_one)


def test_long_texts_are_truncated_at_the_model_limit(embedder: HuggingFaceHandler) -> None:
    assert embedder.model is not None and embedder.model.max_length == 256  # sentence_bert_config.json
    words = "word " * 300
    long, longer = embedder.predict({"text": _texts(words, words * 10)})["embedding"]
    assert np.array_equal(long, longer)


def test_text_that_is_not_utf8_is_a_bad_request(embedder: HuggingFaceHandler) -> None:
    with pytest.raises(BadRequest, match=r"input 'text'\[1\] is not UTF-8 text"):
        embedder.predict({"text": _texts("fine", b"\xff\xfe")})


def test_an_empty_batch_answers_empty_tensors(embedder: HuggingFaceHandler) -> None:
    assert embedder.predict({"text": _texts()})["embedding"].shape == (0, 384)


def _classifier_dir(tmp_path: Path, config: dict[str, Any]) -> np.ndarray:
    """tokenizer.json of the example, and a graph: logits = sum over unmasked tokens of a per-token weight row."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(EXAMPLE / "model" / "tokenizer.json", model / "tokenizer.json")
    (model / "config.json").write_text(json.dumps({"hidden_size": 8, "max_position_embeddings": 64, **config}))
    weights = np.random.default_rng(7).normal(size=(30522, len(LABELS))).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["W", "input_ids"], ["rows"]),
         helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
         helper.make_node("Unsqueeze", ["maskf", "two"], ["mask3"]),
         helper.make_node("Mul", ["rows", "mask3"], ["kept"]),
         helper.make_node("ReduceSum", ["kept", "one"], ["logits"], keepdims=0)],
        "classifier",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(np.array([2], np.int64), "two"),
         numpy_helper.from_array(np.array([1], np.int64), "one")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8),
              str(model / "model.onnx"))
    return weights


def _classifier(tmp_path: Path, outputs: list[dict[str, Any]]) -> HuggingFaceHandler:
    handler = HuggingFaceHandler()
    handler.load(ModelContext(tmp_path, _record({"task": "text-classification", "outputs": outputs})))
    return handler


CLASSIFIER_OUTPUTS = [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                      {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
                      {"name": "logits", "datatype": "FP32", "shape": [-1, 3]}]


@pytest.mark.parametrize("multi_label", [False, True])
def test_classification_answers_labels_and_probabilities(tmp_path: Path, multi_label: bool) -> None:
    config: dict[str, Any] = {"id2label": {str(i): label for i, label in enumerate(LABELS)}}
    if multi_label:
        config["problem_type"] = "multi_label_classification"
    weights = _classifier_dir(tmp_path, config)
    handler = _classifier(tmp_path, CLASSIFIER_OUTPUTS)
    texts = ["what a lovely day", "terrible, awful service", "ok"]
    out = handler.predict({"text": _texts(*texts)})

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tmp_path / "model" / "tokenizer.json"))
    encodings = [tokenizer.encode(t) for t in texts]  # padded to 128 as the file says: the mask drops the padding
    logits = np.stack([(weights[e.ids] * np.array(e.attention_mask)[:, None]).sum(axis=0) for e in encodings])
    expected = (1 / (1 + np.exp(-logits)) if multi_label
                else np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
    assert np.allclose(out["logits"], logits, atol=1e-4)
    assert np.allclose(out["probabilities"], expected, atol=1e-5)
    assert list(out["label"]) == [LABELS[i].encode() for i in logits.argmax(axis=1)]


def test_outputs_map_by_name_else_by_position(tmp_path: Path) -> None:
    config = {"id2label": {str(i): label for i, label in enumerate(LABELS)}}
    _classifier_dir(tmp_path, config)
    handler = _classifier(tmp_path, [{"name": "scores", "datatype": "FP32", "shape": [-1, 3]},
                                             {"name": "predicted", "datatype": "BYTES", "shape": [-1]}])
    out = handler.predict({"text": _texts("hello")})
    assert out["scores"].shape == (1, 3) and out["predicted"][0] in {label.encode() for label in LABELS}


def _load_error(model_dir: Path, doc: dict[str, Any]) -> str | None:
    runtime = ModelRuntime(_record(doc), model_dir)
    try:
        assert not asyncio.run(runtime.load())
    finally:
        runtime.close()
    return runtime.load_error


EMBEDDING = {"task": "text-embedding", "outputs": [{"name": "embedding", "datatype": "FP32", "shape": [-1, 384]}]}


def _copy_example(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE / "model", tmp_path / "model")
    return tmp_path / "model"


def test_a_directory_without_tokenizer_json_is_one_line(tmp_path: Path) -> None:
    (_copy_example(tmp_path) / "tokenizer.json").unlink()
    error = _load_error(tmp_path, EMBEDDING)
    assert error is not None and "no tokenizer.json among the model files" in error and "\n" not in error


def test_two_onnx_graphs_are_refused(tmp_path: Path) -> None:
    model = _copy_example(tmp_path)
    shutil.copy(model / "model.onnx", model / "model_quantized.onnx")
    error = _load_error(tmp_path, EMBEDDING)
    assert error is not None and "several .onnx files (model/model.onnx, model/model_quantized.onnx)" in error


def test_a_declared_dimension_other_than_the_hidden_size_is_refused(tmp_path: Path) -> None:
    _copy_example(tmp_path)
    doc = {**EMBEDDING, "outputs": [{"name": "embedding", "datatype": "FP32", "shape": [-1, 768]}]}
    error = _load_error(tmp_path, doc)
    assert error is not None and "outputs[0].shape: says 768 dimensions; the model's hidden_size is 384" in error


def test_a_broken_tokenizer_names_the_file(tmp_path: Path) -> None:
    (_copy_example(tmp_path) / "tokenizer.json").write_text('{"version": "1.0"}')
    error = _load_error(tmp_path, EMBEDDING)
    assert error is not None and "model/tokenizer.json: (file): is not a fast tokenizer (Model missing." in error


def test_a_graph_that_is_not_onnx_names_the_file(tmp_path: Path) -> None:
    (_copy_example(tmp_path) / "model.onnx").write_bytes(b"\x80\x04\x95 a pickle, not a graph")
    error = _load_error(tmp_path, EMBEDDING)
    assert error is not None and "model/model.onnx" in error and "a Python pickle" in error


def test_a_max_length_beyond_the_model_is_refused(tmp_path: Path) -> None:
    _copy_example(tmp_path)
    error = _load_error(tmp_path, {**EMBEDDING, "max_length": 1024})
    assert error is not None and "max_length: 1024 is more than the model reads (256 tokens" in error


def test_a_graph_with_more_logits_than_labels_is_refused_at_load(tmp_path: Path) -> None:
    config = {"id2label": {"0": "negative", "1": "positive"}}  # the graph answers three logits
    _classifier_dir(tmp_path, config)
    error = _load_error(tmp_path, {"task": "text-classification", "outputs": CLASSIFIER_OUTPUTS[:1]})
    assert error is not None and "model/model.onnx: (file): answers 3 logits; config.json id2label has 2" in error


def test_a_module_omi_does_not_serve_is_refused(tmp_path: Path) -> None:
    model = _copy_example(tmp_path)
    modules = json.loads((model / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    error = _load_error(tmp_path, EMBEDDING)
    assert error is not None and "model/modules.json: type: module 'sentence_transformers.models.Dense' is not" in error


def test_the_pad_token_comes_from_the_tokenizer_config_when_tokenizer_json_sets_no_padding(tmp_path: Path) -> None:
    model = _copy_example(tmp_path)
    tokenizer = json.loads((model / "tokenizer.json").read_text())
    tokenizer["padding"] = None
    (model / "tokenizer.json").write_text(json.dumps(tokenizer))
    handler = HuggingFaceHandler()
    handler.load(ModelContext(tmp_path, _record(EMBEDDING)))
    assert handler.tokenizer.padding["pad_token"] == "[PAD]" and handler.tokenizer.padding["pad_id"] == 0
    assert handler.predict({"text": _texts("a", "a longer text")})["embedding"].shape == (2, 384)
    config = json.loads((model / "tokenizer_config.json").read_text())
    (model / "tokenizer_config.json").write_text(json.dumps({**config, "pad_token": "<pad>"}))
    error = _load_error(tmp_path, EMBEDDING)
    assert error is not None and "model/tokenizer.json: pad_token: '<pad>' is not in its vocabulary" in error
