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


def fake_archive(suites):
    """{url: bytes} for a mirror serving `suites` ({(mirror, suite): [paragraphs]}) with valid Release files."""
    files = {}
    for (mirror, suite), paragraphs in suites.items():
        packages = lzma.compress(packages_index(paragraphs).encode())
        digest = hashlib.sha256(packages).hexdigest()
        release = f"Suite: {suite}\nSHA256:\n {digest} {len(packages)} main/binary-amd64/Packages.xz\n"
        files[f"{mirror}/dists/{suite}/Release"] = release.encode()
        files[f"{mirror}/dists/{suite}/main/binary-amd64/Packages.xz"] = packages
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
