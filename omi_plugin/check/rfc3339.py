"""RFC 3339 `date-time` validation, because jsonschema only checks formats when rfc3339-validator is installed.

Pants's own venv lacks that package, so without this module `format: date-time` would silently pass.
"""

from __future__ import annotations

import datetime
import re

# RFC 3339 section 5.6 `date-time`: full-date "T" full-time, with a mandatory offset ("Z" or +hh:mm).
_DATE_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$"
)


def is_date_time(value: object) -> bool:
    """True for an RFC 3339 date-time string; non-strings pass (the `type` keyword judges those)."""
    if not isinstance(value, str):
        return True
    match = _DATE_TIME_RE.match(value)
    if not match:
        return False
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    try:
        datetime.date(year, month, day)  # rejects 2023-02-30 and friends
    except ValueError:
        return False
    # Second 60 is a leap second, which RFC 3339 permits.
    if hour > 23 or minute > 59 or second > 60:
        return False
    if match.group(9) is not None and (int(match.group(9)) > 23 or int(match.group(10)) > 59):
        return False
    return True
