"""The Warehouse facade: governed, read-only, paged and cached access to one warehouse backend.

The contract is docs/business-intelligence.md: ``datasets()``, ``describe(table)``, ``query(sql,
limit=, cursor=)``, ``loaded(tables)``, ``dialect``, ``close()``. Every statement goes through the
guard, runs on the backend's read-only connection as a page of at most ``warehouse.max_rows`` rows,
and its result is cached against the data versions of the tables it read (``DataVersions``, in
Sophia's database, so a load in any process invalidates it).

A cursor is opaque to callers: it encodes the next offset and a hash of the normalised statement,
and is refused with any other statement. A DuckDB file replaced by a load is seen after
``reopen``, which ``query`` does by itself when it sees a data version it has not opened.
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

from sophia.errors import InvalidRequest
from sophia.settings.warehouse import WarehouseSettings
from sophia.warehouse.backends.base import Backend, Column, JSONValue
from sophia.warehouse.guard import Checked, check
from sophia.warehouse.results import QueryResult, ResultCache
from sophia.warehouse.versions import DataVersions

OnLoaded = Callable[[list[str]], Awaitable[None]]


@dataclass(frozen=True)
class TableInfo:
    name: str
    rows: int
    columns: list[Column]
    description: str | None = None


@dataclass(frozen=True)
class TableDescription:
    name: str
    rows: int
    columns: list[Column]
    sample: list[list[JSONValue]]


class Warehouse:
    def __init__(
        self,
        backend: Backend,
        settings: WarehouseSettings,
        *,
        versions: DataVersions | None = None,
        on_loaded: OnLoaded | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self._checked: dict[
            str, Checked
        ] = {}  # statement text -> the guard's verdict (insertion order: FIFO)
        self.versions = versions
        self.on_loaded = on_loaded
        self.results = ResultCache(max_entries=settings.cache_entries, max_bytes=settings.cache_bytes)
        self._opened_at: dict[str, int] | None = None  # the versions the backend's connection has seen
        self._reopening = asyncio.Lock()

    @property
    def dialect(self) -> str:
        return self.backend.dialect

    # -- catalog --------------------------------------------------------------------------------

    async def datasets(self) -> list[TableInfo]:
        await self._current_versions()
        return [
            TableInfo(name, await self.backend.row_count(name), await self.backend.columns(name))
            for name in await self.backend.tables()
        ]

    async def describe(self, table: str, sample_rows: int = 5) -> TableDescription:
        await self._current_versions()
        name = await self._known_table(table)
        columns = await self.backend.columns(name)
        page = await self.backend.query(
            f"SELECT * FROM {self.backend.quote(name)}", limit=max(sample_rows, 0)
        )
        return TableDescription(
            name, await self.backend.row_count(name), columns, page.rows if sample_rows else []
        )

    async def _known_table(self, table: str) -> str:
        tables = await self.backend.tables()
        by_lower = {t.lower(): t for t in tables}
        if table.lower() in by_lower:
            return by_lower[table.lower()]
        near = difflib.get_close_matches(table.lower(), list(by_lower), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(by_lower[n] for n in near)}?" if near else ""
        listed = ", ".join(tables[:30]) + (" …" if len(tables) > 30 else "")
        raise InvalidRequest(
            f"unknown table {table!r}{hint} (tables: {listed})", code="unknown_table", param="table"
        )

    # -- queries --------------------------------------------------------------------------------

    async def query(self, sql: str, *, limit: int | None = None, cursor: str | None = None) -> QueryResult:
        """One page of ``sql`` (``QueryRefused`` if the guard refuses it, ``query_failed`` if the engine does)."""
        started = time.perf_counter()
        page_size = self._page_size(limit)
        if not self.backend.guard:  # the connection-layer tests: no guard, no cache
            raw = await self.backend.query(sql, limit=page_size)
            return self._result(raw.columns, raw.rows, raw.truncated, raw.sql, [], None, started, "miss")
        checked = self._check(sql)
        offset = _decode_cursor(cursor, checked) if cursor else 0
        current = await self._current_versions()
        versions = _versions_read(checked, current)
        key = (checked.sql, page_size, offset)
        if self.versions is not None:
            hit = self.results.get(key, versions)
            if hit is not None:
                return replace(hit, cache="hit", elapsed_ms=_ms(started))
        page = await self.backend.query_checked(checked, limit=page_size, offset=offset)
        next_cursor = _encode_cursor(offset + page_size, checked) if page.truncated else None
        result = self._result(
            page.columns,
            page.rows,
            page.truncated,
            page.sql,
            list(checked.tables),
            next_cursor,
            started,
            "miss",
        )
        if self.versions is not None:
            self.results.put(key, versions, result)
        return result

    def _check(self, sql: str) -> Checked:
        """The guard's verdict on ``sql``, remembered for the last ``CHECKED_MEMO`` texts accepted: a
        repeated statement (a dashboard's, a result-cache hit) skips sqlglot (1-2 ms of a 2.5 ms hit)."""
        checked = self._checked.get(sql)
        if checked is None:
            checked = check(sql, self.dialect)
            if len(self._checked) >= CHECKED_MEMO:
                self._checked.pop(next(iter(self._checked)))
            self._checked[sql] = checked
        return checked

    def _page_size(self, limit: int | None) -> int:
        if limit is None:
            return min(self.settings.row_limit, self.settings.max_rows)
        if limit < 1:
            raise InvalidRequest("limit must be at least 1", param="limit")
        return min(limit, self.settings.max_rows)

    @staticmethod
    def _result(
        columns: list[Column],
        rows: list[list[JSONValue]],
        truncated: bool,
        sql: str,
        tables: list[str],
        next_cursor: str | None,
        started: float,
        cache: str,
    ) -> QueryResult:
        return QueryResult(columns, rows, len(rows), truncated, next_cursor, sql, _ms(started), cache, tables)

    async def _current_versions(self) -> dict[str, int]:
        """The data versions now; the backend is reopened first if it has not seen them."""
        if self.versions is None:
            return {}
        current = await self.versions.current()
        if self._opened_at != current and (self.backend.reopen_on_load or self._opened_at is None):
            async with self._reopening:
                if self._opened_at != current:
                    if self.backend.reopen_on_load:
                        await self.backend.reopen()  # after reading the versions: it sees at least these
                    self._opened_at = dict(current)
        return current

    # -- loads ----------------------------------------------------------------------------------

    async def loaded(self, tables: Iterable[str]) -> dict[str, int]:
        """A load changed ``tables``: bump their data versions, then the gateway cache's tags."""
        names = sorted({t.lower() for t in tables})
        bumped = await self.versions.bump(names) if self.versions is not None else {}
        if self.on_loaded is not None and names:
            await self.on_loaded(names)
        return bumped

    async def reopen(self) -> None:
        await self.backend.reopen()

    async def close(self) -> None:
        self.results.clear()
        await self.backend.close()


#: the version of "any table": the sum of all versions grows with every load
CHECKED_MEMO = 1024  #: guard verdicts remembered per warehouse

ANY_TABLE = "*"


def _versions_read(checked: Checked, current: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """The data versions a result depends on: those of its tables; for the catalog (SHOW,
    information_schema), which any load may change, the version of any table."""
    versions = {t: current.get(t, 0) for t in checked.tables if "." not in t}
    if checked.kind == "show" or len(versions) < len(checked.tables):
        versions[ANY_TABLE] = sum(current.values())
    return tuple(sorted(versions.items()))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _statement_hash(checked: Checked) -> str:
    return hashlib.sha256(f"{checked.dialect}\0{checked.sql}".encode()).hexdigest()[:16]


def _encode_cursor(offset: int, checked: Checked) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{_statement_hash(checked)}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, checked: Checked) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset_text, digest = text.split(":", 1)
        offset = int(offset_text)
    except ValueError:
        raise InvalidRequest(
            "the cursor is not one this warehouse issued", code="invalid_cursor", param="cursor"
        ) from None
    if digest != _statement_hash(checked) or offset < 0:
        raise InvalidRequest(
            "the cursor belongs to another statement: pass it with the statement that returned it",
            code="invalid_cursor",
            param="cursor",
        )
    return offset
