"""A model directory (`files: [snapshot]`): one layer per file, deterministic across clones, and a changed file
changes exactly its own layer."""

from __future__ import annotations

import json
import shutil
from typing import Dict, List

from conftest import REPO, Clone

TARGET = ("examples/dirmodel", "dirmodel")
FILES = 100


def _write_model(clone: Clone) -> None:
    (clone.root / "examples/dirmodel").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "examples/digits/model.joblib", clone.root / "examples/dirmodel/model.joblib")
    for i in range(FILES):  # a snapshot's shape: nested directories, files of different sizes
        clone.write(f"examples/dirmodel/snapshot/part-{i // 10}/shard-{i:03d}.bin", f"shard {i}\n" * (i + 1))
    clone.write("examples/dirmodel/BUILD",
                'omi_model(name="dirmodel", model_files=["model.joblib", "snapshot/**"])\n')
    yaml = (REPO / "examples/digits/model.yaml").read_text()
    clone.write("examples/dirmodel/model.yaml", yaml.replace("name: digits", "name: dirmodel").replace(
        "files: [model.joblib]", "files: [model.joblib, snapshot]"))


def _model_layers(clone: Clone) -> List[Dict]:
    return [layer for layer in clone.record(*TARGET)["layers"] if layer["created_by"].startswith("omi: model file ")]


def test_a_model_directory_is_one_layer_per_file_and_reproducible(clone_factory) -> None:
    first, second = clone_factory("dir-a", pantsd=True), clone_factory("dir-b")
    for clone in (first, second):
        _write_model(clone)
        clone.pants("package", ":".join(TARGET))
    assert first.record(*TARGET)["image_digest"] == second.record(*TARGET)["image_digest"]

    layers = _model_layers(first)
    names = [layer["created_by"].removeprefix("omi: model file ") for layer in layers]
    shards = sorted(f"snapshot/part-{i // 10}/shard-{i:03d}.bin" for i in range(FILES))
    assert names == ["model.joblib", *shards]  # model.yaml's order, a directory's files sorted
    layout = first.layout(*TARGET).parent / "dirmodel.modelpack.oci"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())
    paths = [layer["annotations"]["org.cncf.model.filepath"] for layer in manifest["layers"]]
    assert paths[:-1] == [f"models/dirmodel/{name}" for name in names]

    first.write("examples/dirmodel/snapshot/part-4/shard-042.bin", "retrained\n")
    first.pants("package", ":".join(TARGET))
    changed = [i for i, (a, b) in enumerate(zip(layers, _model_layers(first))) if a["digest"] != b["digest"]]
    assert changed == [names.index("snapshot/part-4/shard-042.bin")]
    assert first.record(*TARGET)["image_digest"] != second.record(*TARGET)["image_digest"]
