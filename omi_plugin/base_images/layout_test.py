from __future__ import annotations

import pytest

from omi_plugin.base_images.deb import read_deb
from omi_plugin.base_images.layout import (
    LayoutError,
    is_kept,
    merge_packages,
    merged_usr_path,
    package_entries,
    read_entry,
)
from omi_plugin.oci.tar import DIR, FILE, HARDLINK, SYMLINK
from omi_testutil.debs import Member, make_deb


def load(tmp_path, name, members, version="1"):
    path = tmp_path / f"{name}.deb"
    path.write_bytes(make_deb(name, version, members))
    return read_deb(str(path), str(tmp_path / "spool"))


def test_merged_usr_path():
    assert merged_usr_path("lib/x86_64-linux-gnu/libc.so.6") == "usr/lib/x86_64-linux-gnu/libc.so.6"
    assert merged_usr_path("lib64/ld-linux-x86-64.so.2") == "usr/lib64/ld-linux-x86-64.so.2"
    assert merged_usr_path("bin") == "usr/bin"
    assert merged_usr_path("library/x") == "library/x"
    assert merged_usr_path("usr/lib/x") == "usr/lib/x"


def test_package_paths_are_rewritten_into_usr_including_hardlink_targets(tmp_path):
    deb = load(tmp_path, "libc6", [
        Member("lib", "dir"),
        Member("lib/x86_64-linux-gnu/libc.so.6", data=b"ELF", mode=0o755),
        Member("lib64/ld-linux-x86-64.so.2", "symlink", linkname="/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        Member("sbin/ldconfig", data=b"ldconfig", mode=0o755),
        Member("sbin/ldconfig.real", "hardlink", linkname="sbin/ldconfig"),
    ])
    entries = {e.path: e for e in merge_packages([deb])}
    assert entries["usr/lib"].kind == DIR
    assert entries["usr/lib/x86_64-linux-gnu/libc.so.6"].kind == FILE
    assert entries["usr/lib64/ld-linux-x86-64.so.2"].linkname == "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    assert entries["usr/sbin/ldconfig.real"].kind == HARDLINK
    assert entries["usr/sbin/ldconfig.real"].linkname == "usr/sbin/ldconfig"
    for top in ("bin", "sbin", "lib", "lib64"):
        assert entries[top].kind == SYMLINK and entries[top].linkname == f"usr/{top}"
    assert "lib32" not in entries and "libx32" not in entries
    assert not any(p.startswith(("lib/", "sbin/", "lib64/")) for p in entries)


def test_hardlink_whose_target_sorts_later_is_swapped(tmp_path):
    # The tar writer emits `usr/bin/a` before `usr/bin/z`; a link must never precede its target.
    deb = load(tmp_path, "p", [Member("usr/bin/z", data=b"data", mode=0o755),
                               Member("usr/bin/a", "hardlink", linkname="usr/bin/z")])
    entries = {e.path: e for e in package_entries(deb)}
    assert entries["usr/bin/a"].kind == FILE and read_entry(entries["usr/bin/a"]) == b"data"
    assert entries["usr/bin/z"].kind == HARDLINK and entries["usr/bin/z"].linkname == "usr/bin/a"


def test_hardlink_to_dropped_doc_becomes_a_file(tmp_path):
    deb = load(tmp_path, "p", [Member("usr/share/doc/p/README", data=b"readme"),
                               Member("usr/share/p/README", "hardlink", linkname="usr/share/doc/p/README")])
    entries = {e.path: e for e in package_entries(deb)}
    assert "usr/share/doc/p/README" not in entries
    assert entries["usr/share/p/README"].kind == FILE and read_entry(entries["usr/share/p/README"]) == b"readme"


def test_docs_are_dropped_but_copyright_kept(tmp_path):
    deb = load(tmp_path, "p", [
        Member("usr/share/doc/p/copyright", data=b"GPL"),
        Member("usr/share/doc/p/changelog.Debian.gz", data=b"x"),
        Member("usr/share/doc/p-dev", "symlink", linkname="p"),
        Member("usr/share/man/man1/p.1.gz", data=b"x"),
        Member("usr/share/locale/fr/LC_MESSAGES/p.mo", data=b"x"),
        Member("usr/share/info/p.info.gz", data=b"x"),
        Member("usr/share/lintian/overrides/p", data=b"x"),
        Member("usr/share/p/data", data=b"keep"),
    ])
    paths = {e.path for e in package_entries(deb)}
    assert paths == {"usr/share/doc/p/copyright", "usr/share/doc/p-dev", "usr/share/p/data"}


def test_is_kept():
    assert is_kept("usr/share/doc/p/copyright", FILE)
    assert not is_kept("usr/share/doc/p/copyright/x", FILE)
    assert not is_kept("usr/share/doc", DIR)
    assert is_kept("usr/share/docs-but-not-doc/x", FILE)


def test_setuid_bits_are_dropped(tmp_path):
    deb = load(tmp_path, "p", [Member("usr/bin/su", data=b"x", mode=0o4755),
                               Member("var/local", "dir", mode=0o2775)])
    entries = {e.path: e for e in package_entries(deb)}
    assert entries["usr/bin/su"].mode == 0o755
    assert entries["var/local"].mode == 0o2775


def test_shared_directories_and_identical_files_are_fine(tmp_path):
    a = load(tmp_path, "a", [Member("etc", "dir"), Member("etc/shared.conf", data=b"same")])
    b = load(tmp_path, "b", [Member("etc", "dir", mode=0o700), Member("etc/shared.conf", data=b"same")])
    entries = {e.path: e for e in merge_packages([a, b])}
    assert entries["etc"].mode == 0o755  # the first package's directory wins


def test_conflicting_files_name_both_packages(tmp_path):
    a = load(tmp_path, "a", [Member("usr/bin/tool", data=b"one")])
    b = load(tmp_path, "b", [Member("bin/tool", data=b"two")])
    with pytest.raises(LayoutError, match="usr/bin/tool is shipped by both a and b with different content"):
        merge_packages([a, b])


def test_conflicting_symlinks(tmp_path):
    a = load(tmp_path, "a", [Member("usr/bin/x", "symlink", linkname="one")])
    b = load(tmp_path, "b", [Member("usr/bin/x", "symlink", linkname="two")])
    with pytest.raises(LayoutError, match="shipped by both a and b"):
        merge_packages([a, b])


def test_same_path_twice_within_a_package_after_merging(tmp_path):
    deb = load(tmp_path, "p", [Member("bin/x", data=b"1"), Member("usr/bin/x", data=b"2")])
    with pytest.raises(LayoutError, match="p: ships both bin/x and usr/bin/x"):
        package_entries(deb)
