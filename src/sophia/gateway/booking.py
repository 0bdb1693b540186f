"""What every gateway call leaves behind: its ticket, the limiter's count, one ledger row, the cache entry.

A ``Ticket`` follows one admitted call from admission to its ledger row; ``Booking`` is the one
place that turns a finished, failed or cached call into ``accounts`` updates and cache stores. The
engine and a stream in progress (``StreamCall``) both book through it.

What a call consumed is booked even when it did not finish: a stream the client hung up on (or that
failed mid-way) books its prompt and the completion tokens counted from what was streamed, and a
non-streamed call cancelled while a model worked on it books its prompt. Where the provider's own
usage never arrived, the tokens are estimated (``sophia.providers.tokens``) and the ledger row says so
(``estimated``). Every budget hold a call took is released with its real (or estimated) cost.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from time import perf_counter, time
from typing import TYPE_CHECKING, Any

from sophia.accounts import Accounts, Hold, KeyRecord, UsageRecord
from sophia.accounts.limits import NANOS
from sophia.errors import SophiaError
from sophia.observe.context import CallTrace, new_trace_id, trace_parent
from sophia.providers import tokens
from sophia.providers.base import ModelInfo, Usage

if TYPE_CHECKING:
    from sophia.cache import CacheContext, ResponseCache

log = logging.getLogger(__name__)
#: longest router explanation carried in the x-sophia-route header
MAX_WHY = 400


@dataclass(slots=True)
class Ticket:
    """One admitted call, from admission to its ledger record."""

    request_id: str
    key: KeyRecord | None
    endpoint: str
    requested: str
    task_type: str | None
    metadata: dict[str, str] | None
    ts: float = field(default_factory=time)
    t0: float = field(default_factory=perf_counter)
    trail: list[str] = field(default_factory=list)
    why: str = ""  # the auto router's explanation, when it chose
    cache: CacheContext | None = None  # the request's cache keys, when the cache applies
    cache_entry: str | None = None  # the entry that answered, on a hit
    body: dict[str, Any] | None = None  # the request, for estimating what an unfinished call used
    hold: Hold | None = None  # money reserved against the key's budgets, until the call is booked
    calling: ModelInfo | None = None  # the model being called right now (a cancelled call books it)
    trace_id: str = field(default_factory=new_trace_id)
    parent_span: str | None = None  # the caller's span (a traceparent header), when it sent one
    marks: list[tuple[str, float, float, Any]] = field(default_factory=list)
    answer: bytes | None = None  # the answer, kept for the trace only when content capture is on

    def mark(self, stage: str, start: float, detail: Any = None) -> None:
        """One stage of the call, from ``start`` (``perf_counter``) to now."""
        self.marks.append((stage, start, perf_counter(), detail))

    def follow(self, traceparent: str | None) -> None:
        """Join the caller's trace when its ``traceparent`` is valid."""
        parent = trace_parent(traceparent)
        if parent is not None:
            self.trace_id, self.parent_span = parent

    def route(self) -> str:
        """``x-sophia-route``: the router's reason (if any), then every attempt as ``model=outcome``."""
        trail = " ".join(self.trail)
        return f"[{self.why[:MAX_WHY]}] {trail}" if self.why else trail


class Booking:
    """Counts, records and keeps what calls produced (``accounts`` for the first two, ``cache`` the last)."""

    def __init__(
        self,
        accounts: Accounts,
        cache: ResponseCache | None,
        *,
        tracing: bool = False,
        capture_content: bool = False,
    ) -> None:
        self.accounts = accounts
        self.cache = cache
        self.tracing = tracing  # records carry their CallTrace (the tracer builds spans from it)
        self.capture_content = capture_content
        self._pending: set[asyncio.Task[None]] = set()

    async def settle(self, ticket: Ticket, info: ModelInfo, usage: Usage) -> int:
        """A successful model call: its cost (nano-dollars), counted against the key's limits and booked."""
        cost = info.cost_nanos(usage.prompt_tokens, usage.completion_tokens)
        hold, ticket.hold = ticket.hold, None
        await self.accounts.commit(ticket.key, usage.total_tokens, cost / NANOS, hold=hold)
        self.record(ticket, info, usage, cost, "ok", None, 200, None)
        return cost

    def consumed(self, ticket: Ticket, usage: Usage, events: list[bytes] | None) -> tuple[Usage, bool]:
        """What a stream used: the provider's usage, with whatever it did not report estimated from the
        request and the events streamed (``events`` None: nothing to count). (usage, estimated)."""
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
        estimated = False
        if completion == 0 and events:
            completion = tokens.streamed_tokens(events)
            estimated = completion > 0
        if prompt == 0 and ticket.body is not None and (completion > 0 or events is not None):
            prompt = tokens.prompt_tokens(ticket.body)
            estimated = True
        return (Usage(prompt, completion), True) if estimated else (usage, False)

    async def finish_stream(
        self,
        ticket: Ticket,
        info: ModelInfo,
        usage: Usage,
        ttft_ms: float,
        error: BaseException | None,
        cache: str,
        saved_nanos: int,
        events: list[bytes] | None = None,
    ) -> int:
        """A stream that ended (``error`` None), was cancelled or failed: count and book what it used.
        ``events``: what was streamed from a model (None for a cached answer, which costs nothing)."""
        estimated = False
        if cache == "miss":
            usage, estimated = self.consumed(ticket, usage, events)
        cost = info.cost_nanos(usage.prompt_tokens, usage.completion_tokens)
        hold, ticket.hold = ticket.hold, None
        await self.accounts.commit(ticket.key, usage.total_tokens, cost / NANOS, hold=hold)
        if error is None:
            self.record(ticket, info, usage, cost, "ok", None, 200, ttft_ms, cache, saved_nanos, estimated)
        elif isinstance(error, asyncio.CancelledError | ConnectionError):
            self.record(
                ticket,
                info,
                usage,
                cost,
                "cancelled",
                type(error).__name__,
                499,
                ttft_ms,
                estimated=estimated,
            )
        else:
            self.record(
                ticket, info, usage, cost, "error", type(error).__name__, 200, ttft_ms, estimated=estimated
            )
        return cost

    def failure(self, ticket: Ticket, exc: BaseException) -> None:
        """A call that never produced an answer. Cancelled while a model was working on it, it books the
        prompt that model read (estimated). Its budget hold is released off the caller's path."""
        info, usage, cost, estimated = None, Usage(), 0, False
        if isinstance(exc, asyncio.CancelledError):
            if ticket.calling is not None and ticket.body is not None:
                info = ticket.calling
                usage = Usage(tokens.prompt_tokens(ticket.body), 0)
                cost, estimated = info.cost_nanos(usage.prompt_tokens, 0), True
            self.record(
                ticket, info, usage, cost, "cancelled", "CancelledError", 499, None, estimated=estimated
            )
        elif isinstance(exc, SophiaError):
            from sophia.gateway.errors import status_and_type

            status = status_and_type(exc)[0]
            self.record(ticket, None, usage, 0, "error", type(exc).__name__, status, None)
        else:
            log.error("unexpected %s in %s call %s", type(exc).__name__, ticket.endpoint, ticket.request_id)
            self.record(ticket, None, usage, 0, "error", type(exc).__name__, 500, None)
        hold, ticket.hold = ticket.hold, None
        if ticket.key is not None and (hold is not None or (cost > 0 and ticket.key.limited)):
            self._later(self.accounts.commit(ticket.key, usage.total_tokens, cost / NANOS, hold=hold))

    def _later(self, work: Any) -> None:
        """Run an accounts update in the background (the caller is failing or cancelled); kept until done."""
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not book a failed call's usage: %s", task.exception())

    async def drain(self) -> None:
        """Wait for the background bookings (at shutdown)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def keep(
        self,
        request: dict[str, Any],
        ticket: Ticket,
        answer: bytes,
        usage: Usage,
        info: ModelInfo,
        cost: int,
    ) -> None:
        """Store a model's answer in the cache (off the response path), when the cache applies."""
        if self.cache is not None and ticket.cache is not None:
            self.cache.store_soon(
                request,
                ticket.cache,
                answer,
                usage.prompt_tokens,
                usage.completion_tokens,
                info.id,
                cost / NANOS,
            )

    def record(
        self,
        ticket: Ticket,
        info: ModelInfo | None,
        usage: Usage,
        cost: int,
        outcome: str,
        error: str | None,
        status: int,
        ttft_ms: float | None,
        cache: str = "miss",
        saved_nanos: int = 0,
        estimated: bool = False,
    ) -> None:
        key = ticket.key
        entry = ticket.cache_entry if cache in ("exact", "semantic") else None
        checked = ticket.cache.pending if ticket.cache is not None else None
        if cache == "miss" and checked is not None and checked.kind == "check":
            cache, entry = "check", checked.entry.id  # a would-be hit answered by the model, to learn from
        trace = None
        if self.tracing:
            content = (ticket.body, ticket.answer) if self.capture_content else None
            trace = CallTrace(ticket.t0, ticket.ts, ticket.parent_span, ticket.marks, content)
        self.accounts.record(
            UsageRecord(
                ts=ticket.ts,
                request_id=ticket.request_id,
                key_id=key.id if key else None,
                team=key.team if key else "default",
                endpoint=ticket.endpoint,
                requested_model=ticket.requested,
                served_model=info.id if info else None,
                provider=info.provider if info else None,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost_nanos=cost,
                latency_ms=(perf_counter() - ticket.t0) * 1000,
                ttft_ms=ttft_ms,
                cache=cache,
                saved_nanos=saved_nanos,
                outcome=outcome,
                error_class=error,
                status=status,
                attempts=len(ticket.trail),
                route=ticket.route() or None,
                task_type=ticket.task_type,
                metadata=ticket.metadata,
                cache_entry=entry,
                estimated=estimated,
                trace_id=ticket.trace_id,
                trace=trace,
            )
        )
