"""The usage ledger: one row per call (gateway or MCP tool), written in batches off the hot path.

``Ledger.record`` only appends to an in-memory buffer; a background task writes the buffer in
batches, one transaction each, every ``flush_interval`` seconds or as soon as ``batch_size`` records
wait. A crash loses at most what was not yet flushed; SQLite (WAL) and PostgreSQL recover the rest.
While the database is down the buffer keeps up to 50 batches, then drops the oldest records.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

import orjson

from sophia.accounts.limits import NANOS
from sophia.errors import InvalidRequest, StorageError
from sophia.storage import Database, open_with_schema

log = logging.getLogger(__name__)


_ID_PREFIX = "req_" + secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A ledger row's request id: unique per process start (random prefix) and cheap (no system call)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


@dataclass(slots=True)
class UsageRecord:
    ts: float  # epoch seconds when the call started
    request_id: str
    key_id: str | None
    team: str
    endpoint: str  # "chat", "embeddings", "mcp:<server>/<tool>"
    requested_model: str
    served_model: str | None
    provider: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_nanos: int  # the call's cost in integer nano-dollars: the one figure ledger, spans and metrics share
    latency_ms: float
    ttft_ms: float | None
    cache: str  # "miss" | "exact" | "semantic" | "bypass" | "check" (a would-be hit withheld and checked)
    saved_nanos: int = 0  # what a cache hit saved, nano-dollars
    outcome: str = "ok"  # "ok" | "error" | "cancelled"
    error_class: str | None = None
    status: int = 200
    attempts: int = 1
    route: str | None = None  # why this model
    task_type: str | None = None
    metadata: dict[str, Any] | None = None
    cache_entry: str | None = None  # the cache entry that answered (cache "exact" or "semantic")
    estimated: bool = False  # tokens estimated by the gateway (the provider's usage never arrived)
    trace_id: str | None = None  # 32 hex digits: the call's trace (W3C trace context)
    #: how the call went, stage by stage (``sophia.observe.context.CallTrace``), when tracing is on;
    #: kept as its ``encode()`` in the column ``trace_detail`` (the spans are rebuilt from it)
    trace: Any = None

    @property
    def cost_usd(self) -> float:
        return self.cost_nanos / NANOS

    @property
    def saved_usd(self) -> float:
        return self.saved_nanos / NANOS


#: the columns a record fills (``trace`` is not kept); ``cost_usd`` and ``saved_usd`` are derived from the
#: nano-dollars for readers that want dollars (the same figure, never computed apart)
COLUMNS = (
    *(f.name for f in fields(UsageRecord) if f.name != "trace"),
    "cost_usd",
    "saved_usd",
    "trace_detail",
)
_INT = frozenset(
    {"prompt_tokens", "completion_tokens", "status", "attempts", "estimated", "cost_nanos", "saved_nanos"}
)
_FLOAT = frozenset({"ts", "cost_usd", "latency_ms", "saved_usd"})

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sophia_usage (
        ts DOUBLE PRECISION NOT NULL,
        request_id TEXT NOT NULL,
        key_id TEXT,
        team TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        requested_model TEXT NOT NULL,
        served_model TEXT,
        provider TEXT,
        prompt_tokens BIGINT NOT NULL,
        completion_tokens BIGINT NOT NULL,
        cost_usd DOUBLE PRECISION NOT NULL,
        latency_ms DOUBLE PRECISION NOT NULL,
        ttft_ms DOUBLE PRECISION,
        cache TEXT NOT NULL,
        saved_usd DOUBLE PRECISION NOT NULL,
        outcome TEXT NOT NULL,
        error_class TEXT,
        status BIGINT NOT NULL,
        attempts BIGINT NOT NULL,
        route TEXT,
        task_type TEXT,
        metadata TEXT,
        cache_entry TEXT,
        estimated BIGINT NOT NULL DEFAULT 0,
        cost_nanos BIGINT NOT NULL DEFAULT 0,
        saved_nanos BIGINT NOT NULL DEFAULT 0,
        trace_id TEXT,
        trace_detail TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS sophia_usage_ts ON sophia_usage (ts)",
    "CREATE INDEX IF NOT EXISTS sophia_usage_key_ts ON sophia_usage (key_id, ts)",
)
#: made once the columns they cover exist (``Ledger.open``, after ``ADDED_COLUMNS``)
LATE_INDEXES = ("CREATE INDEX IF NOT EXISTS sophia_usage_trace ON sophia_usage (trace_id)",)
#: columns added since the table was first made, for databases created by an older release
ADDED_COLUMNS = {
    "cache_entry": "TEXT",
    "estimated": "BIGINT NOT NULL DEFAULT 0",
    "cost_nanos": "BIGINT NOT NULL DEFAULT 0",
    "saved_nanos": "BIGINT NOT NULL DEFAULT 0",
    "trace_id": "TEXT",
    "trace_detail": "TEXT",
}
#: rows written before cost was kept in nano-dollars get it from their dollars, once (when the column arrives)
_BACKFILL_NANOS = (
    "UPDATE sophia_usage SET cost_nanos = CAST(ROUND(cost_usd * 1000000000) AS BIGINT), "
    "saved_nanos = CAST(ROUND(saved_usd * 1000000000) AS BIGINT)"
)
_INSERT = f"INSERT INTO sophia_usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

#: a report's grouping names (the MCP tools' schemas list them from here)
GroupBy = Literal[
    "model", "requested_model", "provider", "team", "key", "task_type", "endpoint", "cache", "day"
]
#: report groups -> column expression (whitelisted: user text never reaches SQL)
GROUPS: dict[GroupBy, str | None] = {
    "model": "served_model",
    "requested_model": "requested_model",
    "provider": "provider",
    "team": "team",
    "key": "key_id",
    "task_type": "task_type",
    "endpoint": "endpoint",
    "cache": "cache",
    "day": None,  # per dialect, below
}
assert set(GROUPS) == set(get_args(GroupBy)), "every report group has a column"
_DAY = {
    "sqlite": "strftime('%Y-%m-%d', ts, 'unixepoch')",
    "postgresql": "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}
_METRICS = (
    "COUNT(*) AS requests, SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END) AS errors, "
    "SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, "
    "SUM(cost_nanos) AS cost_nanos, SUM(saved_nanos) AS saved_nanos, AVG(latency_ms) AS avg_latency_ms"
)
_INT_METRICS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost_nanos", "saved_nanos")
_FLOAT_METRICS = ("avg_latency_ms",)
_WARN_EVERY = 60.0


def row_of(rec: UsageRecord) -> tuple[Any, ...]:
    """A record as a row of parameters, with the types each column wants (asyncpg is strict)."""
    if type(rec.cost_nanos) is not int or type(rec.saved_nanos) is not int:
        raise TypeError("cost_nanos and saved_nanos are integer nano-dollars")
    trace = rec.trace
    values = [getattr(rec, name) for name in COLUMNS[:-1]]
    values.append(trace.encode() if trace is not None else None)
    for i, name in enumerate(COLUMNS):
        value = values[i]
        if name in _INT:
            values[i] = int(value)
        elif name in _FLOAT:
            values[i] = float(value)
        elif name == "ttft_ms":
            values[i] = None if value is None else float(value)
        elif name == "metadata":
            values[i] = None if value is None else orjson.dumps(value, default=str).decode()
        elif value is not None:
            values[i] = str(value)
    return tuple(values)


class Ledger:
    """Usage records, buffered in memory and written in batches."""

    def __init__(
        self, db: Database, batch_size: int = 256, flush_interval: float = 0.5, *, owns_db: bool = False
    ) -> None:
        self.db = db
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.max_buffer = 50 * self.batch_size
        self.dropped = 0  # records lost because the buffer overflowed or could not be written
        self._owns_db = owns_db
        self._buffer: deque[UsageRecord] = deque()
        self._lock = asyncio.Lock()  # one writer at a time; spend() reads between writes
        self._writing: asyncio.Task[StorageError | None] | None = None
        self._wake = asyncio.Event()  # a batch is waiting, or close() was called
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_drop_warning = self._last_failure_warning = float("-inf")
        #: called with each batch once it is written (off the request path): metrics count what the ledger keeps
        self.observers: list[Callable[[Sequence[UsageRecord]], None]] = []
        #: the same, given the batch as the rows written (``row_of``, in ``COLUMNS`` order): no second encoding
        self.row_observers: list[Callable[[Sequence[tuple[Any, ...]]], None]] = []

    @classmethod
    async def open(
        cls, database: str | Database, batch_size: int = 256, flush_interval: float = 0.5
    ) -> Ledger:
        """Open by URL (the ledger owns the connection) or on a shared ``Database`` (it does not)."""
        db, owned = await open_with_schema(database, SCHEMA)
        try:
            try:
                await db.fetchall("SELECT cost_nanos FROM sophia_usage WHERE 1 = 0")
                backfill = False
            except StorageError:
                backfill = True  # a ledger from before nano-dollars
            await db.ensure_columns("sophia_usage", ADDED_COLUMNS)
            await db.migrate(LATE_INDEXES)
            if backfill:
                await db.execute(_BACKFILL_NANOS)
        except BaseException:
            if owned:
                await db.close()
            raise
        return cls(db, batch_size, flush_interval, owns_db=owned)

    # -- the hot path ------------------------------------------------------------------------------

    def record(self, rec: UsageRecord) -> None:
        """Queue one record: O(1), never blocks, never raises."""
        buffer = self._buffer
        buffer.append(rec)
        if self._closed:
            self._drop(len(buffer))
        elif len(buffer) > self.max_buffer:
            self._drop(1)
        elif len(buffer) >= self.batch_size and self._task is not None:
            self._wake.set()

    def _drop(self, count: int) -> None:
        for _ in range(min(count, len(self._buffer))):
            self._buffer.popleft()
            self.dropped += 1
        now = time.monotonic()
        if now - self._last_drop_warning >= _WARN_EVERY:
            self._last_drop_warning = now
            why = (
                "the ledger is closed"
                if self._closed
                else "the usage buffer is full (is the database down, or was start() not called?)"
            )
            log.warning("dropping usage records: %s; %d dropped so far", why, self.dropped)

    # -- writing -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background flusher on the running event loop."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._flusher(), name="sophia-ledger")

    async def _flusher(self) -> None:
        delay, failing = self.flush_interval, False
        while not self._stop.is_set():
            # Normally wake on a full batch or the interval; after a failure wait out the backoff.
            event = self._stop if failing else self._wake
            try:
                async with asyncio.timeout(delay):
                    await event.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                await self.flush()
                delay, failing = self.flush_interval, False
            except StorageError as exc:
                delay, failing = min(max(delay * 2, 1.0), 30.0), True
                now = time.monotonic()
                if now - self._last_failure_warning >= _WARN_EVERY:
                    self._last_failure_warning = now
                    log.warning("usage ledger write failed (%d records waiting, retry in %.0fs): %s",
                                len(self._buffer), delay, exc)  # fmt: skip

    async def flush(self) -> int:
        """Write what is buffered now, batch by batch; return how many records were written.

        Raises StorageError (the unwritten records stay buffered). Records that arrive meanwhile
        wait for the next flush, so this ends even under a steady stream of requests.
        """
        written = 0
        async with self._lock:
            await self._settle()
            remaining = len(self._buffer)
            while remaining > 0 and self._buffer:
                size = min(self.batch_size, remaining, len(self._buffer))
                batch = [self._buffer.popleft() for _ in range(size)]
                remaining -= size
                # The write runs as its own task: a cancelled caller cannot cut a batch in half.
                self._writing = asyncio.ensure_future(self._write(batch))
                error = await asyncio.shield(self._writing)
                self._writing = None
                if error is not None:
                    raise error
                written += len(batch)
        return written

    async def _settle(self) -> None:
        """Wait for a write whose caller was cancelled (its failure already re-queued its batch)."""
        if self._writing is not None:
            await asyncio.shield(self._writing)
            self._writing = None

    async def _write(self, batch: list[UsageRecord]) -> StorageError | None:
        good, rows = [], []
        for rec in batch:
            try:
                rows.append(row_of(rec))
                good.append(rec)
            except (TypeError, ValueError) as exc:
                self.dropped += 1
                log.error("dropping malformed usage record %r: %s", getattr(rec, "request_id", rec), exc)
        if not rows:
            return None
        try:
            await self.db.executemany(_INSERT, rows)
        except StorageError as exc:
            self._buffer.extendleft(reversed(good))  # back in front, oldest first
            if len(self._buffer) > self.max_buffer:
                self._drop(len(self._buffer) - self.max_buffer)
            return exc
        for observer in self.observers:
            try:
                observer(good)
            except Exception:
                log.exception("a usage observer failed")
        for row_observer in self.row_observers:
            try:
                row_observer(rows)
            except Exception:
                log.exception("a usage observer failed")
        return None

    async def close(self) -> None:
        """Stop the flusher, write what is left (logging what cannot be written) and close."""
        if self._closed:
            return
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        try:
            await self.flush()
        except StorageError as exc:
            log.error("usage ledger closed with %d unwritten records: %s", len(self._buffer), exc)
        self._closed = True
        if self._buffer:
            self._drop(len(self._buffer))
        if self._owns_db:
            await self.db.close()

    # -- queries -------------------------------------------------------------------------------

    async def spend(self, key_id: str, since: float) -> float:
        """USD spent by ``key_id`` from ``since`` (epoch seconds), including records not yet flushed."""
        async with self._lock:  # no write in flight: every record is either in the table or buffered
            await self._settle()
            row = await self.db.fetchone(
                "SELECT COALESCE(SUM(cost_nanos), 0) AS spent FROM sophia_usage WHERE key_id = ? AND ts >= ?",
                [key_id, float(since)],
            )
            pending = sum(r.cost_nanos for r in self._buffer if r.key_id == key_id and r.ts >= since)
        return (int(row["spent"] if row else 0) + pending) / NANOS

    async def rows(
        self, since: float, until: float | None = None, endpoint: str = "chat"
    ) -> list[dict[str, Any]]:
        """Raw records of one endpoint in a period, for usage analysis (``sophia usage --recommend``)."""
        await self.flush()
        where, params = "ts >= ? AND endpoint = ?", [float(since), endpoint]
        if until is not None:
            where, params = where + " AND ts < ?", [*params, float(until)]
        return await self.db.fetchall(
            "SELECT ts, task_type, served_model, cost_nanos, cost_usd, outcome, cache, metadata "
            f"FROM sophia_usage WHERE {where} ORDER BY ts",
            params,
        )

    async def find(self, request_id: str) -> dict[str, Any] | None:
        """The record of one request (None if unknown)."""
        await self.flush()
        return await self.db.fetchone(
            "SELECT ts, request_id, key_id, team, requested_model, served_model, cache, cache_entry, saved_usd, "
            "saved_nanos, cost_nanos, route, outcome, trace_id "
            "FROM sophia_usage WHERE request_id = ?",
            [request_id],
        )

    async def report(
        self, since: float, until: float | None = None, group_by: Sequence[str] = ("model",)
    ) -> list[dict[str, Any]]:
        """Requests, errors, tokens, cost, savings and mean latency per group, most expensive first."""
        groups = list(dict.fromkeys(group_by))
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise InvalidRequest(
                f"group_by must be among {', '.join(GROUPS)}; not {', '.join(map(str, unknown))}",
                param="group_by",
            )
        await self.flush()
        select = [f'{GROUPS[g] or _DAY[self.db.dialect]} AS "{g}"' for g in groups]  # type: ignore[index]
        where, params = "ts >= ?", [float(since)]
        if until is not None:
            where, params = where + " AND ts < ?", [*params, float(until)]
        group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(groups)))}" if groups else ""
        cost_column = len(groups) + 5  # position of cost_nanos in the select list
        order = [str(i + 1) for i in range(len(groups))]  # ties: by the group values
        sql = (
            f"SELECT {', '.join([*select, _METRICS])} FROM sophia_usage WHERE {where}{group} "
            f"ORDER BY {', '.join([f'{cost_column} DESC', f'{len(groups) + 1} DESC', *order])}"
        )
        rows = [row for row in await self.db.fetchall(sql, params) if row["requests"]]
        for row in rows:
            for name in _INT_METRICS:
                row[name] = int(row[name] or 0)
            for name in _FLOAT_METRICS:
                row[name] = float(row[name] or 0.0)
            row["cost_usd"] = row["cost_nanos"] / NANOS
            row["saved_usd"] = row["saved_nanos"] / NANOS
        return rows
