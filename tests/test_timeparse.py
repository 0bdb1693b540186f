"""Times as people type them, and the ones a hostile caller types (issue 22: no overflow, a clear 400)."""

from __future__ import annotations

import pytest

from sophia.errors import InvalidRequest
from sophia.timeparse import parse_since

NOW = 1_780_000_000.0  # 2026-05-28 UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - 1800),
        ("7d", NOW - 7 * 86400),
        ("2026-01-01", 1_767_225_600.0),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600.0),
    ],
)
def test_ordinary_times(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize(
    "text",
    [
        "99999999999999999999d",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1969-12-31",
        "yesterday-ish",
    ],
)
def test_times_out_of_range_or_unreadable_are_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_since(text, NOW, param="until")
    assert caught.value.param == "until" and text in caught.value.message
