import json
from importlib import resources

from omi_plugin.tools_subsystem import OmiToolsSubsystem


def _lockfile_header() -> dict:
    text = (resources.files("omi_plugin") / "omi_tools.lock").read_text()  # type: ignore[attr-defined]
    begin, end = "--- BEGIN PANTS LOCKFILE METADATA: DO NOT EDIT OR REMOVE ---", "--- END PANTS LOCKFILE METADATA ---"
    header = text[text.index(begin) + len(begin):text.index(end)]
    return json.loads("\n".join(line[2:] for line in header.splitlines() if line.startswith("//")))


def test_the_shipped_lockfile_pins_the_default_requirements() -> None:
    assert sorted(_lockfile_header()["generated_with_requirements"]) == sorted(OmiToolsSubsystem.default_requirements)


def test_the_plugin_resolve_tests_the_same_pins() -> None:
    # The unit tests (golden digests) run in the pants-plugins resolve; they prove the tools' lockfile only if both
    # pin the same compressor versions.
    pins = set()
    for name in ("plugin-requirements.txt", "pants-plugins-constraints.txt"):
        with open(f"3rdparty/python/{name}", encoding="utf-8") as f:
            pins |= {line.split("#")[0].strip() for line in f} - {""}
    assert set(OmiToolsSubsystem.default_requirements) <= pins
