"""One version for everything omi releases: the server and the SBOMs say OMI_VERSION, the wheels are built at the
version the BUILD prelude sets, and the changelog has an entry for it."""

import re
from pathlib import Path

from omi_contract.version import OMI_VERSION


def test_the_wheels_are_built_at_omi_version() -> None:
    prelude = Path("build-support/wheels.prelude").read_text()
    assert re.findall(r'^OMI_VERSION = "([^"]+)"$', prelude, re.M) == [OMI_VERSION]


def test_the_changelog_describes_omi_version() -> None:
    headings = re.findall(r"^## (\S+)$", Path("CHANGELOG.md").read_text(), re.M)
    assert headings[0] == OMI_VERSION
