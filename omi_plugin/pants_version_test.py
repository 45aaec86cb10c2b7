"""The plugin's guard against being loaded by a Pants it was not built for."""

import pytest

from omi_contract.version import OMI_VERSION
from omi_plugin.pants_version import UnsupportedPantsVersion, pants_version_problem, require_supported_pants


def test_the_running_pants_is_supported() -> None:
    require_supported_pants()


@pytest.mark.parametrize("version", ["2.17.0", "2.17.1", "2.17.2rc0"])
def test_every_217_release_is_supported(version: str) -> None:
    assert pants_version_problem(version) is None


@pytest.mark.parametrize("version", ["2.16.1", "2.18.0", "2.31.0", "3.0.0.dev1", "garbage"])
def test_another_pants_gets_one_line_saying_what_to_do(version: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(UnsupportedPantsVersion) as error:
        require_supported_pants(version)
    line = (f"omi-plugin {OMI_VERSION} runs in Pants 2.17.x, not in Pants {version} (set `pants_version = \"2.17.1\"` "
            "in pants.toml, or remove omi-plugin from `[GLOBAL].plugins`)")
    assert (str(error.value), error.value.code) == (line, 1)
    # Pants prints no traceback for a SystemExit, and under pantsd only what the run writes reaches the user.
    assert capsys.readouterr().err == line + "\n"
