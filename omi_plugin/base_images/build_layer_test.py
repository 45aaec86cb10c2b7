from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile

import pytest

from omi_plugin.base_images.build_layer import BuildError, build_layer, main
from omi_testutil.debs import Member, make_deb, write_debs, write_lock

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fixture_debs():
    return {
        "libc6": make_deb("libc6", "2.36-9", [
            Member("lib", "dir"),
            Member("lib/x86_64-linux-gnu/libc.so.6", data=b"\x7fELF libc", mode=0o755),
            Member("lib64/ld-linux-x86-64.so.2", "symlink", linkname="/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
            Member("usr/share/doc/libc6/copyright", data=b"LGPL"),
            Member("usr/share/doc/libc6/changelog.gz", data=b"x" * 100),
        ], extra_control={"Source": "glibc"}),
        "python3.11-minimal": make_deb("python3.11-minimal", "3.11.2-6", [
            Member("usr/bin/python3.11", data=b"\x7fELF python", mode=0o755),
            Member("usr/lib/python3.11/os.py", data=b"# os\n"),
        ]),
        "ca-certificates": make_deb("ca-certificates", "20230311", [
            Member("usr/share/ca-certificates/mozilla/A.crt", data=b"-----BEGIN CERTIFICATE-----\nA\n"),
        ]),
    }


VERSIONS = {"libc6": "2.36-9", "python3.11-minimal": "3.11.2-6", "ca-certificates": "20230311"}


@pytest.fixture
def inputs(tmp_path):
    lock = write_debs(str(tmp_path / "debs"), fixture_debs(), VERSIONS)
    return write_lock(str(tmp_path / "base.lock.json"), lock), str(tmp_path / "debs")


def test_builds_layer_and_record(tmp_path, inputs):
    lock_path, debs = inputs
    layer = build_layer(lock_path, debs, str(tmp_path / "out"))
    hex_digest = layer.descriptor.digest.split(":")[1]
    blob = tmp_path / "out" / "blobs" / "sha256" / hex_digest
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == hex_digest
    assert layer.descriptor.size == blob.stat().st_size and layer.diff_id == layer.descriptor.digest
    layer_json = (tmp_path / "out" / "layer.json").read_text()
    assert json.loads(layer_json) == layer.to_json()
    assert layer.created_by == "omi_debian_base base.lock.json: 3 packages"
    with tarfile.open(blob) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["lib"].issym() and members["lib"].linkname == "usr/lib"
        assert "usr/lib/x86_64-linux-gnu/libc.so.6" in members
        assert "usr/share/doc/libc6/copyright" in members and "usr/share/doc/libc6/changelog.gz" not in members
        assert members["usr/bin/python3"].linkname == "python3.11"
        assert members["tmp"].mode == 0o1777
        assert members["home/nonroot"].uid == 65532
        assert tar.extractfile("etc/ssl/certs/ca-certificates.crt").read() == b"-----BEGIN CERTIFICATE-----\nA\n"
        assert tar.extractfile("var/lib/dpkg/status.d/libc6").read().startswith(b"Package: libc6\nStatus: ")
        assert {m.mtime for m in members.values()} == {0}
    assert not (tmp_path / "out" / "layer.tar.partial").exists()


def _run_build(lock_path, debs, out, umask, tz, python=sys.executable):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    env = dict(os.environ, TZ=tz, PYTHONPATH=REPO_ROOT, PYTHONHASHSEED="random")
    code = f"import os, sys; os.umask({umask}); from omi_plugin.base_images.build_layer import main; sys.exit(main())"
    subprocess.run([python, "-c", code, "--lock", lock_path, "--debs", debs, "--out", out], env=env, check=True,
                   cwd=os.path.dirname(out))
    with open(os.path.join(out, "layer.json"), "rb") as f:
        return f.read()


def test_deterministic_across_umask_tz_and_paths(tmp_path, inputs):
    lock_path, debs = inputs
    first = _run_build(lock_path, debs, str(tmp_path / "a" / "out"), 0o022, "UTC")
    # Rewrite the same debs elsewhere (fresh mtimes, different directory) and build under another umask and TZ.
    lock2 = write_debs(str(tmp_path / "elsewhere" / "debs"), fixture_debs(), VERSIONS)
    lock_path2 = write_lock(str(tmp_path / "elsewhere" / "base.lock.json"), lock2)
    second = _run_build(lock_path2, str(tmp_path / "elsewhere" / "debs"), str(tmp_path / "b" / "out"), 0o077,
                        "Pacific/Kiritimati")
    assert first == second
    digest = json.loads(first)["descriptor"]["digest"].split(":")[1]
    assert (tmp_path / "a/out/blobs/sha256" / digest).read_bytes() == (tmp_path / "b/out/blobs/sha256" /
                                                                      digest).read_bytes()


def test_sha_mismatch_is_rejected(tmp_path, inputs):
    lock_path, debs = inputs
    target = os.path.join(debs, "libc6_2.36-9_amd64.deb")
    with open(target, "r+b") as f:
        f.seek(100)
        f.write(b"X")
    with pytest.raises(BuildError, match=r"libc6_2.36-9_amd64.deb: sha256 .* does not match .*base.lock.json, which "
                                         r"pins libc6 2.36-9"):
        build_layer(lock_path, debs, str(tmp_path / "out"))
    assert not (tmp_path / "out" / "layer.json").exists()


def test_missing_deb(tmp_path, inputs, capsys):
    lock_path, debs = inputs
    os.unlink(os.path.join(debs, "ca-certificates_20230311_amd64.deb"))
    assert main(["--lock", lock_path, "--debs", debs, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "ca-certificates_20230311_amd64.deb: missing" in err
    assert err.count("\n") == 1


def test_deb_contents_must_match_locked_name(tmp_path):
    debs = fixture_debs()
    debs["libc6"] = make_deb("impostor", "2.36-9", [Member("etc/x", data=b"x")])
    lock = write_debs(str(tmp_path / "debs"), debs, VERSIONS)
    lock_path = write_lock(str(tmp_path / "l.json"), lock)
    with pytest.raises(BuildError, match="contains impostor 2.36-9, but the lock says libc6 2.36-9"):
        build_layer(lock_path, str(tmp_path / "debs"), str(tmp_path / "out"))


@pytest.mark.skipif(not os.path.exists(os.path.expanduser("~/.pyenv/versions/3.9.18/bin/python")),
                    reason="CPython 3.9 not installed here")
def test_same_digest_on_python_3_9(tmp_path, inputs):
    lock_path, debs = inputs
    here = _run_build(lock_path, debs, str(tmp_path / "a" / "out"), 0o022, "UTC")
    py39 = _run_build(lock_path, debs, str(tmp_path / "b" / "out"), 0o022, "UTC",
                      python=os.path.expanduser("~/.pyenv/versions/3.9.18/bin/python"))
    assert here == py39
