"""Finding a file's bytes inside one-file image layers, and checking them."""

from __future__ import annotations

import io
import os

from omi_plugin.oci import media_types
from omi_plugin.oci.descriptor import sha256_digest
from omi_plugin.oci.layer_slices import annotated_path, find_file, slice_sha256
from omi_plugin.oci.tar import Entry, write_layer


def _layer(tmp_path, name: str, files) -> str:
    buffer = io.BytesIO()
    write_layer([Entry.file(path, data) for path, data in files.items()], buffer)
    path = str(tmp_path / name)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())
    return path


def test_the_file_is_found_by_its_path_and_size_and_its_bytes_hash_to_its_digest(tmp_path) -> None:
    weights = os.urandom(5000)
    other = _layer(tmp_path, "other", {"models/m/other.bin": weights})
    holding = _layer(tmp_path, "holding", {"models/m/.gitattributes": weights})
    found = find_file([other, holding], len(weights), {".gitattributes"})
    assert found is not None and found[0] == holding
    assert slice_sha256(found[0], found[1], len(weights)) == sha256_digest(weights)
    assert find_file([other, holding], len(weights) + 1, {".gitattributes"}) is None  # another size
    assert find_file([other], len(weights), {".gitattributes"}) is None  # another path
    assert find_file([str(tmp_path / "missing"), other], len(weights), ()) == (other, found[1])  # any path


def test_the_annotated_path_is_normalised() -> None:
    assert annotated_path({media_types.ANNOTATION_MODEL_FILEPATH: "./sub//.gitattributes"}) == "sub/.gitattributes"
    assert annotated_path({media_types.ANNOTATION_TITLE: "model.onnx"}) == "model.onnx"
    assert annotated_path({}) == ""
