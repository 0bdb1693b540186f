"""Time phrases read against a fixed today (2026-12-01, a Tuesday): ranges are [start, end)."""

from __future__ import annotations

from datetime import date

import pytest

from sophia.warehouse.ask import parse_time
from sophia.warehouse.ask.text import Question

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize(
    ("text", "start", "end", "grain"),
    [
        ("revenue last quarter", "2026-07-01", "2026-10-01", None),
        ("revenue last quarter vs the one before", "2026-04-01", "2026-10-01", "quarter"),
        ("win rate this year", "2026-01-01", "2026-12-02", None),
        ("bookings in 2025", "2025-01-01", "2026-01-01", None),
        ("churn since March", "2026-03-01", "2026-12-02", None),
        ("MRR over the last 6 months", "2026-06-01", "2026-12-02", None),
        ("tickets over the past 30 days", "2026-11-01", "2026-12-02", None),
        ("Q3 2025 pipeline", "2025-07-01", "2025-10-01", None),
        ("the third quarter of 2025", "2025-07-01", "2025-10-01", None),
        ("first half of 2026", "2026-01-01", "2026-07-01", None),
        ("revenue in May 2025", "2025-05-01", "2025-06-01", None),
        ("2024 vs 2025", "2024-01-01", "2026-01-01", "year"),
        ("between 2024 and 2025", "2024-01-01", "2026-01-01", None),
        ("last month", "2026-11-01", "2026-12-01", None),
        ("ytd", "2026-01-01", "2026-12-02", None),
    ],
)
def test_ranges(text: str, start: str, end: str, grain: str | None) -> None:
    spec = parse_time(Question.of(text), TODAY)
    assert (spec.start.isoformat() if spec.start else None, spec.end.isoformat() if spec.end else None) == (
        start,
        end,
    )
    assert spec.grain == grain


@pytest.mark.parametrize(
    ("text", "grain"),
    [
        ("quarter by quarter", "quarter"),
        ("year over year", "year"),
        ("month-over-month", "month"),
        ("weekly", "week"),
        ("the trend", "month"),
    ],
)
def test_grains_without_range(text: str, grain: str) -> None:
    spec = parse_time(Question.of(f"revenue {text}"), TODAY)
    assert (spec.start, spec.end, spec.grain) == (None, None, grain)


def test_future_and_words_left() -> None:
    q = Question.of("what will bookings be next quarter?")
    spec = parse_time(q, TODAY)
    assert spec.future and spec.start == date(2027, 1, 1)
    assert "quarter" not in q.remaining()  # the time words are consumed: no metric or dimension reads them


def test_may_the_verb_is_no_month() -> None:
    assert parse_time(Question.of("may I see revenue"), TODAY).empty
