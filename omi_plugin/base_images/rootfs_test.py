from __future__ import annotations

from omi_contract.image import NONROOT_UID as IMAGE_USER_UID
from omi_plugin.base_images.deb import read_deb
from omi_plugin.base_images.layout import index_entries, merge_packages, read_entry
from omi_plugin.base_images.rootfs import NONROOT_UID, apply, rootfs_entries, status_record
from omi_plugin.oci.tar import DIR, SYMLINK
from omi_testutil.debs import Member, make_deb


def build(tmp_path, packages, suite="bookworm"):
    debs = []
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, members in packages.items():
        path = tmp_path / f"{name}.deb"
        path.write_bytes(make_deb(name, "1.0", members, extra_control={"Source": f"{name}-src"},
                                  md5sums=b"d41d8cd98f00b204e9800998ecf8427e  usr/x\n"))
        debs.append(read_deb(str(path), str(tmp_path / "spool")))
    files = index_entries(merge_packages(debs))
    return {e.path: e for e in apply(files, rootfs_entries(files, debs, suite))}, debs


def test_users_groups_and_directories(tmp_path):
    entries, _ = build(tmp_path, {"a": [Member("tmp", "dir", mode=0o755)]})
    passwd = read_entry(entries["etc/passwd"]).decode()
    assert f"nonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin" in passwd
    assert passwd.startswith("root:x:0:0:")
    assert f"nonroot:x:{NONROOT_UID}:" in read_entry(entries["etc/group"]).decode()
    home = entries["home/nonroot"]
    assert (home.kind, home.uid, home.gid, home.mode) == (DIR, NONROOT_UID, NONROOT_UID, 0o700)
    assert entries["tmp"].mode == 0o1777  # generated entry overrides the package's directory


def test_ca_bundle_concatenates_sorted_certificates(tmp_path):
    entries, _ = build(tmp_path, {"ca-certificates": [
        Member("usr/share/ca-certificates/mozilla/B.crt", data=b"-----B-----"),
        Member("usr/share/ca-certificates/mozilla/A.crt", data=b"-----A-----\n"),
        Member("usr/share/ca-certificates/mozilla/README", data=b"not a cert"),
    ]})
    assert read_entry(entries["etc/ssl/certs/ca-certificates.crt"]) == b"-----A-----\n-----B-----\n"
    assert entries["usr/lib/ssl/cert.pem"].kind == SYMLINK
    assert entries["usr/lib/ssl/cert.pem"].linkname == "/etc/ssl/certs/ca-certificates.crt"


def test_no_ca_certificates_no_bundle(tmp_path):
    entries, _ = build(tmp_path, {"a": [Member("etc/a", data=b"a")]})
    assert "etc/ssl/certs/ca-certificates.crt" not in entries


def test_os_release_synthesised_only_without_base_files(tmp_path):
    entries, _ = build(tmp_path, {"a": [Member("etc/a", data=b"a")]})
    text = read_entry(entries["etc/os-release"]).decode()
    assert 'VERSION_ID="12"' in text and "ID=debian" in text
    entries, _ = build(tmp_path / "b", {"base-files": [
        Member("usr/lib/os-release", data=b"ID=debian\n"),
        Member("etc/os-release", "symlink", linkname="../usr/lib/os-release")]})
    assert entries["etc/os-release"].kind == SYMLINK


def test_dpkg_status_records(tmp_path):
    entries, debs = build(tmp_path, {"zlib1g": [Member("usr/lib/libz.so.1", data=b"z")]})
    record = read_entry(entries["var/lib/dpkg/status.d/zlib1g"]).decode()
    assert record.splitlines()[:2] == ["Package: zlib1g", "Status: install ok installed"]
    assert "Version: 1.0" in record and "Source: zlib1g-src" in record and "Architecture: amd64" in record
    assert "var/lib/dpkg/status.d/zlib1g.md5sums" in entries
    assert status_record(debs[0]).endswith(b"\n")


def test_python3_symlink_added_only_when_missing(tmp_path):
    entries, _ = build(tmp_path, {"python3.11-minimal": [Member("usr/bin/python3.11", data=b"ELF", mode=0o755)]})
    assert entries["usr/bin/python3"].linkname == "python3.11"
    entries, _ = build(tmp_path / "b", {
        "python3.11-minimal": [Member("usr/bin/python3.11", data=b"ELF", mode=0o755)],
        "python3-minimal": [Member("usr/bin/python3", "symlink", linkname="python3.11")]})
    assert entries["usr/bin/python3"].linkname == "python3.11"


def test_exists_follows_merged_usr_symlinks(tmp_path):
    # python3.11 shipped under /bin is found through the `bin -> usr/bin` link.
    entries, _ = build(tmp_path, {"py": [Member("bin/python3.11", data=b"ELF", mode=0o755)]})
    assert entries["usr/bin/python3"].linkname == "python3.11"


def test_the_base_user_is_the_user_omi_images_run_as() -> None:
    assert NONROOT_UID == IMAGE_USER_UID
