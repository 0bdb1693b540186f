"""``StreamCall``: a streamed answer in progress, from its first event to its ledger row."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from sophia.gateway.booking import Booking, Ticket
from sophia.gateway.replay import StreamCollector
from sophia.providers.base import ChunkStream, ModelInfo


class StreamCall:
    """Iterate for SSE events (the first is in hand), then ``finish`` once, with the error if any."""

    def __init__(
        self, booking: Booking, ticket: Ticket, model: ModelInfo, stream: ChunkStream, first: bytes
    ) -> None:
        self.booking = booking
        self.ticket = ticket
        self.model = model
        self._stream = stream
        self._first: bytes | None = first or None
        self.ttft_ms = (perf_counter() - ticket.t0) * 1000
        self.route = ticket.route()
        self.request_id = ticket.request_id
        self.cache = "miss"
        self.saved_nanos = 0
        self.trace_id = ticket.trace_id
        self._first_at = perf_counter()
        self._finished = False
        self._collector: StreamCollector | None = None
        self._request: dict[str, Any] | None = None
        # What was streamed, kept only to count it if the provider's usage never arrives.
        self._events: list[bytes] | None = [first] if first else []

    def collect(self, request: dict[str, Any]) -> None:
        """Rebuild the answer from the events as they pass, to cache it when the stream completes."""
        self._collector = StreamCollector()
        self._request = request
        if self._first is not None:
            self._collector.feed(self._first)

    def __aiter__(self) -> StreamCall:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        event = await self._stream.__anext__()
        if self._collector is not None:
            self._collector.feed(event)
        if self._events is not None:
            self._events.append(event)
        return event

    async def finish(self, error: BaseException | None = None) -> None:
        """Close the upstream and book the call once (outcome from ``error``)."""
        if self._finished:
            return
        self._finished = True
        await self._stream.aclose()
        usage = self._stream.usage
        events, self._events = self._events, None
        self.ticket.marks.append(("stream", self._first_at, perf_counter(), None))
        cost = await self.booking.finish_stream(
            self.ticket, self.model, usage, self.ttft_ms, error, self.cache, self.saved_nanos, events
        )
        if error is None and self._collector is not None and self._request is not None:
            answer = self._collector.completion()
            if answer is not None:
                self.booking.keep(self._request, self.ticket, answer, usage, self.model, cost)
