"""Which Pants this plugin runs in: the Get/MultiGet rule API of Pants 2.17 (2.18 removed its tool lockfile API, and
2.32 removes Get itself), checked when Pants loads the plugin, before anything version-specific is imported."""

from __future__ import annotations

import sys
from typing import Optional

from omi_contract.version import OMI_VERSION

SUPPORTED = (2, 17)


class UnsupportedPantsVersion(SystemExit):
    """The plugin was loaded by a Pants it was not built for. A `SystemExit` (code 1), because Pants prints a
    traceback under any `Exception` raised while it loads plugins."""

    def __init__(self, message: str) -> None:
        super().__init__(1)
        self.message = message

    def __str__(self) -> str:
        return self.message


def pants_version_problem(version: str) -> Optional[str]:
    """The one-line refusal for Pants `version`, or None when this plugin runs there."""
    parts = version.split(".")
    try:
        found = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        found = None
    if found == SUPPORTED:
        return None
    wanted = ".".join(map(str, SUPPORTED))
    return (f"omi-plugin {OMI_VERSION} runs in Pants {wanted}.x, not in Pants {version} (set `pants_version = "
            f"\"{wanted}.1\"` in pants.toml, or remove omi-plugin from `[GLOBAL].plugins`)")


def require_supported_pants(version: Optional[str] = None) -> None:
    if version is None:
        from pants.version import VERSION

        version = VERSION
    problem = pants_version_problem(version)
    if problem:
        # Printed, not only raised: pantsd loads plugins in the daemon, whose exceptions never reach the client,
        # while what a run writes to stderr does.
        print(problem, file=sys.stderr, flush=True)
        raise UnsupportedPantsVersion(problem)
