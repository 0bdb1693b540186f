"""What every gateway call leaves behind: its ticket, the limiter's count, one ledger row, the cache entry.

A ``Ticket`` follows one admitted call from admission to its ledger row; ``Booking`` is the one
place that turns a finished, failed or cached call into ``accounts`` updates and cache stores. The
engine and a stream in progress (``StreamCall``) both book through it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from time import perf_counter, time
from typing import TYPE_CHECKING, Any

from sophia.accounts import Accounts, KeyRecord, UsageRecord
from sophia.errors import SophiaError
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

    def route(self) -> str:
        """``x-sophia-route``: the router's reason (if any), then every attempt as ``model=outcome``."""
        trail = " ".join(self.trail)
        return f"[{self.why[:MAX_WHY]}] {trail}" if self.why else trail


class Booking:
    """Counts, records and keeps what calls produced (``accounts`` for the first two, ``cache`` the last)."""

    def __init__(self, accounts: Accounts, cache: ResponseCache | None) -> None:
        self.accounts = accounts
        self.cache = cache

    async def settle(self, ticket: Ticket, info: ModelInfo, usage: Usage) -> float:
        """A successful model call: its cost, counted against the key's limits and booked; returns it."""
        cost = info.cost(usage.prompt_tokens, usage.completion_tokens)
        await self.accounts.commit(ticket.key, usage.total_tokens, cost)
        self.record(ticket, info, usage, cost, "ok", None, 200, None)
        return cost

    async def finish_stream(
        self,
        ticket: Ticket,
        info: ModelInfo,
        usage: Usage,
        ttft_ms: float,
        error: BaseException | None,
        cache: str,
        saved_usd: float,
    ) -> float:
        """A stream that ended (``error`` None), was cancelled or failed: count and book what it used."""
        cost = info.cost(usage.prompt_tokens, usage.completion_tokens)
        await self.accounts.commit(ticket.key, usage.total_tokens, cost)
        if error is None:
            self.record(ticket, info, usage, cost, "ok", None, 200, ttft_ms, cache, saved_usd)
        elif isinstance(error, asyncio.CancelledError | ConnectionError):
            self.record(ticket, info, usage, cost, "cancelled", type(error).__name__, 499, ttft_ms)
        else:
            self.record(ticket, info, usage, cost, "error", type(error).__name__, 200, ttft_ms)
        return cost

    def failure(self, ticket: Ticket, exc: BaseException) -> None:
        """A call that never produced an answer."""
        if isinstance(exc, asyncio.CancelledError):
            self.record(ticket, None, Usage(), 0.0, "cancelled", "CancelledError", 499, None)
        elif isinstance(exc, SophiaError):
            from sophia.gateway.errors import status_and_type

            status = status_and_type(exc)[0]
            self.record(ticket, None, Usage(), 0.0, "error", type(exc).__name__, status, None)
        else:
            log.error("unexpected %s in %s call %s", type(exc).__name__, ticket.endpoint, ticket.request_id)
            self.record(ticket, None, Usage(), 0.0, "error", type(exc).__name__, 500, None)

    def keep(
        self,
        request: dict[str, Any],
        ticket: Ticket,
        answer: bytes,
        usage: Usage,
        info: ModelInfo,
        cost: float,
    ) -> None:
        """Store a model's answer in the cache (off the response path), when the cache applies."""
        if self.cache is not None and ticket.cache is not None:
            self.cache.store_soon(
                request, ticket.cache, answer, usage.prompt_tokens, usage.completion_tokens, info.id, cost
            )

    def record(
        self,
        ticket: Ticket,
        info: ModelInfo | None,
        usage: Usage,
        cost: float,
        outcome: str,
        error: str | None,
        status: int,
        ttft_ms: float | None,
        cache: str = "miss",
        saved_usd: float = 0.0,
    ) -> None:
        key = ticket.key
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
                cost_usd=cost,
                latency_ms=(perf_counter() - ticket.t0) * 1000,
                ttft_ms=ttft_ms,
                cache=cache,
                saved_usd=saved_usd,
                outcome=outcome,
                error_class=error,
                status=status,
                attempts=len(ticket.trail),
                route=ticket.route() or None,
                task_type=ticket.task_type,
                metadata=ticket.metadata,
                cache_entry=ticket.cache_entry if cache in ("exact", "semantic") else None,
            )
        )
