"""What every warehouse backend offers, and what they share: the guard, paging and JSON-safe values.

A backend holds the *connection* layer of the read-only promise (DuckDB opened read-only with
external access off and the configuration locked; PostgreSQL in READ ONLY transactions under a
timeout). ``query`` adds the *guard* layer in front of it: the caller's text is checked by
``sophia.warehouse.guard.check`` and only the regenerated, checked statement reaches the engine.
``guard=False`` exists for the tests that prove the connection layer holds on its own.

Subclasses implement ``_run(sql, max_rows)`` (run one statement exactly as given, return at most
``max_rows`` rows), ``tables()``, ``columns(table)`` and ``close()``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlglot import exp

from sophia.settings.warehouse import WarehouseSettings
from sophia.warehouse.guard import Checked, check

JSONValue = None | bool | int | float | str | list[Any] | dict[str, Any]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  #: the engine's type name, upper-case ("INTEGER", "DECIMAL(12,2)", "numeric", …)
    nullable: bool = True


@dataclass(frozen=True)
class Page:
    """Rows of one page of a statement, already JSON-safe."""

    columns: list[Column]
    rows: list[list[JSONValue]]
    truncated: bool  #: more rows follow this page
    sql: str  #: the statement the engine ran (with the paging wrapper)
    tables: tuple[str, ...]


class Backend(ABC):
    """One warehouse engine, reached by URL; every method that touches the engine is a coroutine."""

    dialect: ClassVar[str]  #: the sqlglot dialect name: "duckdb", "postgres", "snowflake"
    #: True when the engine shows loads from elsewhere only after ``reopen`` (a DuckDB file)
    reopen_on_load: ClassVar[bool] = False

    def __init__(self, url: str, settings: WarehouseSettings, *, guard: bool = True) -> None:
        self.url = url
        self.settings = settings
        self.guard = guard  # False only in the tests of the connection layer

    async def query(self, sql: str, *, limit: int, offset: int = 0) -> Page:
        """Up to ``limit`` rows of ``sql`` from ``offset`` (``QueryRefused`` if the guard refuses it)."""
        if not self.guard:
            columns, rows = await self._run(sql, offset + limit + 1)
            return _page(columns, rows[offset:], limit, sql, ())
        checked = check(sql, self.dialect)
        return await self.query_checked(checked, limit=limit, offset=offset)

    async def query_checked(self, checked: Checked, *, limit: int, offset: int = 0) -> Page:
        """Run a statement the guard passed: a SELECT as a LIMIT/OFFSET subquery, others as they are."""
        if checked.kind == "select":
            sql = self.paged_sql(checked.sql, limit + 1, offset)
            columns, rows = await self._run(sql, limit + 1)
            return _page(columns, rows, limit, sql, checked.tables)
        columns, rows = await self._run(checked.sql, offset + limit + 1)
        return _page(columns, rows[offset:], limit, checked.sql, checked.tables)

    def paged_sql(self, sql: str, limit: int, offset: int) -> str:
        """A page of ``sql``, which must be a checked statement (``Checked.sql``: one SELECT regenerated
        by sqlglot, comments gone), so wrapping its text is safe and saves a second parse (~2 ms).
        ``LIMIT n OFFSET m`` reads the same in DuckDB, PostgreSQL and Snowflake."""
        page = f"SELECT * FROM ({sql}) AS sophia_page LIMIT {int(limit)}"
        return f"{page} OFFSET {int(offset)}" if offset else page

    def quote(self, name: str) -> str:
        """``name`` as a quoted identifier of this dialect (for the backend's own catalog queries)."""
        return exp.to_identifier(name, quoted=True).sql(dialect=self.dialect)

    @abstractmethod
    async def _run(self, sql: str, max_rows: int) -> tuple[list[Column], list[Sequence[Any]]]:
        """Run ``sql`` exactly as given on the read-only connection; at most ``max_rows`` rows."""

    @abstractmethod
    async def tables(self) -> list[str]:
        """The tables and views a query may read, sorted."""

    @abstractmethod
    async def columns(self, table: str) -> list[Column]:
        """``table``'s columns in order (with nullability from the catalog)."""

    async def row_count(self, table: str) -> int:
        _, rows = await self._run(f"SELECT count(*) FROM {self.quote(table)}", 1)
        return int(rows[0][0])

    async def reopen(self) -> None:  # noqa: B027 - only file engines need it
        """See loads made elsewhere (a DuckDB file replaced by ``sophia demo-data``)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; idempotent."""


def _page(
    columns: list[Column], rows: Sequence[Sequence[Any]], limit: int, sql: str, tables: tuple[str, ...]
) -> Page:
    return Page(columns, [[to_json(v) for v in row] for row in rows[:limit]], len(rows) > limit, sql, tables)


def to_json(value: Any) -> JSONValue:
    """A JSON-safe value: exact decimals stay exact, times become ISO strings, bytes base64.

    A Decimal becomes a float when the float reads back as the same number (12.50 -> 12.5), else a
    string, so money is never rounded silently. Non-finite floats become the strings "NaN",
    "Infinity", "-Infinity" (JSON has no such numbers).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _NONFINITE[str(value)]
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return _NONFINITE.get(str(float(value)), "NaN")
        as_float = float(value)
        return as_float if decimal.Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_json(v) for v in value]
    return str(value)


_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
