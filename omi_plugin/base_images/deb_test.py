from __future__ import annotations

import pytest

from omi_plugin.base_images import deb as deb_module
from omi_plugin.base_images.deb import DebError, read_deb
from omi_plugin.oci.tar import DIR, FILE, HARDLINK, SYMLINK
from omi_testutil.debs import Member, make_deb


def write(tmp_path, data, name="pkg.deb"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("compression", ["xz", "gz"])
def test_reads_control_and_members(tmp_path, compression):
    data = make_deb("hello", "1.0-1", [
        Member("usr", "dir", mode=0o755),
        Member("usr/bin", "dir", mode=0o755),
        Member("usr/bin/hello", data=b"#!/bin/sh\necho hi\n", mode=0o755),
        Member("usr/bin/hi", "symlink", linkname="hello"),
        Member("usr/bin/hello2", "hardlink", linkname="usr/bin/hello"),
    ], compression=compression, extra_control={"Source": "hello-src"}, md5sums=b"abc  usr/bin/hello\n")
    deb = read_deb(write(tmp_path, data), str(tmp_path / "spool"))
    assert (deb.name, deb.version, deb.control["Source"]) == ("hello", "1.0-1", "hello-src")
    assert deb.md5sums == b"abc  usr/bin/hello\n"
    by_path = {m.path: m for m in deb.members}
    assert [by_path[p].kind for p in ("usr", "usr/bin", "usr/bin/hello", "usr/bin/hi", "usr/bin/hello2")] == [
        DIR, DIR, FILE, SYMLINK, HARDLINK]
    assert by_path["usr/bin/hello"].mode == 0o755
    assert deb.read_member(by_path["usr/bin/hello"]) == b"#!/bin/sh\necho hi\n"
    assert by_path["usr/bin/hi"].linkname == "hello"
    assert by_path["usr/bin/hello2"].linkname == "usr/bin/hello"


def test_not_an_ar_archive(tmp_path):
    with pytest.raises(DebError, match="pkg.deb: not a .deb"):
        read_deb(write(tmp_path, b"PK\x03\x04 zip"), str(tmp_path))


def test_truncated(tmp_path):
    data = make_deb("a", "1", [Member("etc/a", data=b"x" * 1000)])
    with pytest.raises(DebError, match="pkg.deb"):
        read_deb(write(tmp_path, data[:200]), str(tmp_path))


def test_special_files_are_rejected(tmp_path):
    data = make_deb("a", "1", [Member("dev/fifo", "fifo")])
    with pytest.raises(DebError, match="dev/fifo is a device, fifo or other special file"):
        read_deb(write(tmp_path, data), str(tmp_path))


def test_zstd_without_module_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_zstandard(name, *args, **kwargs):
        if name == "zstandard":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_zstandard)
    data = make_deb("a", "1", [Member("etc/a", data=b"x")], compression="zst")
    with pytest.raises(DebError, match="zstd-compressed and the `zstandard` Python module is not installed"):
        read_deb(write(tmp_path, data), str(tmp_path))


def test_member_name_normalisation():
    assert deb_module.normalize_member_name("./usr/bin/") == "usr/bin"
    assert deb_module.normalize_member_name("./") == ""
