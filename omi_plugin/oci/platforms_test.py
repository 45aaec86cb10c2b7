"""The platforms omi builds for: spellings users write, what each means on disk, and one line for the rest."""

from __future__ import annotations

import json

import pytest

from omi_plugin.oci import platforms


@pytest.mark.parametrize("text, expected", [("linux/amd64", platforms.AMD64), ("linux/arm64", platforms.ARM64),
                                            ("linux/arm64/v8", platforms.ARM64), ("Linux/AMD64", platforms.AMD64)])
def test_the_spellings_of_a_platform(text: str, expected: platforms.Platform) -> None:
    assert platforms.parse(text) == expected


@pytest.mark.parametrize("text", ["linux/s390x", "linux/amd46", "windows/amd64", ""])
def test_a_platform_omi_does_not_build_is_one_line(text: str) -> None:
    with pytest.raises(platforms.PlatformError) as caught:
        platforms.parse(text)
    assert str(caught.value) == f"{text!r} is not a platform omi builds images for (it builds linux/amd64, linux/arm64)"


def test_what_each_platform_means_on_disk() -> None:
    assert platforms.ARM64.to_oci() == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    assert platforms.AMD64.to_oci() == {"architecture": "amd64", "os": "linux"}
    assert platforms.ARM64.library_path == ("usr/lib/aarch64-linux-gnu",)
    assert platforms.for_debian_architecture("arm64") is platforms.ARM64
    with pytest.raises(platforms.PlatformError, match="'armhf' is not one omi builds images for"):
        platforms.for_debian_architecture("armhf")


@pytest.mark.parametrize("machine, expected", [("x86_64", platforms.AMD64), ("aarch64", platforms.ARM64),
                                               ("arm64", None), ("ppc64le", None)])
def test_the_build_machine(monkeypatch: pytest.MonkeyPatch, machine: str, expected: object) -> None:
    monkeypatch.setattr(platforms.host, "machine", lambda: machine)
    assert platforms.build_machine() == expected


def test_an_amd64_config_is_what_it_was_before_there_were_platforms() -> None:
    from omi_plugin.oci.image import RuntimeConfig, build_config

    config = json.loads(build_config([], RuntimeConfig()).data)
    assert (config["architecture"], config["os"]) == ("amd64", "linux") and "variant" not in config
    assert platforms.AMD64.loader == "lib64/ld-linux-x86-64.so.2"
    assert platforms.AMD64.library_path == ("usr/lib/x86_64-linux-gnu",)
    assert platforms.for_oci("linux", "arm64") is platforms.ARM64
    with pytest.raises(platforms.PlatformError, match="linux/riscv64 is not a platform omi builds"):
        platforms.for_oci("linux", "riscv64")
