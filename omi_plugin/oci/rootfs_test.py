"""Unpacking layers into a root filesystem, whatever their compression."""

import io

import pytest

from omi_plugin.oci import compression
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.rootfs import unpack_layer
from omi_plugin.oci.tar import Entry, write_layer


def _tar() -> bytes:
    out = io.BytesIO()
    write_layer([Entry.file("usr/lib/python3.11/os.py", b"import sys\n"), Entry.file("usr/bin/readme", b"hi")], out)
    return out.getvalue()


@pytest.mark.parametrize("algorithm", [compression.NONE, compression.GZIP, compression.ZSTD])
def test_base_layers_unpack_whatever_their_compression(tmp_path, algorithm: str) -> None:
    data = _tar()
    if algorithm != compression.NONE:
        data = compression.compress_bytes(data, compression.Setting(algorithm))
    (tmp_path / "layer").write_bytes(data)
    layer = {"path": str(tmp_path / "layer"), "media_type": compression.with_algorithm(mt.LAYER_TAR, algorithm)}
    unpack_layer(layer, str(tmp_path / "root"))
    assert (tmp_path / "root/usr/lib/python3.11/os.py").read_bytes() == b"import sys\n"
    unpack_layer(layer, str(tmp_path / "py"), only_python=True)
    assert not (tmp_path / "py/usr/bin/readme").exists() and (tmp_path / "py/usr/lib/python3.11/os.py").exists()
