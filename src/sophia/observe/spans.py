"""The local span store: the traces the dashboard shows, kept in Sophia's own database with a retention.

``SpanStore`` is the embedded default behind ``LocalSpanExporter``, an OpenTelemetry ``SpanExporter``
like any other: the spans it keeps are exactly what the OTLP exporters send (redacted the same way),
including spans third-party instrumentation emits inside the process. Table ``sophia_spans`` (SQLite
or PostgreSQL, beside the ledger); spans older than ``retention`` seconds are deleted as new ones
arrive (at most once a minute).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

from sophia.accounts.ledger import UsageRecord
from sophia.observe.context import CallTrace
from sophia.observe.spanbuild import SpanBuilder, SpanData, default_resource, latest_genai_conventions
from sophia.storage import Database, open_with_schema

log = logging.getLogger(__name__)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sophia_spans (
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        parent_id TEXT,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        service TEXT,
        start_ns BIGINT NOT NULL,
        end_ns BIGINT NOT NULL,
        status TEXT NOT NULL,
        attributes TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS sophia_spans_trace ON sophia_spans (trace_id)",
    "CREATE INDEX IF NOT EXISTS sophia_spans_start ON sophia_spans (start_ns)",
)
_INSERT = (
    "INSERT INTO sophia_spans (trace_id, span_id, parent_id, name, kind, service, start_ns, end_ns, status, "
    "attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "trace_id, span_id, parent_id, name, kind, service, start_ns, end_ns, status, attributes"
_STATUS = {StatusCode.OK: "ok", StatusCode.ERROR: "error", StatusCode.UNSET: "unset"}
_KIND = {
    SpanKind.INTERNAL: "internal",
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
}


@dataclass(slots=True)
class StoredSpan:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_id: str | None  # None for a trace's root (or a span whose parent is in another process)
    name: str
    kind: str  # "server" | "client" | "internal" | ...
    start_ns: int  # epoch nanoseconds
    end_ns: int
    status: str  # "ok" | "error" | "unset"
    attributes: dict[str, Any]
    service: str | None = None

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    def row(self) -> tuple[Any, ...]:
        attributes = orjson.dumps(self.attributes, default=str).decode()
        return (self.trace_id, self.span_id, self.parent_id, self.name, self.kind, self.service,
                int(self.start_ns), int(self.end_ns), self.status, attributes)  # fmt: skip

    @classmethod
    def of(cls, span: ReadableSpan) -> StoredSpan:
        """An SDK span as the store keeps it."""
        ctx = span.context
        assert ctx is not None
        parent = span.parent
        service = span.resource.attributes.get("service.name") if span.resource else None
        return cls(
            trace_id=f"{ctx.trace_id:032x}",
            span_id=f"{ctx.span_id:016x}",
            parent_id=f"{parent.span_id:016x}" if parent is not None else None,
            name=span.name,
            kind=_KIND.get(span.kind, "internal"),
            start_ns=span.start_time or 0,
            end_ns=span.end_time or span.start_time or 0,
            status=_STATUS.get(span.status.status_code, "unset"),
            attributes=dict(span.attributes or {}),
            service=str(service) if service is not None else None,
        )


def _from_data(data: SpanData, service: str | None) -> StoredSpan:
    return StoredSpan(
        trace_id=f"{data.trace_id:032x}",
        span_id=f"{data.span_id:016x}",
        parent_id=f"{data.parent_id:016x}" if data.parent_id else None,
        name=data.name,
        kind=data.kind,
        start_ns=data.start_ns,
        end_ns=max(data.end_ns, data.start_ns),
        status=data.status,
        attributes=data.attributes,
        service=service,
    )


def _stored(row: dict[str, Any]) -> StoredSpan:
    return StoredSpan(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_id=row["parent_id"],
        name=row["name"],
        kind=row["kind"],
        start_ns=int(row["start_ns"]),
        end_ns=int(row["end_ns"]),
        status=row["status"],
        attributes=orjson.loads(row["attributes"]),
        service=row["service"],
    )


_RECORD_FIELDS = tuple(name for name in UsageRecord.__dataclass_fields__ if name != "trace")
_LEDGER = ", ".join((*_RECORD_FIELDS, "trace_detail"))


def record_of(row: Mapping[str, Any]) -> UsageRecord:
    """A ledger row as the record it was written from (its stages decoded)."""
    values = {name: row[name] for name in _RECORD_FIELDS}
    values["metadata"] = orjson.loads(row["metadata"]) if row["metadata"] else None
    values["estimated"] = bool(row["estimated"])
    return UsageRecord(**values, trace=CallTrace.decode(row["trace_detail"], float(row["ts"])))


class SpanStore:
    """Spans in ``sophia_spans``: written in batches, read by trace."""

    def __init__(
        self,
        db: Database,
        *,
        retention: float = 7 * 86400.0,
        owns_db: bool = False,
        builder: SpanBuilder | None = None,
    ) -> None:
        self.db = db
        self.retention = retention
        self._owns_db = owns_db
        self._pruned = 0.0
        #: rebuilds the spans of ledger rows (the tracer gives its own: same resource and conventions)
        self.builder = builder or SpanBuilder(
            default_resource(), latest=latest_genai_conventions(), capture_content=False
        )
        service = self.builder.resource.attributes.get("service.name")
        self.service = str(service) if service is not None else None

    @classmethod
    async def open(
        cls, database: str | Database, *, retention: float = 7 * 86400.0, builder: SpanBuilder | None = None
    ) -> SpanStore:
        db, owned = await open_with_schema(database, SCHEMA)
        return cls(db, retention=retention, owns_db=owned, builder=builder)

    async def add(self, spans: Sequence[StoredSpan]) -> None:
        if spans:
            await self.db.executemany(_INSERT, [span.row() for span in spans])
        now = time.time()
        if now - self._pruned >= 60.0:
            self._pruned = now
            await self.prune(now)

    async def prune(self, now: float | None = None) -> int:
        """Forget spans that started more than ``retention`` seconds before ``now``: the stored ones,
        and the stages of older ledger rows. Returns how many spans and rows were touched."""
        cutoff = (now if now is not None else time.time()) - self.retention
        dropped = await self.db.execute("DELETE FROM sophia_spans WHERE start_ns < ?", [int(cutoff * 1e9)])
        dropped += await self.db.execute(
            "UPDATE sophia_usage SET trace_detail = NULL WHERE ts < ? AND trace_detail IS NOT NULL", [cutoff]
        )
        return dropped

    async def trace(self, trace_id: str) -> list[StoredSpan]:
        """Every span of one trace, in start order ([] when unknown): rebuilt from its ledger rows,
        with any spans other instrumentation stored under it."""
        trace_id = trace_id.lower()
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM sophia_spans WHERE trace_id = ? ORDER BY start_ns, name", [trace_id]
        )
        spans = [_stored(row) for row in rows]
        ledger = await self.db.fetchall(f"SELECT {_LEDGER} FROM sophia_usage WHERE trace_id = ?", [trace_id])
        for row in ledger:
            record = record_of(row)
            if record.trace is not None:
                spans.extend(_from_data(data, self.service) for data in self.builder.spans(record))
        spans.sort(key=lambda span: (span.start_ns, span.parent_id is not None, span.name))
        return spans

    async def recent(self, limit: int = 50, *, roots_only: bool = True) -> list[StoredSpan]:
        """The latest spans (by default only traces' roots), newest first."""
        where = "WHERE parent_id IS NULL " if roots_only else ""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM sophia_spans {where}ORDER BY start_ns DESC LIMIT ?", [int(limit)]
        )
        return [_stored(row) for row in rows]

    async def close(self) -> None:
        if self._owns_db:
            await self.db.close()


class LocalSpanExporter(SpanExporter):
    """An OpenTelemetry exporter into a ``SpanStore`` that lives on an event loop.

    ``export`` runs on the batch processor's thread: it hands the batch to ``loop`` and waits for the
    write (at most ``timeout`` seconds), so a slow database slows that thread, never the requests."""

    def __init__(self, store: SpanStore, loop: asyncio.AbstractEventLoop, *, timeout: float = 10.0) -> None:
        self.store = store
        self.loop = loop
        self.timeout = timeout
        self._shutdown = False
        self.pending: set[asyncio.Task[None]] = set()  # writes started from the loop's thread

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown or self.loop.is_closed():
            return SpanExportResult.FAILURE
        rows = [StoredSpan.of(span) for span in spans]
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:  # flushed from the loop's own thread: it cannot wait for itself
            task = self.loop.create_task(self.store.add(rows))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
            return SpanExportResult.SUCCESS
        try:
            future = asyncio.run_coroutine_threadsafe(self.store.add(rows), self.loop)
            future.result(self.timeout)
        except (FutureTimeout, RuntimeError) as exc:
            log.warning("could not keep %d spans: %s", len(rows), type(exc).__name__)
            return SpanExportResult.FAILURE
        except Exception as exc:  # noqa: BLE001 - a storage failure must not kill the export thread
            log.warning("could not keep %d spans: %s", len(rows), exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._shutdown = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
