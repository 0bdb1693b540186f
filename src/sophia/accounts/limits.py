"""Rate limits and budgets: ``check`` before a call (admit it or raise), ``reserve`` its worst-case cost
once its model is known, ``commit`` its tokens and real cost after (which releases the reservation).

* rpm: requests admitted in the last 60 s (an exact sliding window; the request being checked counts);
* tpm: tokens committed in the last 60 s (per-second buckets); a request is refused once they reach tpm;
* budgets: USD spent this UTC day / month plus what calls in flight hold; a call is refused once that
  reaches the budget, so concurrent calls overshoot it by at most one call's cost.

``MemoryLimiter`` (here) counts rates in one process and keeps budgets in the database
(``budgets.DatabaseBudgets``: shared by every process on it); ``RedisLimiter`` (``limits_redis``, which
builds on the helpers here and is never imported by this module) keeps both in Redis;
``sophia.accounts.open_limiter`` picks one. Budgets are seeded from the usage ledger (``spend_lookup``)
the first time they are needed, so they survive restarts (and, for Redis, a Redis restart).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sophia.accounts.keys import KeyRecord
from sophia.errors import BudgetExceeded, RateLimited

__all__ = ["Budgets", "Hold", "Limiter", "MemoryLimiter", "SpendLookup"]

#: the ledger's ``spend(key_id, since) -> USD``
SpendLookup = Callable[[str, float], Awaitable[float]]
WINDOW = 60.0
DAY = 86_400.0
#: seconds a reservation lives without being committed (the longest call, with margin): a process
#: killed mid-call does not keep its holds
HOLD_SECONDS = 900.0
NANOS = 1_000_000_000
#: the most money one figure may hold, in nano-dollars: $1e9 (a budget's top), far inside BIGINT
MAX_NANOS = 10**18


def nanos(usd: float) -> int:
    """USD as integer nano-dollars (how budgets count money), clamped to +-``MAX_NANOS`` (NaN: the top)."""
    value = usd * NANOS
    if not value < MAX_NANOS:
        return MAX_NANOS
    return round(value) if value > -MAX_NANOS else -MAX_NANOS


@dataclass(frozen=True, slots=True)
class Hold:
    """Money reserved for one call in flight (integer nano-dollars), released when the call is committed."""

    id: str
    key_id: str
    nanos: int
    leased: bool = False  # taken from this process's lease (settled in memory), not a row of its own


class Budgets(Protocol):
    async def reserve(self, key: KeyRecord, usd: float, now: float) -> Hold | None: ...

    async def settle(self, key: KeyRecord, hold: Hold | None, cost_usd: float, now: float) -> None: ...

    async def close(self) -> None: ...


class Limiter(Protocol):
    async def check(self, key: KeyRecord, now: float) -> None:
        """Admit a request under the key's rate limits, or raise ``RateLimited``."""

    async def reserve(self, key: KeyRecord, usd: float, now: float) -> Hold | None:
        """Hold ``usd`` against the key's budgets, or raise ``BudgetExceeded``; None without budgets."""

    async def commit(
        self, key: KeyRecord, tokens: int, cost_usd: float, now: float, hold: Hold | None = None
    ) -> None:
        """Count a call's tokens and real cost (releasing its hold)."""

    async def close(self) -> None: ...


def day_start(now: float) -> float:
    """Epoch seconds of 00:00 UTC on ``now``'s day."""
    return now - now % DAY


_month_of_day: dict[float, float] = {}


def month_start(now: float) -> float:
    """Epoch seconds of 00:00 UTC on the first of ``now``'s month (memoised per UTC day: hot path)."""
    day = now - now % DAY
    start = _month_of_day.get(day)
    if start is None:
        t = datetime.fromtimestamp(now, UTC)
        start = datetime(t.year, t.month, 1, tzinfo=UTC).timestamp()
        if len(_month_of_day) > 64:
            _month_of_day.clear()
        _month_of_day[day] = start
    return start


def month_end(now: float) -> float:
    t = datetime.fromtimestamp(now, UTC)
    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def rpm_limited(limit: int, retry_after: float) -> RateLimited:
    return RateLimited(
        f"Rate limit reached: {limit} requests per minute for this API key. "
        f"Please try again in {max(retry_after, 0.001):.3g}s.",
        retry_after=max(retry_after, 0.0),
    )


def tpm_limited(limit: int, retry_after: float) -> RateLimited:
    return RateLimited(
        f"Rate limit reached: {limit} tokens per minute for this API key. "
        f"Please try again in {max(retry_after, 0.001):.3g}s.",
        retry_after=max(retry_after, 0.0),
        code="tokens_rate_limit_exceeded",
    )


def over_budget(period: str, budget: float, spent: float, held: float = 0.0) -> BudgetExceeded:
    when = "today (UTC)" if period == "daily" else "this month (UTC)"
    resets = "at 00:00 UTC" if period == "daily" else "on the 1st at 00:00 UTC"
    pending = f", ${held:.4f} held by calls in progress" if held > 0 else ""
    return BudgetExceeded(
        f"This API key reached its {period} budget of ${budget:.2f} (spent ${spent:.4f} {when}{pending}); "
        f"it resets {resets}."
    )


@dataclass(slots=True)
class _Usage:
    """One key's recent activity in this process."""

    admitted: deque[float] = field(default_factory=deque)  # times of admitted requests
    buckets: deque[list[int]] = field(default_factory=deque)  # [second, tokens], oldest first
    tokens: int = 0  # sum over buckets


class MemoryLimiter:
    """Rate limits for a single gateway process; budgets through ``budgets`` (shared by all processes)."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets
        self._usage: dict[str, _Usage] = {}

    async def check(self, key: KeyRecord, now: float) -> None:
        if key.tpm is None and key.rpm is None:
            return
        usage = self._usage.get(key.id)
        if usage is None:
            usage = self._usage[key.id] = _Usage()
        # No await from here to the admission: check-and-admit is atomic on the event loop.
        if key.tpm is not None:
            self._expire_tokens(usage, now)
            if usage.tokens >= key.tpm:
                remaining = usage.tokens
                retry = WINDOW
                for second, count in usage.buckets:
                    remaining -= count
                    if remaining < key.tpm:
                        retry = second + WINDOW - now
                        break
                raise tpm_limited(key.tpm, retry)
        if key.rpm is not None:
            admitted = usage.admitted
            while admitted and admitted[0] <= now - WINDOW:
                admitted.popleft()
            if len(admitted) >= key.rpm:
                raise rpm_limited(key.rpm, admitted[0] + WINDOW - now if admitted else WINDOW)
            admitted.append(now)

    async def reserve(self, key: KeyRecord, usd: float, now: float) -> Hold | None:
        if not key.budgeted:
            return None
        return await self.budgets.reserve(key, usd, now)

    @staticmethod
    def _expire_tokens(usage: _Usage, now: float) -> None:
        buckets = usage.buckets
        while buckets and buckets[0][0] + WINDOW <= now:
            usage.tokens -= buckets.popleft()[1]

    async def commit(
        self, key: KeyRecord, tokens: int, cost_usd: float, now: float, hold: Hold | None = None
    ) -> None:
        if key.tpm is not None and tokens > 0:
            usage = self._usage.get(key.id)
            if usage is None:
                usage = self._usage[key.id] = _Usage()
            second = int(now)
            if usage.buckets and usage.buckets[-1][0] == second:
                usage.buckets[-1][1] += tokens
            else:
                usage.buckets.append([second, tokens])
            usage.tokens += tokens
            self._expire_tokens(usage, now)
        if hold is not None or (cost_usd > 0 and key.budgeted):
            await self.budgets.settle(key, hold, cost_usd, now)

    async def close(self) -> None:
        self._usage.clear()
        await self.budgets.close()
