"""OpenTelemetry traces of every gateway call and MCP tool call, with nothing on the request path.

The request path only notes when each stage began and ended (``sophia.observe.context.CallTrace``:
admission, cache lookup, routing, each provider attempt, the stream), and the ledger keeps that with
the call's row (column ``trace_detail``, written in the same batch insert). From there:

* **The local store** (always, for the dashboard): ``SpanStore.trace`` rebuilds a trace's spans from
  its ledger rows with ``SpanBuilder`` (ids are derived from the call, so they are the spans that
  were exported), plus what other instrumentation in the process emitted (table ``sophia_spans``).
  The stages are dropped from rows older than ``observe.span_retention_days``.
* **OTLP** (``observe.otlp_endpoint``, or the standard ``OTEL_EXPORTER_OTLP_*`` variables; HTTP or
  gRPC): ``Tracer.observe`` is a ledger observer; each written batch goes, as one queue item, to an
  export thread that builds the spans, redacts them and sends them in batches of 512. Spans carry the
  ledger's own figures, cost as the same integer nano-dollars.

Content (prompts, answers) is off unless ``observe.capture_content``, and then only sent over OTLP,
never kept in the ledger. Every exported span, ours or third-party instrumentation's (through
``Tracer.provider``, which ``sophia run`` makes the global provider), passes a ``Redactor`` first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from pydantic import BaseModel, SecretStr

from sophia.accounts.ledger import UsageRecord
from sophia.errors import StorageError
from sophia.observe.redact import RedactingExporter, Redactor
from sophia.observe.spanbuild import SpanBuilder, default_resource, latest_genai_conventions
from sophia.observe.spans import LocalSpanExporter, SpanStore

if TYPE_CHECKING:
    from sophia.settings import Settings
    from sophia.storage import Database

log = logging.getLogger(__name__)
#: record batches waiting for the export thread before new ones are dropped (a collector that is down)
MAX_BACKLOG = 64
EXPORT_BATCH = 512


def configured_secrets(model: Any) -> Iterator[str]:
    """Every secret value in a settings tree (provider keys, webhook URLs, OTLP headers ...)."""
    if isinstance(model, SecretStr):
        yield model.get_secret_value()
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            yield from configured_secrets(getattr(model, name))
    elif isinstance(model, dict):
        for value in model.values():
            yield from configured_secrets(value)
    elif isinstance(model, list | tuple):
        for value in model:
            yield from configured_secrets(value)


def otlp_exporter(endpoint: str | None, protocol: str, headers: dict[str, str]) -> SpanExporter | None:
    """The OTLP exporter the settings (or the standard ``OTEL_EXPORTER_OTLP_*`` variables) ask for."""
    env_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if endpoint is None and not env_endpoint:
        return None
    if endpoint is None:
        protocol = (
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or protocol
        )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        insecure = endpoint.startswith("http://") if endpoint else None
        return GrpcExporter(endpoint=endpoint, headers=headers or None, insecure=insecure)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=endpoint, headers=headers or None)


class Tracer:
    """Exports the spans of the ledger's records over OTLP off the event loop; holds the process's
    tracer provider for third-party instrumentation (its spans: local store and OTLP, redacted)."""

    def __init__(
        self,
        builder: SpanBuilder,
        redactor: Redactor,
        *,
        remote: SpanExporter | None = None,
        store: SpanStore | None = None,
        local: LocalSpanExporter | None = None,
    ) -> None:
        self.builder = builder
        self.redactor = redactor
        self.remote = RedactingExporter(remote, redactor) if remote is not None else None
        self.store = store
        self.local = local
        self.provider = TracerProvider(resource=builder.resource)
        for exporter in (local, remote):
            if exporter is not None:
                self.provider.add_span_processor(BatchSpanProcessor(RedactingExporter(exporter, redactor)))
        self.exported = 0  # spans of ledger records sent over OTLP
        self.dropped = 0  # ... and dropped: the export thread was too far behind
        self._queue: queue.SimpleQueue[Sequence[UsageRecord] | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ledgers: list[Any] = []

    @classmethod
    async def open(cls, settings: Settings, db: Database | str, *, service: str = "sophia") -> Tracer:
        """The tracer the settings describe; the local store lives in ``db`` (the ledger's database)."""
        observe = settings.observe
        resource = default_resource(service, observe.project)
        store = await SpanStore.open(db, retention=observe.span_retention_days * 86400)
        headers = {name: value.get_secret_value() for name, value in observe.otlp_headers.items()}
        redactor = Redactor(
            capture_content=observe.capture_content,
            secrets=configured_secrets(settings),
            patterns=observe.redact_patterns,
        )
        builder = SpanBuilder(
            resource, latest=latest_genai_conventions(), capture_content=observe.capture_content
        )
        store.builder = builder
        return cls(
            builder,
            redactor,
            remote=otlp_exporter(observe.otlp_endpoint, observe.otlp_protocol, headers),
            store=store,
            local=LocalSpanExporter(store, asyncio.get_running_loop()),
        )

    def install_global(self) -> bool:
        """Make ``provider`` the process's global tracer provider, unless the application set one."""
        from opentelemetry import trace

        if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            return False
        trace.set_tracer_provider(self.provider)
        return True

    def attach(self, ledger: Any) -> None:
        """Export what ``ledger`` writes from now on (only when there is somewhere to export to)."""
        if self.remote is not None and self.observe not in ledger.observers:
            ledger.observers.append(self.observe)
            self._ledgers.append(ledger)
        elif self.remote is None:
            self._ledgers.append(ledger)  # flushed at close, so its last rows carry their stages

    def observe(self, records: Sequence[UsageRecord]) -> None:
        """A ledger observer: one queue item per written batch (never blocks, never raises)."""
        if self.remote is None:
            return
        if self._queue.qsize() >= MAX_BACKLOG:
            self.dropped += sum(1 for rec in records if rec.trace_id)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._export_loop, name="sophia-otlp", daemon=True)
            self._thread.start()
        self._queue.put(records)

    def _export_loop(self) -> None:
        assert self.remote is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            spans: list[ReadableSpan] = []
            for rec in item:
                try:
                    spans.extend(self.builder.spans(rec))
                except Exception:
                    log.exception("could not build the spans of %s", rec.request_id)
            for start in range(0, len(spans), EXPORT_BATCH):
                chunk = spans[start : start + EXPORT_BATCH]
                try:
                    self.remote.export(chunk)
                    self.exported += len(chunk)
                except Exception as exc:  # noqa: BLE001 - the exporter logs; the thread must live on
                    log.warning("span export failed: %s", exc)

    def _drain(self, wait: float) -> bool:
        """Block until the export thread has handled everything queued before now."""
        if self._thread is None or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(wait)

    async def flush(self, wait: float = 30.0) -> bool:
        """Export everything built so far (off the event loop, which the local store needs)."""
        drained = await asyncio.to_thread(self._drain, wait)
        flushed = await asyncio.to_thread(self.provider.force_flush, int(wait * 1000))
        await self._local_writes()
        return drained and bool(flushed)

    async def _local_writes(self) -> None:
        if self.local is not None and self.local.pending:
            await asyncio.gather(*self.local.pending, return_exceptions=True)

    async def close(self) -> None:
        """Trace what the ledgers still hold, export everything, and stop."""
        for ledger in self._ledgers:
            try:
                await ledger.flush()
            except StorageError as exc:
                log.warning("the last usage records were not written, so not traced: %s", exc)
            if self.observe in ledger.observers:
                ledger.observers.remove(self.observe)
        self._ledgers.clear()
        await self.flush()
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join, 30.0)
        await asyncio.to_thread(self.provider.shutdown)  # and the exporters with it
        await self._local_writes()
        if self.store is not None:
            await self.store.close()
