"""Rate limits and budgets: ``check`` before a call (admit it or raise), ``commit`` its tokens and cost after.

* rpm: requests admitted in the last 60 s (an exact sliding window; the request being checked counts);
* tpm: tokens committed in the last 60 s (per-second buckets); a request is refused once they reach tpm;
* budgets: USD spent this UTC day / month; a request is refused once spend reaches the budget.

``MemoryLimiter`` (here) serves one process; ``RedisLimiter`` (``limits_redis``, which builds on the
helpers here and is never imported by this module) shares the counters between instances;
``sophia.accounts.open_limiter`` picks one.
Both seed a key's day and month spend from the usage ledger (``spend_lookup``) the first time they need
it, so budgets survive restarts (and, for Redis, a Redis restart).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sophia.accounts.keys import KeyRecord
from sophia.errors import BudgetExceeded, RateLimited

__all__ = ["Limiter", "MemoryLimiter", "SpendLookup"]

#: the ledger's ``spend(key_id, since) -> USD``
SpendLookup = Callable[[str, float], Awaitable[float]]
WINDOW = 60.0
DAY = 86_400.0


class Limiter(Protocol):
    async def check(self, key: KeyRecord, now: float) -> None: ...

    async def commit(self, key: KeyRecord, tokens: int, cost_usd: float, now: float) -> None: ...

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


def over_budget(period: str, budget: float, spent: float) -> BudgetExceeded:
    when = "today (UTC)" if period == "daily" else "this month (UTC)"
    resets = "at 00:00 UTC" if period == "daily" else "on the 1st at 00:00 UTC"
    return BudgetExceeded(
        f"This API key reached its {period} budget of ${budget:.2f} (spent ${spent:.4f} {when}); "
        f"it resets {resets}."
    )


@dataclass(slots=True)
class _Usage:
    """One key's recent activity in this process."""

    admitted: deque[float] = field(default_factory=deque)  # times of admitted requests
    buckets: deque[list[int]] = field(default_factory=deque)  # [second, tokens], oldest first
    tokens: int = 0  # sum over buckets
    day: float = -1.0  # start of the day that day_spend counts
    day_spend: float = 0.0
    month: float = -1.0
    month_spend: float = 0.0
    seeding: asyncio.Lock = field(default_factory=asyncio.Lock)


class MemoryLimiter:
    """Limits and budgets for a single gateway process."""

    def __init__(self, spend_lookup: SpendLookup) -> None:
        self.spend_lookup = spend_lookup
        self._usage: dict[str, _Usage] = {}

    async def check(self, key: KeyRecord, now: float) -> None:
        if not key.limited:
            return
        usage = self._usage.get(key.id)
        if usage is None:
            usage = self._usage[key.id] = _Usage()
        daily, monthly = key.budget_daily_usd, key.budget_monthly_usd
        if (daily is not None and usage.day != day_start(now)) or (
            monthly is not None and usage.month != month_start(now)
        ):
            await self._seed(key.id, usage, now)
        # From here to the admission there is no await: check-and-admit is atomic on the event loop.
        if daily is not None and usage.day_spend >= daily:
            raise over_budget("daily", daily, usage.day_spend)
        if monthly is not None and usage.month_spend >= monthly:
            raise over_budget("monthly", monthly, usage.month_spend)
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

    async def _seed(self, key_id: str, usage: _Usage, now: float) -> None:
        async with usage.seeding:  # concurrent first requests of a key share one lookup
            day, month = day_start(now), month_start(now)
            if usage.day != day:
                spent = await self.spend_lookup(key_id, day)
                usage.day, usage.day_spend = day, spent
            if usage.month != month:
                spent = await self.spend_lookup(key_id, month)
                usage.month, usage.month_spend = month, spent

    @staticmethod
    def _expire_tokens(usage: _Usage, now: float) -> None:
        buckets = usage.buckets
        while buckets and buckets[0][0] + WINDOW <= now:
            usage.tokens -= buckets.popleft()[1]

    async def commit(self, key: KeyRecord, tokens: int, cost_usd: float, now: float) -> None:
        if not key.limited:
            return
        usage = self._usage.get(key.id)
        if usage is None:
            usage = self._usage[key.id] = _Usage()
        if key.tpm is not None and tokens > 0:
            second = int(now)
            if usage.buckets and usage.buckets[-1][0] == second:
                usage.buckets[-1][1] += tokens
            else:
                usage.buckets.append([second, tokens])
            usage.tokens += tokens
            self._expire_tokens(usage, now)
        # Counted only in the period already seeded; otherwise the ledger lookup will include it.
        if usage.day == day_start(now):
            usage.day_spend += cost_usd
        if usage.month == month_start(now):
            usage.month_spend += cost_usd

    async def close(self) -> None:
        self._usage.clear()
