"""The OTLP export process: builds, redacts, encodes and sends the spans of ledger rows, beside the server.

Building a call's spans and encoding them costs tens of microseconds per call, as much as the gateway
spends serving it; in the server's own process that work competes with the requests for the GIL (a
thread measured 0.70x the requests/s at 8 connections). So ``Tracer`` hands each written batch, as
the ledger rows it already made (``sophia.accounts.ledger.row_of``: a few plain values and the
encoded stages), to this process over a pipe and carries on; the rows become spans here, on another
core, exactly as the local store rebuilds them.

Protocol on stdin: frames of a 4-byte little-endian length and a pickle. The first is the
configuration (dict: resource, conventions, collector, headers, secrets, patterns), then
``("rows", [row, ...])`` or ``("flush", n)``; a flush is answered on stdout with the line
``n exported failed``. End of input ends the process once what came before is sent. Run by
``Tracer`` as ``python -m sophia.observe.exporter``; not meant to be started by hand.
"""

from __future__ import annotations

import logging
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from opentelemetry.sdk.resources import Resource

from sophia.accounts.ledger import COLUMNS, UsageRecord
from sophia.observe.otlp import Encoder, GrpcSender, HttpSender, Sender, chunks
from sophia.observe.redact import Redactor
from sophia.observe.spanbuild import SCOPE, SpanBuilder, SpanData
from sophia.observe.spans import record_of

log = logging.getLogger("sophia.observe.exporter")
_LENGTH = struct.Struct("<I")
_TRACE_ID = COLUMNS.index("trace_id")
EXPORT_BATCH = 512


def write_frame(stream: IO[bytes], payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next frame's object, or None at the end of the input."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


class Shipper:
    """Usage records to OTLP: their spans built (``SpanBuilder``), redacted, encoded and sent in batches
    (the export process's work, and the server's own thread's when spans carry content)."""

    def __init__(self, builder: SpanBuilder, redactor: Redactor, sender: Sender) -> None:
        self.builder = builder
        self.redactor = redactor
        self.sender = sender
        self.encoder = Encoder(dict(builder.resource.attributes), (SCOPE.name, SCOPE.version or ""))
        self.exported = self.failed = 0

    @classmethod
    def configured(cls, config: dict[str, Any]) -> Shipper:
        """The export process's shipper, from the configuration frame (spans carry no content)."""
        builder = SpanBuilder(
            Resource.create(config["resource"]), latest=config["latest"], capture_content=False
        )
        redactor = Redactor(capture_content=False, secrets=config["secrets"], patterns=config["patterns"])
        url, headers = config["endpoint"], config["headers"]
        sender = GrpcSender(url, headers) if config["protocol"] == "grpc" else HttpSender(url, headers)
        return cls(builder, redactor, sender)

    def ship(self, records: Iterable[UsageRecord]) -> None:
        spans: list[SpanData] = []
        for record in records:
            try:
                spans.extend(self.redactor.data(data) for data in self.builder.spans(record))
            except Exception:
                log.exception("could not build the spans of %s", record.request_id)
        for chunk in chunks(spans, EXPORT_BATCH):
            try:
                sent = self.sender.send(self.encoder.request(chunk))
            except Exception:
                log.exception("span export failed")
                sent = False
            if sent:
                self.exported += len(chunk)
            else:
                self.failed += len(chunk)


def _records(rows: list[tuple[Any, ...]]) -> Iterator[UsageRecord]:
    for row in rows:
        try:
            yield record_of(dict(zip(COLUMNS, row, strict=True)))
        except Exception:
            log.exception("could not read a ledger row")


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    source, answers = sys.stdin.buffer, sys.stdout.buffer
    config = read_frame(source)
    if not isinstance(config, dict):
        return 2
    exporter = Shipper.configured(config)
    try:
        while True:
            frame = read_frame(source)
            if frame is None:
                return 0
            kind, payload = frame
            if kind == "rows":
                exporter.ship(_records(payload))
            elif kind == "flush":
                answers.write(f"{payload} {exporter.exported} {exporter.failed}\n".encode())
                answers.flush()
    finally:
        exporter.sender.close()


class ExportProcess:
    """The parent's end: starts the export process on first use, feeds it from a thread of its own (a
    full pipe never blocks the event loop), restarts it if it dies. Past ``max_backlog`` waiting
    batches, new ones are dropped and counted, never the requests."""

    def __init__(self, config: dict[str, Any], *, max_backlog: int = 64) -> None:
        self.config = config
        self.max_backlog = max_backlog
        self.exported = self.failed = self.dropped = 0
        self._queue: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._flushes = 0

    def submit(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Hand a written batch over (never blocks)."""
        rows = [row for row in rows if row[_TRACE_ID] is not None]
        if not rows:
            return
        if self._queue.qsize() >= self.max_backlog:
            self.dropped += len(rows)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._feed, name="sophia-otlp-feed", daemon=True)
            self._thread.start()
        self._queue.put(("rows", rows))

    def flush(self, wait: float = 30.0) -> bool:
        """Block until the process has sent everything handed over before now."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(("flush", done))
        return done.wait(wait)

    def close(self, wait: float = 30.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(wait)
        self._stop()

    # -- the feeding thread ---------------------------------------------------------------------

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is not None:
            self._stop()  # it died: close its pipes before starting another
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "sophia.observe.exporter"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert self._proc.stdin is not None
            write_frame(self._proc.stdin, self.config)
        return self._proc

    def _feed(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, payload = item
            if kind == "rows":
                self._send(payload)
            else:
                self._ask_flush()
                payload.set()

    def _send(self, rows: list[tuple[Any, ...]]) -> None:
        for attempt in range(2):  # a dead process is restarted once
            try:
                proc = self._process()
                assert proc.stdin is not None
                write_frame(proc.stdin, ("rows", rows))
                return
            except (OSError, ValueError) as exc:
                self._stop()
                if attempt:
                    log.warning("the OTLP export process is not taking spans: %s", exc)
        self.dropped += len(rows)

    def _ask_flush(self) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            return
        self._flushes += 1
        try:
            write_frame(proc.stdin, ("flush", self._flushes))
            answer = proc.stdout.readline().split()
        except (OSError, ValueError):
            return
        if len(answer) == 3:
            self.exported, self.failed = int(answer[1]), int(answer[2])

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # the end of input: it sends what it has, then exits
            proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
