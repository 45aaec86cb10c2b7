"""Built-in handler for Hugging Face text models exported to ONNX (format: huggingface), run with `tokenizers` and
onnxruntime on CPU: no torch, no transformers, nothing fetched from the Hub.

The directory's files say how (`omi_contract.huggingface`): `tokenizer.json` tokenizes, truncating at the model's
limit and padding to the longest text of each batch; the graph gets `input_ids`, `attention_mask` and, when it
takes them, `token_type_ids`. `task: text-embedding` pools the last hidden state as the sentence-transformers files
say (mean, CLS or max; normalised when a Normalize module follows); `task: text-classification` turns the logits
into probabilities (softmax, or sigmoid for multi-label models) and the most probable label from `id2label`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from omi_contract import huggingface as hf
from omi_runtime.errors import BadRequest, ModelFileError
from omi_runtime.handlers.base import Handler, ModelContext
from omi_runtime.handlers.onnx_session import open_session


class HuggingFaceHandler(Handler):
    batchable = True
    # Not `thread_agnostic`: a forward pass takes milliseconds and must never run on the server's event loop (an
    # empty batch or a refused text would make the last call look fast).

    def __init__(self) -> None:
        self.model: Optional[hf.TextModel] = None
        self.task = ""
        self.tokenizer: Any = None
        self.session: Any = None
        self.graph_inputs: list[str] = []
        self.input_name = ""
        self.roles: list[tuple[str, str]] = []  # (declared output, role)

    def load(self, context: ModelContext) -> None:
        from tokenizers import Tokenizer

        record = context.metadata
        self.task = hf.task_of(record.raw)
        files = [p.relative_to(context.model_dir).as_posix() for p in context.model_files()]
        max_length = record.raw.get("max_length")
        try:
            model = hf.read_text_model(files, lambda rel: _read_json(context.model_dir, rel),
                                       max_length if isinstance(max_length, int) else None)
        except hf.TextModelError as e:
            raise ModelFileError(str(e)) from None
        self.model = model
        try:
            self.tokenizer = Tokenizer.from_file(str(context.path(model.tokenizer)))
        except Exception as e:  # noqa: BLE001 - the Rust library's errors name no file
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ModelFileError(str(hf.TextModelError(model.tokenizer, "(file)", f"is not a fast tokenizer ({reason})",
                                                       "save it with a fast tokenizer's save_pretrained"))) from None
        # tokenizer.json may carry the exporter's fixed padding and truncation: serve the model's limit instead,
        # padded per batch to its longest text, with the model's own pad token.
        self.tokenizer.enable_truncation(max_length=model.max_length)
        padding = self.tokenizer.padding or {}
        pad_token = padding.get("pad_token") or model.pad_token
        pad_id = self.tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ModelFileError(str(hf.TextModelError(model.tokenizer, "pad_token", f"{pad_token!r} is not in its "
                                                       "vocabulary", "save the tokenizer with its pad token")))
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token, pad_type_id=padding.get("pad_type_id", 0))

        self.session = context.load_model_file(open_session, context.path(model.graph))
        self.graph_inputs = [i.name for i in self.session.get_inputs()]
        for where, problem, fix in hf.directory_problems(record.raw, model, self.graph_inputs):
            raise ModelFileError(str(hf.TextModelError("", where, problem, fix)))
        width = self.session.get_outputs()[0].shape[-1] if self.session.get_outputs()[0].shape else None
        if self.task == hf.TEXT_CLASSIFICATION and isinstance(width, int) and width != len(model.labels):
            raise ModelFileError(str(hf.TextModelError(model.graph, "(file)", f"answers {width} logits; config.json "
                                                       f"id2label has {len(model.labels)} labels",
                                                       "save the model with one label per class")))
        self.input_name = record.inputs[0].name
        names = [t.name for t in record.outputs]
        self.roles = [(name, role or "") for name, role in zip(names, hf.output_roles(self.task, names))]

    def _encode(self, texts: np.ndarray) -> dict[str, np.ndarray]:
        strings = []
        for index, item in enumerate(texts.reshape(-1)):
            try:
                strings.append(bytes(item).decode("utf-8"))
            except UnicodeDecodeError as e:
                raise BadRequest(f"input {self.input_name!r}[{index}] is not UTF-8 text ({e.reason} at byte "
                                 f"{e.start})") from None
        encodings = self.tokenizer.encode_batch(strings)
        given = (np.array([e.ids for e in encodings], dtype=np.int64),
                 np.array([e.attention_mask for e in encodings], dtype=np.int64),
                 np.array([e.type_ids for e in encodings], dtype=np.int64))
        feed = dict(zip(hf.GRAPH_INPUTS, given))
        return {name: feed[name] for name in self.graph_inputs}

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        assert self.model is not None
        texts = inputs[self.input_name]
        if texts.size == 0:
            return self._empty()
        feed = self._encode(texts)
        first = self.session.run(None, feed)[0]
        if self.task == hf.TEXT_EMBEDDING:
            return {name: self._pool(first, feed[hf.REQUIRED_GRAPH_INPUTS[1]]) for name, _ in self.roles}
        return self._classify(first)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        assert self.model is not None
        if hidden.ndim == 2:  # the graph pools itself (a `sentence_embedding` output)
            pooled = hidden.astype(np.float32)
        elif self.model.pooling == "cls":
            pooled = hidden[:, 0, :]
        elif self.model.pooling == "max":
            pooled = np.where(mask[:, :, None] > 0, hidden, -np.inf).max(axis=1)
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if self.model.normalize:
            pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)

    def _classify(self, logits: np.ndarray) -> dict[str, np.ndarray]:
        assert self.model is not None
        logits = logits.astype(np.float32)
        if self.model.multi_label:
            probabilities = 1.0 / (1.0 + np.exp(-logits))
        else:
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        labels = np.array([self.model.labels[i].encode() for i in probabilities.argmax(axis=1)], dtype=object)
        by_role = {hf.LABEL: labels, hf.PROBABILITIES: probabilities, hf.LOGITS: logits}
        return {name: by_role[role] for name, role in self.roles}

    def _empty(self) -> dict[str, np.ndarray]:
        assert self.model is not None
        width = {hf.EMBEDDING: self.model.hidden_size or 0, hf.PROBABILITIES: len(self.model.labels),
                 hf.LOGITS: len(self.model.labels)}
        return {name: (np.zeros((0,), dtype=object) if role == hf.LABEL else
                       np.zeros((0, width[role]), dtype=np.float32)) for name, role in self.roles}


def _read_json(model_dir: Path, relative: str) -> Any:
    path = model_dir / relative
    return hf.parse_json(relative, path.read_bytes() if path.is_file() else None)
