"""Canonical JSON: the one encoding used for every JSON blob omi writes, so bytes depend on content only."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the same value always encodes to the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def dumps_pretty(value: Any) -> str:
    """Human-facing JSON (build records, lock files): sorted, indented, newline-terminated."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
