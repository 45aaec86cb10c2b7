"""Debian version comparison (dpkg's algorithm), so the resolver can pick the newest candidate and check `(>= x)`.

Debian versions are `[epoch:]upstream[-revision]`; `~` sorts before everything, even the end of the string, so that
`1.0~rc1 < 1.0`. This is a direct transcription of `verrevcmp` in dpkg's `lib/dpkg/version.c`.
"""

from __future__ import annotations

from functools import cmp_to_key
from typing import Tuple


def _split(version: str) -> Tuple[int, str, str]:
    epoch = 0
    if ":" in version:
        head, version = version.split(":", 1)
        epoch = int(head) if head.isdigit() else 0
    upstream, revision = version, "0"
    if "-" in version:
        upstream, revision = version.rsplit("-", 1)
    return epoch, upstream, revision


def _order(char: str) -> int:
    # dpkg: digits are handled separately, letters sort first, `~` before anything, other symbols after letters.
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(left: str, right: str) -> int:
    i = j = 0
    while i < len(left) or j < len(right):
        first_diff = 0
        # Compare the non-digit prefix character by character.
        while (i < len(left) and not left[i].isdigit()) or (j < len(right) and not right[j].isdigit()):
            lc = _order(left[i]) if i < len(left) and not left[i].isdigit() else 0
            rc = _order(right[j]) if j < len(right) and not right[j].isdigit() else 0
            if lc != rc:
                return -1 if lc < rc else 1
            i += 1
            j += 1
        # Then the numeric run, numerically (leading zeros do not matter).
        while i < len(left) and left[i] == "0":
            i += 1
        while j < len(right) and right[j] == "0":
            j += 1
        while i < len(left) and left[i].isdigit() and j < len(right) and right[j].isdigit():
            if not first_diff:
                first_diff = ord(left[i]) - ord(right[j])
            i += 1
            j += 1
        if i < len(left) and left[i].isdigit():
            return 1
        if j < len(right) and right[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def compare_versions(left: str, right: str) -> int:
    """Return <0, 0 or >0 as `left` is older than, equal to or newer than `right`."""
    le, lu, lr = _split(left)
    re_, ru, rr = _split(right)
    if le != re_:
        return -1 if le < re_ else 1
    return _compare_part(lu, ru) or _compare_part(lr, rr)


def satisfies(version: str, operator: str, wanted: str) -> bool:
    """Does `version` satisfy the relation `(operator wanted)` of a Depends field?"""
    cmp = compare_versions(version, wanted)
    if operator == ">=":
        return cmp >= 0
    if operator == "<=":
        return cmp <= 0
    if operator == "=":
        return cmp == 0
    if operator == ">>":
        return cmp > 0
    if operator == "<<":
        return cmp < 0
    raise ValueError(f"unknown version relation {operator!r}")


version_key = cmp_to_key(compare_versions)
