import io
import os
import tarfile

import pytest

from omi_plugin.oci.tar import Entry, LayerError, write_layer


def _read(archive: tarfile.TarFile, name: str) -> bytes:
    member = archive.extractfile(name)
    assert member is not None, f"{name} is not a file in the layer"
    return member.read()


def _layer(entries):
    buf = io.BytesIO()
    info = write_layer(entries, buf)
    return buf.getvalue(), info


def test_members_are_sorted_normalised_and_have_parents() -> None:
    data, info = _layer([Entry.file("b/z.txt", b"z"), Entry.file("./a//x.bin", b"\x00" * 700, mode=0o100755)])
    members = tarfile.open(fileobj=io.BytesIO(data)).getmembers()
    assert [m.name for m in members] == ["a", "a/x.bin", "b", "b/z.txt"]
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    assert members[1].mode == 0o755 and members[3].mode == 0o644
    assert info.size == len(data) and info.size % 512 == 0


def test_order_of_input_does_not_change_bytes() -> None:
    a = [Entry.file("m/1", b"1"), Entry.file("m/2", b"22"), Entry.symlink("l", "m/1")]
    assert _layer(a)[1] == _layer(list(reversed(a)))[1]


def test_long_names_and_links_round_trip(tmp_path) -> None:
    deep = "d/" + "x" * 120 + "/" + "y" * 120 + "/file.txt"
    data, _ = _layer([Entry.file(deep, b"deep"), Entry.hardlink("h", deep), Entry.symlink("s", "/" + "t" * 150)])
    archive = tarfile.open(fileobj=io.BytesIO(data))
    assert _read(archive, deep) == b"deep"
    assert archive.getmember("h").linkname == deep
    assert archive.getmember("s").linkname == "/" + "t" * 150


def test_streams_files_from_disk(tmp_path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    data, _ = _layer([Entry.file("models/m/big.bin", str(src))])
    assert _read(tarfile.open(fileobj=io.BytesIO(data)), "models/m/big.bin") == src.read_bytes()


def test_rejects_escaping_paths_and_conflicts() -> None:
    with pytest.raises(LayerError, match="escapes"):
        _layer([Entry.file("../etc/passwd", b"x")])
    with pytest.raises(LayerError, match="declared twice"):
        _layer([Entry.file("a", b"x"), Entry.file("a", b"yy")])


def test_short_file_is_an_error(tmp_path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"abc")
    with pytest.raises(LayerError, match="shorter"):
        _layer([Entry.file("f", str(src), size=10)])
