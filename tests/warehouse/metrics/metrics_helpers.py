"""Helpers of the metrics tests: a PostgreSQL client on one loop, and row comparison across engines."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
from typing import Any

import pytest


class Postgres:
    """Runs statements in the test database on one event loop (asyncpg is the driver we ship)."""

    def __init__(self, dsn: str) -> None:
        import asyncpg

        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(asyncpg.connect(dsn))

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.loop.run_until_complete(self.conn.fetch(sql))]

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def normal(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows comparable across engines: Decimal as float, timestamps at day precision kept as dates."""

    def cell(value: Any) -> Any:
        if isinstance(value, decimal.Decimal):
            return float(value)
        if isinstance(value, dt.datetime):
            return value.date() if value.time() == dt.time() else value
        return value

    return sorted(
        (tuple(cell(v) for v in row) for row in rows), key=lambda row: [(v is None, str(v)) for v in row]
    )


def same(left: list[tuple[Any, ...]], right: list[tuple[Any, ...]], rel: float = 1e-9) -> bool:
    a, b = normal(left), normal(right)
    if len(a) != len(b):
        return False
    for row_a, row_b in zip(a, b, strict=True):
        for x, y in zip(row_a, row_b, strict=True):
            if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
                if x != pytest.approx(y, rel=rel, abs=1e-12):
                    return False
            elif x != y:
                return False
    return True
