from __future__ import annotations

import json

import pytest

from omi_plugin.base_images.lock import (
    Lock,
    LockedPackage,
    LockError,
    Source,
    dump_lock,
    load_lock,
    parse_lock,
    stale_package_message,
)

SHA = "a" * 64


def sample_lock() -> Lock:
    return Lock(
        suite="bookworm",
        architecture="amd64",
        sources=(Source("http://deb.debian.org/debian", "bookworm"),
                 Source("http://deb.debian.org/debian-security", "bookworm-security")),
        requested=("python3.11-minimal",),
        excludes=("perl-base", "debconf"),
        packages=(
            LockedPackage("zlib1g", "1:1.2.13.dfsg-1", "amd64",
                          "http://deb.debian.org/debian/pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb", SHA, 10),
            LockedPackage("libc6", "2.36-9+deb12u4", "amd64",
                          "http://deb.debian.org/debian/pool/main/g/glibc/libc6_2.36-9+deb12u4_amd64.deb", SHA, 20),
        ),
    )


def test_round_trip_is_canonical():
    text = dump_lock(sample_lock())
    assert text.endswith("}\n") and "\n  \"architecture\"" in text
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    loaded = parse_lock(text, "x.lock.json")
    # Packages and excludes are written sorted, so a re-dump is byte-identical.
    assert [p.name for p in loaded.packages] == ["libc6", "zlib1g"]
    assert dump_lock(loaded) == text
    assert loaded.package("libc6").filename == "libc6_2.36-9+deb12u4_amd64.deb"


def mutate(change):
    data = json.loads(dump_lock(sample_lock()))
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("suite"), "L.json: suite is missing"),
    (lambda d: d.update(lock_format=2), "L.json: lock_format is 2, this version of omi reads 1"),
    (lambda d: d.update(extra=1), "L.json: unknown field extra"),
    (lambda d: d["packages"][0].update(sha256="xyz"), r"L.json: packages\[0\] \(libc6\).sha256 must be 64"),
    (lambda d: d["packages"][1].update(size="10"), r"L.json: packages\[1\] \(zlib1g\).size must be a int, got str"),
    (lambda d: d["packages"][1].update(size=True), r"packages\[1\] \(zlib1g\).size must be a int, got bool"),
    (lambda d: d["packages"][0].pop("url"), r"L.json: packages\[0\] \(libc6\).url is missing"),
    (lambda d: d["packages"][0].update(url="ftp://x/y.deb"), r"url must be an http\(s\) URL of a .deb"),
    (lambda d: d["packages"][1].update(name="libc6"), r"packages\[1\] \(libc6\).name appears twice"),
    (lambda d: d["sources"][0].update(mirror="deb.debian.org"), r"sources\[0\].mirror must be an http\(s\) URL"),
    (lambda d: d.update(packages=[]), "L.json: packages is empty"),
    (lambda d: d.update(requested=[""]), r"L.json: requested\[0\] must be a non-empty string"),
])
def test_validation_errors_name_file_and_field(change, message):
    with pytest.raises(LockError, match=message):
        parse_lock(mutate(change), "L.json")


def test_not_json_and_not_an_object():
    with pytest.raises(LockError, match="L.json: not valid JSON"):
        parse_lock("{", "L.json")
    with pytest.raises(LockError, match="L.json: the top level must be a JSON object"):
        parse_lock("[]", "L.json")


def test_missing_file(tmp_path):
    with pytest.raises(LockError, match="cannot read lock file"):
        load_lock(str(tmp_path / "nope.lock.json"))


def test_stale_package_message_names_the_refresh_command():
    lock = sample_lock()
    message = stale_package_message("3rdparty/debian/x.lock.json", lock.package("libc6"))
    assert "libc6 2.36-9+deb12u4" in message
    assert "python -m omi_plugin.base_images.generate_lock --refresh 3rdparty/debian/x.lock.json" in message
    assert "\n" not in message
    assert "zlib1g" in stale_package_message("x.lock.json", "zlib1g")


def test_checked_in_default_lock_is_valid_and_canonical():
    import os
    path = os.path.join(os.path.dirname(__file__), "locks", "python3.11-bookworm.lock.json")
    if not os.path.exists(path):
        pytest.skip("default lock not present in this checkout")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lock = parse_lock(text, path)
    assert dump_lock(lock) == text
    assert {"python3.11-minimal", "libpython3.11-stdlib", "ca-certificates", "libstdc++6"} <= {
        p.name for p in lock.packages}


@pytest.mark.parametrize("name", ["python3.11-bookworm", "busybox-bookworm"])
def test_the_shipped_locks_of_both_architectures_pin_the_same_versions(name: str) -> None:
    import dataclasses
    import os

    from omi_plugin.base_images.generate_lock import version_disagreements

    directory = os.path.join(os.path.dirname(__file__), "locks")
    amd64, arm64 = (load_lock(os.path.join(directory, f)) for f in (f"{name}.lock.json", f"{name}-arm64.lock.json"))
    assert (amd64.architecture, arm64.architecture) == ("amd64", "arm64")
    # One request, resolved per architecture: the same packages at the same versions (`generate_lock --refresh` both).
    assert dataclasses.replace(arm64, architecture="amd64", packages=()) == dataclasses.replace(amd64, packages=())
    assert [p.name for p in amd64.packages] == [p.name for p in arm64.packages]
    assert version_disagreements([("amd64", amd64), ("arm64", arm64)]) == []
    assert {p.architecture for p in arm64.packages} <= {"arm64", "all"}
