"""Build model/: a topic classifier on all-MiniLM-L6-v2, from the text embedding example's directory.

The classifier is the embedding model with a head: mean pooling, normalisation, then the cosine similarity to one
prototype per topic (the normalised mean embedding of a few descriptions of it, below) scaled by SCALE, as the
logits. Everything is one ONNX graph, as a fine-tuned `*ForSequenceClassification` export is, and config.json
names the topics (`id2label`), so omi serves it as any text classifier. The weights file is the embedding example's,
byte for byte (git keeps it once).

    ./pants run examples/text_embedding/fetch_model.py        # first, if examples/text_embedding/model is missing
    ./pants run examples/text_classification/build_classifier.py

The prototypes are rounded to 4 decimals, so a rebuild on a machine of the same kind gives the same bytes (another CPU
may round an embedding differently; the committed graph is the reference).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

EMBEDDING = Path("examples/text_embedding/model")  # `pants run` runs the script in the repository's root
OUT = Path("examples/text_classification/model")
GRAPH, WEIGHTS = "model.onnx", "model.onnx_data"
COPIED = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", WEIGHTS)
SCALE = 20.0  # cosine similarities are within [-1, 1]: scaled, the softmax says which topic clearly
TOPICS: Dict[str, Tuple[str, ...]] = {
    "sports": ("A match between two teams.", "The player scored a goal and the team won the game.",
               "Athletes competing in a tournament or championship."),
    "politics": ("The government and parliament passed a new law.", "An election campaign and its candidates.",
                 "Ministers, parties and political debate."),
    "technology": ("Software, computers and the internet.", "A new smartphone chip and its operating system.",
                   "Programming, data centres and artificial intelligence."),
    "food": ("A recipe for cooking a meal.", "Restaurants, dishes and the taste of food.",
             "Baking bread, vegetables and spices in the kitchen."),
}


def embed(texts: List[str]) -> np.ndarray:
    """The embedding example's sentence embeddings (what omi serves for it): mean pooled, unit length."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(EMBEDDING / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(texts)
    feed = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}
    session = ort.InferenceSession(str(EMBEDDING / GRAPH), providers=["CPUExecutionProvider"])
    hidden = session.run(None, feed)[0]
    mask = feed["attention_mask"][:, :, None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def prototypes() -> np.ndarray:
    rows = []
    for descriptions in TOPICS.values():
        mean = embed(list(descriptions)).mean(axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.round(np.stack(rows), 4).astype(np.float32)


def build(head: np.ndarray) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(EMBEDDING / GRAPH), load_external_data=False)  # the weights stay in model.onnx_data
    graph = model.graph
    hidden = graph.output[0].name

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    one, two = const("head.axis1", np.array([1], np.int64)), const("head.axis2", np.array([2], np.int64))
    tiny, small = const("head.eps_count", np.array(1e-9, np.float32)), const("head.eps_norm", np.array(1e-12, np.float32))
    weights = const("head.prototypes", (head.T * SCALE).astype(np.float32))
    graph.node.extend([
        helper.make_node("Cast", ["attention_mask"], ["head.mask"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["head.mask", two], ["head.mask3"]),
        helper.make_node("Mul", [hidden, "head.mask3"], ["head.masked"]),
        helper.make_node("ReduceSum", ["head.masked", one], ["head.sum"], keepdims=0),
        helper.make_node("ReduceSum", ["head.mask3", one], ["head.count"], keepdims=0),
        helper.make_node("Max", ["head.count", tiny], ["head.count_safe"]),
        helper.make_node("Div", ["head.sum", "head.count_safe"], ["head.mean"]),
        helper.make_node("Mul", ["head.mean", "head.mean"], ["head.squares"]),
        helper.make_node("ReduceSum", ["head.squares", one], ["head.square_sum"], keepdims=1),
        helper.make_node("Sqrt", ["head.square_sum"], ["head.norm"]),
        helper.make_node("Max", ["head.norm", small], ["head.norm_safe"]),
        helper.make_node("Div", ["head.mean", "head.norm_safe"], ["head.unit"]),
        helper.make_node("MatMul", ["head.unit", weights], ["logits"]),
    ])
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(TOPICS)]))
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(OUT / GRAPH))


def main() -> int:
    if not (EMBEDDING / WEIGHTS).is_file():
        raise SystemExit(f"{EMBEDDING} is incomplete: run `./pants run examples/text_embedding/fetch_model.py` first")
    build(prototypes())
    for name in COPIED:
        shutil.copyfile(EMBEDDING / name, OUT / name)
    config = json.loads((EMBEDDING / "config.json").read_text())
    config.update({"architectures": ["BertModel"], "id2label": {str(i): t for i, t in enumerate(TOPICS)},
                   "label2id": {t: i for i, t in enumerate(TOPICS)}, "problem_type": "single_label_classification"})
    (OUT / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    import onnx

    onnx.checker.check_model(str(OUT / GRAPH))  # with its weights beside it now
    for path in sorted(OUT.iterdir()):
        print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
