"""Time phrases of a question read deterministically against ``today``: a range and a grain.

Ranges are half-open ``[start, end)`` dates, like the metric queries' ``start``/``end``. Periods
named as "last quarter", "in 2025", "Q3 2025", "March" are whole calendar periods; "to date"
periods ("this year", "since March", "the last 6 months") end tomorrow, so today counts. A
comparison ("last quarter vs the one before", "2024 vs 2025", "year over year") widens the range
to every period compared and groups by their grain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from sophia.warehouse.ask.text import Question, number

__all__ = ["TimeSpec", "parse_time"]

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
_ORDINAL = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "last": 4,
}
_UNIT = r"(day|week|month|quarter|year)s?"
_MONTH = r"(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
_YEAR = r"(?<![$\d.,])((?:19|20)\d{2})(?![\d%]|,\d)"
_COUNT = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|eighteen|twenty four|a couple of|a few)"
_LAST = r"(?:last|past|previous|prior|preceding|trailing)"

_GRAINS: list[tuple[str, str]] = [
    (r"\b(year over year|year on year|yoy|y o y|yearly|annually|per year|by year|each year|every year|year by year|years? compared)\b", "year"),
    (r"\b(quarter over quarter|quarter on quarter|qoq|q o q|quarter by quarter|quarterly|per quarter|by quarter|each quarter|every quarter|q by q|quarter to quarter)\b", "quarter"),
    (r"\b(month over month|month on month|mom|m o m|month by month|monthly|per month|by month|each month|every month|month to month)\b", "month"),
    (r"\b(week over week|wow|weekly|per week|by week|each week|every week|week by week)\b", "week"),
    (r"\b(daily|per day|by day|each day|every day|day by day)\b", "day"),
]  # fmt: skip
_TREND = r"\b(over time|trends?|trending|trajectory|evolution|evolved|timeline|time series|history)\b"
_COMPARING = r"\b(vs|versus|compared?|comparison|against|difference|change|changed|grow|grew|growth)\b"
_FUTURE = r"\b(next (week|month|quarter|year)|tomorrow|coming (week|month|quarter|year)|upcoming (week|month|quarter|year))\b"
_COMPARE_PREVIOUS = (
    rf"\b(?:{_LAST}|this|current) (quarter|month|year|week)\b.{{0,30}}?\b(?:vs|versus|compared (?:to|with)|against|and|over|relative to)\b"
    r" (?:the |a )?(?:one before|previous one|prior one|one prior|previous|prior|quarter before|month before|year before|week before|period before|before that|preceding one)"
)


@dataclass
class TimeSpec:
    """What the time phrases said: a range (``start``/``end``), a grain to group by, and problems."""

    start: date | None = None
    end: date | None = None
    grain: str | None = None
    phrases: list[str] = field(default_factory=list)
    future: bool = False
    #: the range was written as periods to compare (group by ``grain`` even if no grain word was said)
    compare: bool = False

    @property
    def empty(self) -> bool:
        return self.start is None and self.end is None and self.grain is None


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period(unit: str, day: date) -> tuple[date, date]:
    """The calendar ``unit`` (day, week, month, quarter, year) that contains ``day``."""
    if unit == "day":
        return day, day + timedelta(days=1)
    if unit == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if unit == "month":
        start = day.replace(day=1)
        return start, add_months(start, 1)
    if unit == "quarter":
        start = quarter_start(day)
        return start, add_months(start, 3)
    return date(day.year, 1, 1), date(day.year + 1, 1, 1)


def shift(unit: str, day: date, count: int) -> date:
    """``day`` moved ``count`` units (negative: back), to the start of that unit's period."""
    if unit == "day":
        return day + timedelta(days=count)
    if unit == "week":
        return period("week", day)[0] + timedelta(days=7 * count)
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    return add_months(period(unit, day)[0], months * count)


def parse_time(q: Question, today: date) -> TimeSpec:
    """Read every time phrase of ``q`` (consuming its words) into one ``TimeSpec``."""
    spec = TimeSpec()
    text = q.text
    for pattern, grain in _GRAINS:
        for m in re.finditer(pattern, text):
            spec.grain = spec.grain or grain
            _take(q, spec, m)
    if re.search(_FUTURE, text) or re.search(r"\b(will|forecast|predict|projected?|projection)\b", text):
        spec.future = bool(re.search(_FUTURE, text))
    ranges: list[tuple[date, date]] = []
    for reader in (
        _compare_previous,
        _relative_count,
        _relative_named,
        _to_date,
        _quarters,
        _halves,
        _months,
        _years,
    ):
        ranges.extend(reader(q, spec, today))
    if ranges:
        spec.start = min(r[0] for r in ranges)
        spec.end = max(r[1] for r in ranges)
        if len(ranges) > 1 and spec.grain is None and re.search(_COMPARING, text):
            spec.grain = _grain_of(ranges)
            spec.compare = True
    trend = re.search(_TREND, text)
    if spec.grain is None and trend:
        spec.grain = "month"
        _take(q, spec, trend)
    return spec


def _take(q: Question, spec: TimeSpec, m: re.Match[str]) -> None:
    spec.phrases.append(m.group(0))
    q.consume_chars(*m.span())


def _matches(q: Question, pattern: str) -> list[re.Match[str]]:
    return [m for m in re.finditer(pattern, q.text) if q.free_chars(*m.span())]


def _grain_of(ranges: list[tuple[date, date]]) -> str:
    days = min((b - a).days for a, b in ranges)
    return "year" if days >= 360 else "quarter" if days >= 85 else "month" if days >= 28 else "day"


def _compare_previous(q: Question, spec: TimeSpec, today: date) -> list[tuple[date, date]]:
    out = []
    for m in _matches(q, _COMPARE_PREVIOUS):
        unit = m.group(1)
        this = period(unit, today)[0]
        first = m.group(0).split()[0]
        latest = this if first in ("this", "current") else shift(unit, today, -1)
        out += [(shift(unit, latest, -1), shift(unit, latest, 0)), (latest, shift(unit, latest, 1))]
        spec.grain = spec.grain or unit
        _take(q, spec, m)
    return out


def _relative_count(q: Question, spec: TimeSpec, today: date) -> list[tuple[date, date]]:
    out = []
    pattern = rf"\b(?:(?:in|over|during|for|within) )?(?:the )?{_LAST} {_COUNT} {_UNIT}\b"
    for m in _matches(q, pattern):
        count = number(m.group(1).replace(" of", "")) or (24 if "twenty four" in m.group(1) else 1)
        unit = m.group(2)
        start = (
            today - timedelta(days=count * (7 if unit == "week" else 1)) if unit in ("day", "week") else None
        )
        if start is None:
            start = add_months(today.replace(day=1), -count * {"month": 1, "quarter": 3, "year": 12}[unit])
        out.append((start, today + timedelta(days=1)))
        _take(q, spec, m)
    return out


def _relative_named(q: Question, spec: TimeSpec, today: date) -> list[tuple[date, date]]:
    out = []
    for m in _matches(q, rf"\b(?:{_LAST}|the previous) (day|week|month|quarter|year)\b|\b(yesterday)\b"):
        unit = m.group(1) or "day"
        out.append((shift(unit, today, -1), period(unit, today)[0]))
        _take(q, spec, m)
    for m in _matches(
        q,
        r"\b(?:the )?(?:one|quarter|month|year) before (?:that|it|last)\b|\bthe (?:one|quarter|year|month) prior\b",
    ):
        _take(q, spec, m)  # an echo of a comparison read above ("… vs the one before")
    for m in _matches(q, _FUTURE):
        unit = (m.group(2) or m.group(3) or m.group(4) or "day") if m.group(0) != "tomorrow" else "day"
        start = shift(unit, today, 1)
        out.append((start, shift(unit, start, 1)))
        _take(q, spec, m)
    return out


def _to_date(q: Question, spec: TimeSpec, today: date) -> list[tuple[date, date]]:
    out = []
    tomorrow = today + timedelta(days=1)
    named = {
        "ytd": "year",
        "year to date": "year",
        "qtd": "quarter",
        "quarter to date": "quarter",
        "mtd": "month",
        "month to date": "month",
    }
    for m in _matches(q, r"\b(ytd|year to date|qtd|quarter to date|mtd|month to date)\b"):
        out.append((period(named[m.group(1)], today)[0], tomorrow))
        _take(q, spec, m)
    for m in _matches(
        q,
        r"\b(?:this|current|the current) (day|week|month|quarter|year)(?: so far| to date)?\b|\b(so far this year)\b",
    ):
        unit = m.group(1) or "year"
        out.append((period(unit, today)[0], tomorrow))
        _take(q, spec, m)
    for m in _matches(
        q,
        rf"\b(?:since|from|starting|after) (?:the start of |the beginning of |beginning of |start of )?{_MONTH}(?: {_YEAR})?\b(?! (?:to|through|until|and) )",
    ):
        month = MONTHS[m.group(1)]
        year = int(m.group(2)) if m.group(2) else (today.year if month <= today.month else today.year - 1)
        out.append((date(year, month, 1), tomorrow))
        _take(q, spec, m)
    for m in _matches(
        q,
        rf"\b(?:since|from|starting|after) (?:the start of |the beginning of )?q([1-4]) {_YEAR}\b(?! (?:to|through|until|and) )",
    ):
        out.append((date(int(m.group(2)), 3 * int(m.group(1)) - 2, 1), tomorrow))
        _take(q, spec, m)
    for m in _matches(q, rf"\b(?:since|starting in|starting|from) {_YEAR}\b(?! (?:to|through|until|and) )"):
        start = date(int(m.group(1)), 1, 1)
        out.append((start, tomorrow))
        _take(q, spec, m)
    return out


def _quarters(q: Question, spec: TimeSpec, today: date) -> list[tuple[date, date]]:
    out = []
    patterns = (
        (rf"\bq([1-4])(?: of| in)? {_YEAR}\b", 1, 2),
        (rf"\b{_YEAR} q([1-4])\b", 2, 1),
        (rf"\b(first|second|third|fourth|1st|2nd|3rd|4th|last) quarter(?: of| in)? {_YEAR}\b", 1, 2),
    )
    for pattern, qi, yi in patterns:
        for m in _matches(q, pattern):
            quarter = _ORDINAL.get(m.group(qi)) or int(m.group(qi))
            start = date(int(m.group(yi)), 3 * quarter - 2, 1)
            out.append((start, add_months(start, 3)))
            _take(q, spec, m)
    for m in _matches(q, r"\bq([1-4])\b"):  # a quarter without a year: the latest one begun by today
        start = date(today.year, 3 * int(m.group(1)) - 2, 1)
        start = start if start <= today else date(today.year - 1, start.month, 1)
        out.append((start, add_months(start, 3)))
        _take(q, spec, m)
    return out


def _halves(q: Question, spec: TimeSpec, today: date) -> list[tuple[date, date]]:
    out = []
    for m in _matches(q, rf"\b(?:h([12])|(first|second) half)(?: of| in)? {_YEAR}\b"):
        half = int(m.group(1)) if m.group(1) else (1 if m.group(2) == "first" else 2)
        start = date(int(m.group(3)), 1 if half == 1 else 7, 1)
        out.append((start, add_months(start, 6)))
        _take(q, spec, m)
    return out


def _months(q: Question, spec: TimeSpec, today: date) -> list[tuple[date, date]]:
    out = []
    for m in _matches(q, rf"\b(?:in |during |for |of )?{_MONTH}(?: of)?(?: {_YEAR})?\b"):
        if (
            m.group(1) == "may"
            and not m.group(2)
            and not m.group(0).startswith(("in ", "during ", "for ", "of "))
        ):
            continue  # the verb "may"
        if m.group(1) in (
            "mar",
            "jun",
            "sep",
            "dec",
            "oct",
            "nov",
            "jan",
            "feb",
            "apr",
            "jul",
            "aug",
        ) and not m.group(2):
            continue  # short forms only with a year ("jan 2025")
        month = MONTHS[m.group(1)]
        year = int(m.group(2)) if m.group(2) else (today.year if month <= today.month else today.year - 1)
        start = date(year, month, 1)
        out.append((start, add_months(start, 1)))
        _take(q, spec, m)
    return out


def _years(q: Question, spec: TimeSpec, today: date) -> list[tuple[date, date]]:
    out = []
    for m in _matches(q, rf"\b(?:(?:in|during|for|of|fy|calendar year) )?{_YEAR}\b"):
        year = int(m.group(1))
        out.append((date(year, 1, 1), date(year + 1, 1, 1)))
        _take(q, spec, m)
    return out
