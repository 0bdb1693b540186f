"""OpenTelemetry traces of every gateway call and MCP tool call, with nothing on the request path.

The request path only notes when each stage began and ended (``sophia.observe.context.CallTrace``:
admission, cache lookup, routing, each provider attempt, the stream), and the ledger keeps that with
the call's row (column ``trace_detail``, written in the same batch insert). From there:

* **The local store** (always, for the dashboard): ``SpanStore.trace`` rebuilds a trace's spans from
  its ledger rows with ``SpanBuilder`` (ids are derived from the call, so they are the spans that
  were exported), plus what other instrumentation in the process emitted (table ``sophia_spans``).
  The stages are dropped from rows older than ``observe.span_retention_days``.
* **OTLP** (``observe.otlp_endpoint``, or the standard ``OTEL_EXPORTER_OTLP_*`` variables; HTTP or
  gRPC): each batch the ledger writes goes, as its rows (a ledger row observer), to the export process
  (``sophia.observe.exporter``) that builds, redacts, encodes and sends the spans in batches of 512 on
  another core. With content capture on, ``Tracer.observe`` does that on a thread here instead (the
  rows hold no content). Spans carry the ledger's own figures, cost as the same integer nano-dollars.

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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from sophia.accounts.ledger import UsageRecord
from sophia.errors import StorageError
from sophia.observe.exporter import ExportProcess, Shipper
from sophia.observe.otlp import GrpcSender, HttpSender, Sender
from sophia.observe.redact import RedactingExporter, Redactor
from sophia.observe.spanbuild import SpanBuilder, default_resource, latest_genai_conventions
from sophia.observe.spans import LocalSpanExporter, SpanStore
from sophia.secrets.mask import known_from_settings

if TYPE_CHECKING:
    from sophia.settings import Settings
    from sophia.storage import Database

log = logging.getLogger(__name__)
#: record batches waiting for the export thread before new ones are dropped (a collector that is down)
MAX_BACKLOG = 64
EXPORT_BATCH = 512


def otlp_target(endpoint: str | None, protocol: str) -> tuple[str, str] | None:
    """(URL, protocol) of the collector: the setting, else the standard variables (the generic
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` gets ``/v1/traces`` for HTTP, as the specification says)."""
    if endpoint is not None:
        return endpoint, protocol
    env = os.environ
    env_protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if env_protocol:
        protocol = "grpc" if env_protocol == "grpc" else "http/protobuf"
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if traces:
        return traces, protocol
    generic = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not generic:
        return None
    return (generic if protocol == "grpc" else generic.rstrip("/") + "/v1/traces"), protocol


def _env_headers() -> dict[str, str]:
    raw = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        or os.environ.get("OTEL_EXPORTER_OTLP_HEADERS")
        or ""
    )
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {unquote(name.strip()): unquote(value.strip()) for name, value in pairs}


def collector(
    endpoint: str | None, protocol: str, headers: dict[str, str]
) -> tuple[str, str, dict[str, str]] | None:
    """(URL, protocol, headers) of the collector the settings name, else the standard variables'."""
    target = otlp_target(endpoint, protocol)
    if target is None:
        return None
    url, protocol = target
    return url, protocol, headers if endpoint is not None else {**_env_headers(), **headers}


def otlp_sender(endpoint: str | None, protocol: str, headers: dict[str, str]) -> Sender | None:
    """The sender of Sophia's own spans to the collector the settings (or variables) name, or None."""
    found = collector(endpoint, protocol, headers)
    if found is None:
        return None
    url, protocol, headers = found
    return GrpcSender(url, headers) if protocol == "grpc" else HttpSender(url, headers)


def export_process(
    endpoint: str | None, protocol: str, headers: dict[str, str], builder: SpanBuilder, redactor: Redactor
) -> ExportProcess | None:
    """The export process for the collector the settings (or variables) name, or None (not started
    until the first spans; its configuration, secrets included, travels over its stdin)."""
    found = collector(endpoint, protocol, headers)
    if found is None:
        return None
    url, protocol, headers = found
    config = {
        "resource": dict(builder.resource.attributes),
        "latest": builder.latest,
        "endpoint": url,
        "protocol": protocol,
        "headers": headers,
        "secrets": list(redactor.secrets),
        "patterns": list(redactor.patterns),
    }
    return ExportProcess(config, max_backlog=MAX_BACKLOG)


def otlp_exporter(endpoint: str | None, protocol: str, headers: dict[str, str]) -> SpanExporter | None:
    """The SDK's OTLP exporter for third-party instrumentation's spans, to the same collector."""
    found = collector(endpoint, protocol, headers)
    if found is None:
        return None
    url, protocol, headers = found
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=url, headers=headers or None, insecure=not url.startswith("https://"))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=url, headers=headers or None)


class Tracer:
    """Sends the spans of the ledger's records over OTLP from a thread of its own; holds the process's
    tracer provider for third-party instrumentation (its spans: the local store and OTLP, redacted)."""

    def __init__(
        self,
        builder: SpanBuilder,
        redactor: Redactor,
        *,
        sender: Sender | None = None,
        process: ExportProcess | None = None,
        third_party: SpanExporter | None = None,
        store: SpanStore | None = None,
        local: LocalSpanExporter | None = None,
    ) -> None:
        self.builder = builder
        self.redactor = redactor
        #: Sophia's own spans, built and sent on a thread here (with content capture) ...
        self.remote = Shipper(builder, redactor, sender) if sender is not None else None
        self.process = process  # ... or in the export process (the default: no content to send)
        resource = builder.resource
        self.store = store
        self.local = local
        self.provider = TracerProvider(resource=resource)  # third-party spans, through the SDK's exporters
        for exporter in (local, third_party):
            if exporter is not None:
                self.provider.add_span_processor(BatchSpanProcessor(RedactingExporter(exporter, redactor)))
        self.dropped = 0  # ... never sent: the export thread was too far behind
        self._queue: queue.SimpleQueue[Sequence[UsageRecord] | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ledgers: list[Any] = []

    @classmethod
    async def open(cls, settings: Settings, db: Database | str, *, service: str = "sophia") -> Tracer:
        """The tracer the settings describe; the local store lives in ``db`` (the ledger's database)."""
        observe = settings.observe
        resource = default_resource(service, observe.project)
        builder = SpanBuilder(
            resource, latest=latest_genai_conventions(), capture_content=observe.capture_content
        )
        store = await SpanStore.open(db, retention=observe.span_retention_days * 86400, builder=builder)
        headers = {name: value.get_secret_value() for name, value in observe.otlp_headers.items()}
        redactor = Redactor(
            capture_content=observe.capture_content,
            secrets=known_from_settings(settings),
            patterns=observe.redact_patterns,
        )
        endpoint, protocol = observe.otlp_endpoint, observe.otlp_protocol
        # Content lives only in memory (never in the ledger's rows): with capture on, spans are built here.
        in_process = observe.capture_content
        return cls(
            builder,
            redactor,
            sender=otlp_sender(endpoint, protocol, headers) if in_process else None,
            process=None if in_process else export_process(endpoint, protocol, headers, builder, redactor),
            third_party=otlp_exporter(observe.otlp_endpoint, observe.otlp_protocol, headers),
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
        """Send what ``ledger`` writes from now on (when there is a collector); flush it at close."""
        if self.remote is not None and self.observe not in ledger.observers:
            ledger.observers.append(self.observe)
        if self.process is not None and self.process.submit not in ledger.row_observers:
            ledger.row_observers.append(self.process.submit)
        if ledger not in self._ledgers:
            self._ledgers.append(ledger)

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
        remote = self.remote
        assert remote is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            remote.ship(item)

    def _drain(self, wait: float) -> bool:
        """Block until the export thread has handled everything queued before now."""
        if self._thread is None or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(wait)

    async def flush(self, wait: float = 30.0) -> bool:
        """Send everything built so far (off the event loop, which the local store needs)."""
        drained = await asyncio.to_thread(self._drain, wait)
        if self.process is not None:
            drained = await asyncio.to_thread(self.process.flush, wait) and drained
        flushed = await asyncio.to_thread(self.provider.force_flush, int(wait * 1000))
        await self._local_writes()
        return drained and bool(flushed)

    async def _local_writes(self) -> None:
        if self.local is not None and self.local.pending:
            await asyncio.gather(*self.local.pending, return_exceptions=True)

    async def close(self) -> None:
        """Trace what the ledgers still hold, send everything, and stop."""
        for ledger in self._ledgers:
            try:
                await ledger.flush()
            except StorageError as exc:
                log.warning("the last usage records were not written, so not traced: %s", exc)
            if self.observe in ledger.observers:
                ledger.observers.remove(self.observe)
            if self.process is not None and self.process.submit in ledger.row_observers:
                ledger.row_observers.remove(self.process.submit)
        self._ledgers.clear()
        await self.flush()
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join, 30.0)
        await asyncio.to_thread(self.provider.shutdown)  # and the SDK's exporters with it
        if self.remote is not None:
            self.remote.sender.close()
        if self.process is not None:
            await asyncio.to_thread(self.process.close)
        await self._local_writes()
        if self.store is not None:
            await self.store.close()
