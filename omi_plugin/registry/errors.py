"""The one error type the registry client raises: a single line naming the registry, repository and a remedy."""

from __future__ import annotations

from typing import Optional


class RegistryError(Exception):
    """`<registry>/<repository>: <what failed> (<what to do>)` — printed as is by the CLI, never with a traceback."""

    def __init__(self, where: str, what: str, hint: Optional[str] = None) -> None:
        self.where = where
        self.what = what
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text} ({self.hint})" if self.hint else text


class TransientError(RegistryError):
    """A failure worth retrying (connection reset, 5xx, 429) that outlasted the retry budget."""
