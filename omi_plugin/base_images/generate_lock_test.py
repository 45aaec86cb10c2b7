from __future__ import annotations

import hashlib
import io
import lzma
import urllib.error

import pytest

from omi_plugin.base_images import download_debs, generate_lock
from omi_plugin.base_images.lock import LockedPackage, load_lock
from omi_testutil.debs import packages_index

MIRROR = "http://deb.example.org/debian"


def fake_archive(suites, archs=("amd64",)):
    """{url: bytes} for a mirror serving `suites` ({(mirror, suite): [paragraphs]}) for `archs`, with valid Release
    files (a paragraph with an `Only` field is served for that architecture alone)."""
    files = {}
    for (mirror, suite), paragraphs in suites.items():
        release = f"Suite: {suite}\nSHA256:\n"
        for arch in archs:
            mine = [{**{k: v for k, v in p.items() if k != "Only"}, "Architecture": p.get("Architecture", arch)}
                    for p in paragraphs if p.get("Only", arch) == arch]
            packages = lzma.compress(packages_index(mine).encode())
            release += f" {hashlib.sha256(packages).hexdigest()} {len(packages)} main/binary-{arch}/Packages.xz\n"
            files[f"{mirror}/dists/{suite}/main/binary-{arch}/Packages.xz"] = packages
        files[f"{mirror}/dists/{suite}/Release"] = release.encode()
    return files


@pytest.fixture
def archive(monkeypatch):
    files = fake_archive({
        (MIRROR, "bookworm"): [
            {"Package": "app", "Version": "1", "Depends": "libc6 (>= 2.36), debconf | debconf-2.0"},
            {"Package": "libc6", "Version": "2.36-9", "Filename": "pool/main/g/glibc/libc6_2.36-9_amd64.deb"},
            {"Package": "debconf", "Version": "1.5", "Architecture": "all"},
        ],
        (MIRROR, "bookworm-updates"): [],
        (MIRROR + "-security", "bookworm-security"): [
            {"Package": "libc6", "Version": "2.36-9+deb12u1",
             "Filename": "pool/updates/main/g/glibc/libc6_2.36-9+deb12u1_amd64.deb"},
        ],
    })

    def fake_fetch(url, attempts=3):
        if url not in files:
            raise generate_lock.GenerateError(f"GET {url}: HTTP 404")
        return files[url]

    monkeypatch.setattr(generate_lock, "fetch", fake_fetch)
    return files


def test_generate_resolves_newest_across_suites_and_refreshes(tmp_path, archive, capsys):
    out = str(tmp_path / "app.lock.json")
    assert generate_lock.main(["--mirror", MIRROR, "--package", "app", "--output", out]) == 0
    lock = load_lock(out)
    assert [p.name for p in lock.packages] == ["app", "libc6"]  # debconf excluded by default
    assert lock.package("libc6").url == MIRROR + "-security/pool/updates/main/g/glibc/libc6_2.36-9+deb12u1_amd64.deb"
    assert [s.suite for s in lock.sources] == ["bookworm", "bookworm-updates", "bookworm-security"]
    assert "debconf" in lock.excludes
    assert "resolved 2 packages" in capsys.readouterr().err
    first = open(out).read()
    assert generate_lock.main(["--refresh", out]) == 0
    assert open(out).read() == first


def test_generate_reports_resolution_errors_in_one_line(tmp_path, archive, capsys):
    out = str(tmp_path / "x.lock.json")
    assert generate_lock.main(["--mirror", MIRROR, "--package", "nope", "--output", out]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: the request depends on nope")
    assert not (tmp_path / "x.lock.json").exists()


def test_corrupt_index_is_caught(tmp_path, archive, capsys):
    archive[f"{MIRROR}/dists/bookworm/main/binary-amd64/Packages.xz"] = lzma.compress(b"Package: x\n")
    assert generate_lock.main(["--mirror", MIRROR, "--package", "app", "--output", str(tmp_path / "l.json")]) == 1
    assert "sha256 does not match" in capsys.readouterr().err


def test_download_404_says_how_to_refresh(tmp_path, monkeypatch):
    def gone(url, timeout=None):
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, io.BytesIO())  # type: ignore[arg-type]

    monkeypatch.setattr(download_debs.urllib.request, "urlopen", gone)
    package = LockedPackage("libc6", "2.36-9", "amd64", f"{MIRROR}/pool/main/g/glibc/libc6_2.36-9_amd64.deb",
                            "0" * 64, 10)
    with pytest.raises(download_debs.DownloadError) as error:
        download_debs.download(package, str(tmp_path), "3rdparty/debian/base.lock.json")
    assert "python -m omi_plugin.base_images.generate_lock --refresh 3rdparty/debian/base.lock.json" in str(error.value)


def _serve(monkeypatch, files):
    def fake_fetch(url, attempts=3):
        if url not in files:
            raise generate_lock.GenerateError(f"GET {url}: HTTP 404")
        return files[url]

    monkeypatch.setattr(generate_lock, "fetch", fake_fetch)


def _suites(security_libc6):
    return {
        (MIRROR, "bookworm"): [{"Package": "app", "Version": "1", "Depends": "libc6"},
                               {"Package": "libc6", "Version": "2.36-9"}],
        (MIRROR, "bookworm-updates"): [],
        (MIRROR + "-security", "bookworm-security"): security_libc6,
    }


def test_locks_of_two_architectures_are_refreshed_together_or_not_at_all(tmp_path, monkeypatch, capsys):
    _serve(monkeypatch, fake_archive(_suites([]), archs=("amd64", "arm64")))
    amd64, arm64 = str(tmp_path / "amd64.lock.json"), str(tmp_path / "arm64.lock.json")
    for arch, out in (("amd64", amd64), ("arm64", arm64)):
        assert generate_lock.main(["--mirror", MIRROR, "--arch", arch, "--package", "app", "--output", out]) == 0
    before = open(amd64).read(), open(arm64).read()
    # The security fix is out for amd64 only: refreshing both would pin two versions, so neither is written.
    _serve(monkeypatch, fake_archive(_suites([{"Package": "libc6", "Version": "2.36-9+deb12u1", "Only": "amd64"}]),
                                     archs=("amd64", "arm64")))
    assert generate_lock.main(["--refresh", amd64, "--refresh", arm64]) == 1
    assert ("error: the locks pin different versions of 1 package(s), so none was written: libc6: 2.36-9+deb12u1 in "
            f"{amd64}, 2.36-9 in {arm64}") in capsys.readouterr().err
    assert (open(amd64).read(), open(arm64).read()) == before
    # Once both architectures have it, both locks move together.
    _serve(monkeypatch, fake_archive(_suites([{"Package": "libc6", "Version": "2.36-9+deb12u1"}]),
                                     archs=("amd64", "arm64")))
    assert generate_lock.main(["--refresh", amd64, "--refresh", arm64]) == 0
    assert load_lock(amd64).package("libc6").version == load_lock(arm64).package("libc6").version == "2.36-9+deb12u1"
    assert load_lock(arm64).package("libc6").architecture == "arm64"


def test_check_lists_what_a_lock_lacks_and_writes_nothing(tmp_path, monkeypatch, capsys):
    _serve(monkeypatch, fake_archive(_suites([])))
    out = str(tmp_path / "app.lock.json")
    assert generate_lock.main(["--mirror", MIRROR, "--package", "app", "--output", out]) == 0
    assert generate_lock.main(["--check", out]) == 0
    assert "every lock is up to date" in capsys.readouterr().err
    written = open(out).read()
    _serve(monkeypatch, fake_archive(_suites([{"Package": "libc6", "Version": "2.36-9+deb12u1"}])))
    assert generate_lock.main(["--check", out]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"{out}: libc6 2.36-9 (the archive has 2.36-9+deb12u1)\n"
    assert open(out).read() == written

