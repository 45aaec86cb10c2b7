import gzip
import json
import os

import pytest

from omi_plugin.oci import compress_layer
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.descriptor import Descriptor
from omi_plugin.oci.hashing import file_sha256
from omi_plugin.oci.image import Layer
from omi_plugin.oci.layer_output import LAYER_JSON
from omi_plugin.oci.layout import blob_path


def _layer_blob(tmp_path, data: bytes) -> Layer:
    os.makedirs(tmp_path / "blobs" / "sha256", exist_ok=True)
    staged = tmp_path / "staged"
    staged.write_bytes(data)
    digest, size = file_sha256(str(staged))
    os.replace(staged, tmp_path / blob_path(digest))
    return Layer(Descriptor(mt.LAYER_TAR, digest, size), digest, "omi: a layer")


def _run(tmp_path, layer: Layer, **options) -> Layer:
    spec = {"layer": layer.to_json(), "compression": {"algorithm": "gzip", "level": 6, **options}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert compress_layer.main(["spec.json", "out"]) == 0
    finally:
        os.chdir(cwd)
    return Layer.from_json(json.loads((tmp_path / "out" / LAYER_JSON).read_text()))


def test_compresses_and_keeps_the_diff_id(tmp_path) -> None:
    data = b"a tar of source code\n" * 50_000
    layer = _layer_blob(tmp_path, data)
    out = _run(tmp_path, layer)
    assert out.descriptor.media_type == mt.LAYER_TAR_GZIP and out.diff_id == layer.diff_id
    blob = tmp_path / "out" / blob_path(out.descriptor.digest)
    assert gzip.decompress(blob.read_bytes()) == data
    assert file_sha256(str(blob)) == (out.descriptor.digest, out.descriptor.size)
    assert os.listdir(tmp_path / "out" / "blobs" / "sha256") == [out.descriptor.digest.split(":")[1]]


def test_probe_leaves_incompressible_layers_alone(tmp_path) -> None:
    layer = _layer_blob(tmp_path, os.urandom(2 << 20))
    assert _run(tmp_path, layer, probe=True) == layer
    assert os.listdir(tmp_path / "out" / "blobs" / "sha256") == []


def test_a_blob_that_does_not_match_its_name_is_refused(tmp_path, capsys) -> None:
    layer = _layer_blob(tmp_path, b"good bytes" * 1000)
    with open(tmp_path / blob_path(layer.descriptor.digest), "r+b") as f:
        f.write(b"BAD")
    spec = {"layer": layer.to_json(), "compression": {"algorithm": "zstd"}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    os.chdir(tmp_path)
    assert compress_layer.main(["spec.json", "out"]) == 1
    assert "not the " + layer.descriptor.digest in capsys.readouterr().err
    assert os.listdir(tmp_path / "out" / "blobs" / "sha256") == []  # no partial blob left behind


@pytest.mark.parametrize("options, message", [
    ({"algorithm": "brotli"}, "'brotli' is not a compression"),
    ({"algorithm": "zstd", "level": 40}, "level 40 is outside zstd's range 1-19"),
])
def test_bad_settings_are_one_line_errors(tmp_path, capsys, options, message) -> None:
    layer = _layer_blob(tmp_path, b"x" * 100)
    (tmp_path / "spec.json").write_text(json.dumps({"layer": layer.to_json(), "compression": options}))
    os.chdir(tmp_path)
    assert compress_layer.main(["spec.json", "out"]) == 1
    assert message in capsys.readouterr().err


def test_compressed_input_is_refused(tmp_path, capsys) -> None:
    layer = _layer_blob(tmp_path, gzip.compress(b"x" * 100))
    gz = Layer(Descriptor(mt.LAYER_TAR_GZIP, layer.descriptor.digest, layer.descriptor.size), "sha256:" + "0" * 64)
    (tmp_path / "spec.json").write_text(json.dumps({"layer": gz.to_json(), "compression": {"algorithm": "gzip"}}))
    os.chdir(tmp_path)
    assert compress_layer.main(["spec.json", "out"]) == 1
    assert "already compressed" in capsys.readouterr().err
