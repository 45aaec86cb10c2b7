import pytest

from omi_plugin.check.rfc3339 import is_date_time


@pytest.mark.parametrize("value", ["1970-01-01T00:00:00Z", "2024-02-29T23:59:60.123+05:30", "2026-11-23t10:00:00z",
                                   "1999-12-31T23:59:59-00:00"])
def test_accepts_rfc3339(value: str) -> None:
    assert is_date_time(value)


@pytest.mark.parametrize("value", ["yesterday", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
                                   "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00",
                                   "2024-01-01 00:00:00Z", "2024-01-01T00:00:00+25:00", "2024-01-01"])
def test_rejects_everything_else(value: str) -> None:
    assert not is_date_time(value)


def test_non_strings_are_left_to_the_type_keyword() -> None:
    assert is_date_time(12)
