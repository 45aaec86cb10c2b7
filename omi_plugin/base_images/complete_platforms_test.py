"""The committed complete-platform files: one per platform omi builds, describing the default base's interpreter of
that platform and nothing of the machine that wrote them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omi_plugin.base_images.lock import load_lock
from omi_plugin.oci import platforms

HERE = Path(__file__).parent
LOCKS = {platforms.AMD64: "python3.11-bookworm.lock.json", platforms.ARM64: "python3.11-bookworm-arm64.lock.json"}


@pytest.mark.parametrize("platform", platforms.PLATFORMS, ids=lambda p: p.name)
def test_a_complete_platform_is_the_default_base_interpreter_of_its_platform(platform: platforms.Platform) -> None:
    found = json.loads((HERE / "complete_platforms" / f"linux_{platform.architecture}-cp311-bookworm.json").read_text())
    markers = found["marker_environment"]
    # Nothing of the machine that ran the interpreter: the files are the same wherever they are written.
    assert set(found) == {"compatible_tags", "marker_environment"}
    assert not {"platform_release", "platform_version"} & set(markers)
    assert markers["platform_machine"] == platform.machine and markers["sys_platform"] == "linux"
    assert found["compatible_tags"][0] == f"cp311-cp311-manylinux_2_36_{platform.machine}"
    assert all(tag.endswith(("_" + platform.machine, "-any")) for tag in found["compatible_tags"])
    # The interpreter the lock pins (Debian `3.11.2-6+deb12u9` is CPython 3.11.2).
    python = load_lock(str(HERE / "locks" / LOCKS[platform])).package("python3.11-minimal")
    assert python is not None and python.version.split("-")[0] == markers["python_full_version"]
