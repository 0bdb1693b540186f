"""What every generator of the demo warehouse shares: the fixed calendar, seeded randomness, value sets.

Dates are fixed (2024-01-01 .. 2026-11-30) so that the same scale and seed give the same rows on any
machine, whatever today is. Each generator draws from its own stream (``stream(seed, "deals")``), so
changing how one table is made never shifts the random numbers of another.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

#: the first and last day of the data (inclusive)
START = dt.date(2024, 1, 1)
END = dt.date(2026, 11, 30)
#: days from START to END, inclusive
DAYS = (END - START).days + 1

REGIONS = ("Northeast", "Southeast", "Midwest", "Southwest", "West", "Canada")
SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
PMS_VENDORS = ("Yardi", "RealPage", "AppFolio", "Entrata", "Buildium", "ResMan")
COMPETITORS = ("EliseAI", "Knock", "Funnel", "Zuma", "Rent Manager AI")
FEATURES = ("leasing_ai", "maintenance", "payments", "screening", "reporting", "resident_portal")

#: a table under construction: column name -> values, in the DDL's column order
Columns = dict[str, list[Any]]


def columns(names: str) -> Columns:
    """An empty table under construction, its column names separated by spaces."""
    return {name: [] for name in names.split()}


def append_row(table: Columns, row: Sequence[Any]) -> None:
    """Add one row (values in column order) to a table under construction."""
    for key, value in zip(table, row, strict=True):
        table[key].append(value)


def stream(seed: int, name: str) -> np.random.Generator:
    """The random stream of one generator: PCG64 seeded by (seed, a stable hash of ``name``)."""
    return np.random.Generator(np.random.PCG64([seed, zlib.crc32(name.encode())]))


def day(offset: int) -> dt.date:
    """The date ``offset`` days after START (offsets may be negative: history before the window)."""
    return START + dt.timedelta(days=int(offset))


def offset(date: dt.date) -> int:
    """Days from START to ``date``."""
    return (date - START).days


def month_start(date: dt.date) -> dt.date:
    return date.replace(day=1)


def add_months(date: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, clamped to the month's last day (Jan 31 + 1 -> Feb 28/29)."""
    index = date.year * 12 + date.month - 1 + months
    year, month = divmod(index, 12)
    first_next = dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    last = (first_next - dt.timedelta(days=1)).day
    return dt.date(year, month + 1, min(date.day, last))


def month_end(date: dt.date) -> dt.date:
    return add_months(month_start(date), 1) - dt.timedelta(days=1)


def months() -> list[dt.date]:
    """The first day of every month of the window."""
    out, current = [], START
    while current <= END:
        out.append(current)
        current = add_months(current, 1)
    return out


def segment_of(units: int) -> str:
    """The contract's segments by portfolio size: SMB < 1,000 units, Mid-Market < 10,000, Enterprise."""
    return "SMB" if units < 1_000 else "Mid-Market" if units < 10_000 else "Enterprise"


def quarter(date: dt.date) -> int:
    return (date.month - 1) // 3 + 1


def weekday_at(rng: np.random.Generator, lo: int, hi: int) -> dt.datetime:
    """A business-hours moment (Mon-Fri, 8:00-17:45 on a quarter hour) on a day in [lo, hi] offsets."""
    off = int(rng.integers(lo, max(lo, hi) + 1))
    date = day(off)
    if date.weekday() >= 5:  # move weekend days to the next Monday, or back to Friday at the end
        date = date + dt.timedelta(days=7 - date.weekday())
        if date > END:
            date = date - dt.timedelta(days=3)
    minutes = 8 * 60 + 15 * int(rng.integers(0, 40))
    return dt.datetime.combine(date, dt.time(minutes // 60, minutes % 60))


def logistic(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))
