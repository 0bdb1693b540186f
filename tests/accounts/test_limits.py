"""Rate limits and budgets behave the same in memory (budgets in SQLite or PostgreSQL) and in Redis;
the database and Redis share them between instances."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from sophia.accounts import open_limiter
from sophia.accounts.budgets import DatabaseBudgets
from sophia.accounts.keys import KeyRecord
from sophia.accounts.limits import Limiter, MemoryLimiter, day_start, month_end, month_start
from sophia.accounts.limits_redis import RedisLimiter
from sophia.errors import BudgetExceeded, RateLimited, StorageError
from sophia.storage import Database, open_database
from sophia.storage.testing import TEST_REDIS_URL, postgres_schema

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
DAY = 86_400.0


def key(**limits: Any) -> KeyRecord:
    return KeyRecord(
        id="key_" + secrets.token_hex(6), name="k", owner="", team="t", hash="h", prefix="p", **limits
    )


class Ledger:
    """Stands in for Ledger.spend: what the usage ledger says a key spent since a moment."""

    def __init__(self) -> None:
        self.spent: dict[tuple[str, float], float] = {}
        self.calls: list[tuple[str, float]] = []
        self.gate: asyncio.Event | None = None

    async def spend(self, key_id: str, since: float) -> float:
        self.calls.append((key_id, since))
        if self.gate is not None:
            await self.gate.wait()
        return self.spent.get((key_id, since), 0.0)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


async def _delete_prefix(prefix: str) -> None:
    client = Redis.from_url(TEST_REDIS_URL)
    try:
        async for name in client.scan_iter(match=f"{prefix}*"):
            await client.delete(name)
    finally:
        await client.aclose()


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A Redis key prefix unique to this test; everything under it is deleted afterwards."""
    value = f"sophia-test-{secrets.token_hex(6)}:"
    yield value
    await _delete_prefix(value)


LimiterFactory = Callable[[], Awaitable[Limiter]]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def make(
    request: pytest.FixtureRequest, ledger: Ledger, tmp_path: Any
) -> AsyncIterator[LimiterFactory]:
    """Builds limiters of one kind (in memory with budgets in SQLite or PostgreSQL, or Redis); several
    share one database or one prefix, like gateway instances do."""
    made: list[Limiter] = []
    dbs: list[Database] = []
    prefix = f"sophia-test-{secrets.token_hex(6)}:"
    async with contextlib.AsyncExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'budgets.db'}"
        if request.param == "postgresql":
            url = await stack.enter_async_context(postgres_schema())

        async def factory() -> Limiter:
            if request.param == "redis":
                limiter: Limiter = RedisLimiter(TEST_REDIS_URL, ledger.spend, prefix=prefix)
            else:
                db = await open_database(url)
                dbs.append(db)
                limiter = MemoryLimiter(await DatabaseBudgets.open(db, ledger.spend))
            made.append(limiter)
            return limiter

        yield factory
        for limiter in made:
            await limiter.close()
        for db in dbs:
            await db.close()
    if request.param == "redis":
        await _delete_prefix(prefix)


async def test_keys_without_limits_cost_nothing() -> None:
    unreachable = RedisLimiter("redis://127.0.0.1:1/0", lambda k, s: asyncio.sleep(0, 0.0))
    try:
        free = key()
        for _ in range(3):
            await unreachable.check(free, T0)  # never touches Redis
            await unreachable.commit(free, 1000, 1.0, T0)
    finally:
        await unreachable.close()


async def test_requests_per_minute_is_an_exact_sliding_window(make: LimiterFactory) -> None:
    limiter, k = await make(), key(rpm=3)
    for t in (0, 10, 20):
        await limiter.check(k, T0 + t)
    for _ in range(3):  # refusals do not count
        with pytest.raises(RateLimited) as caught:
            await limiter.check(k, T0 + 30)
    assert caught.value.retry_after == pytest.approx(30, abs=0.01)
    assert caught.value.code == "rate_limit_exceeded"
    assert "3 requests per minute" in caught.value.message
    await limiter.check(k, T0 + 60.5)  # the first request left the window
    with pytest.raises(RateLimited) as caught:
        await limiter.check(k, T0 + 61)
    assert caught.value.retry_after == pytest.approx(9, abs=0.01)


async def test_tokens_per_minute(make: LimiterFactory) -> None:
    limiter, k = await make(), key(tpm=100)
    await limiter.check(k, T0)
    await limiter.commit(k, 60, 0.0, T0)
    await limiter.check(k, T0 + 1)  # 60 used: under the limit, admitted
    await limiter.commit(k, 50, 0.0, T0 + 1)
    with pytest.raises(RateLimited) as caught:
        await limiter.check(k, T0 + 2)
    assert caught.value.retry_after == pytest.approx(58, abs=0.01)  # when the first 60 tokens expire
    assert "100 tokens per minute" in caught.value.message
    await limiter.check(k, T0 + 60.5)


async def test_daily_budget_is_exceeded_after_commits_and_resets_next_day(make: LimiterFactory) -> None:
    limiter, k = await make(), key(budget_daily_usd=0.01)
    hold = await limiter.reserve(k, 0.001, T0)
    assert hold is not None
    await limiter.commit(k, 10, 0.006, T0, hold)
    hold = await limiter.reserve(k, 0.001, T0 + 1)
    await limiter.commit(k, 10, 0.006, T0 + 1, hold)
    with pytest.raises(BudgetExceeded) as caught:
        await limiter.reserve(k, 0.001, T0 + 2)
    assert "daily budget of $0.01" in caught.value.message
    await limiter.reserve(k, 0.001, day_start(T0) + DAY + 1)  # a new UTC day


async def test_keys_without_budgets_hold_nothing(make: LimiterFactory) -> None:
    limiter = await make()
    assert await limiter.reserve(key(rpm=5), 1000.0, T0) is None


async def test_monthly_budget_starts_from_the_ledger(make: LimiterFactory, ledger: Ledger) -> None:
    k = key(budget_monthly_usd=1.0)
    ledger.spent[(k.id, month_start(T0))] = 0.99  # spent before this process started
    limiter = await make()
    hold = await limiter.reserve(k, 0.001, T0)
    await limiter.commit(k, 10, 0.02, T0, hold)
    with pytest.raises(BudgetExceeded, match="monthly budget"):
        await limiter.reserve(k, 0.001, T0 + 1)
    await limiter.reserve(k, 0.001, month_end(T0) + 1)  # next month: the ledger says nothing was spent yet


async def test_budget_already_spent_refuses_the_first_request(make: LimiterFactory, ledger: Ledger) -> None:
    k = key(budget_daily_usd=5.0, budget_monthly_usd=100.0)
    ledger.spent[(k.id, day_start(T0))] = 5.0
    limiter = await make()
    for _ in range(2):
        with pytest.raises(BudgetExceeded, match="daily"):
            await limiter.reserve(k, 0.001, T0)
    assert sorted(set(ledger.calls)) == sorted([(k.id, day_start(T0)), (k.id, month_start(T0))])


async def test_concurrent_first_requests_share_one_ledger_lookup(
    make: LimiterFactory, ledger: Ledger
) -> None:
    limiter, k = await make(), key(budget_daily_usd=1.0)
    ledger.gate = asyncio.Event()
    holds = [asyncio.ensure_future(limiter.reserve(k, 0.001, T0)) for _ in range(10)]
    await asyncio.sleep(0.01)
    ledger.gate.set()
    await asyncio.gather(*holds)
    day_lookups = [c for c in ledger.calls if c == (k.id, day_start(T0))]
    if isinstance(limiter, MemoryLimiter):
        assert len(day_lookups) == 1
    else:  # each waiting request may look up, but SET NX keeps one value: the counter is still right
        assert 1 <= len(day_lookups) <= 10


async def test_holds_count_against_the_budget_until_committed(make: LimiterFactory) -> None:
    """Concurrent calls: each holds its worst case, so the budget is overshot by at most one call."""
    limiter, k = await make(), key(budget_daily_usd=0.05)
    results = await asyncio.gather(*(limiter.reserve(k, 0.02, T0) for _ in range(10)), return_exceptions=True)
    holds = [r for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(r, BudgetExceeded) for r in results if isinstance(r, BaseException))
    assert len(holds) == 3  # 0.00, 0.02 and 0.04 held had room; 0.06 has not
    with pytest.raises(BudgetExceeded, match="held by calls in progress"):
        await limiter.reserve(k, 0.02, T0)
    # Settled for less than they held: the room comes back.
    for hold in holds:
        await limiter.commit(k, 10, 0.005, T0 + 1, hold)
    again = await limiter.reserve(k, 0.02, T0 + 2)  # spent 0.015 + 0 held
    await limiter.commit(k, 0, 0.0, T0 + 2, again)


async def test_a_hold_that_is_never_committed_expires(make: LimiterFactory) -> None:
    """A process killed mid-call does not keep its holds: they expire."""
    from sophia.accounts.limits import HOLD_SECONDS

    limiter, k = await make(), key(budget_daily_usd=0.05)
    await limiter.reserve(k, 1.0, T0)  # never committed
    with pytest.raises(BudgetExceeded):
        await limiter.reserve(k, 0.01, T0 + 1)
    await limiter.reserve(k, 0.01, T0 + HOLD_SECONDS + 1)


@pytest.mark.redis
async def test_two_instances_share_one_rpm_limit(ledger: Ledger, prefix: str) -> None:
    n = 10
    one = RedisLimiter(TEST_REDIS_URL, ledger.spend, prefix=prefix)
    two = RedisLimiter(TEST_REDIS_URL, ledger.spend, prefix=prefix)
    k = key(rpm=n)
    try:

        async def attempt(limiter: RedisLimiter) -> bool:
            try:
                await limiter.check(k, T0)
            except RateLimited:
                return False
            return True

        results = await asyncio.gather(*(attempt(one if i % 2 else two) for i in range(2 * n)))
    finally:
        await one.close()
        await two.close()
    assert sum(results) == n


@pytest.mark.redis
async def test_instances_share_spend_and_reseed_after_a_redis_restart(ledger: Ledger, prefix: str) -> None:
    one = RedisLimiter(TEST_REDIS_URL, ledger.spend, prefix=prefix)
    two = RedisLimiter(TEST_REDIS_URL, ledger.spend, prefix=prefix)
    k = key(budget_daily_usd=0.01)
    try:
        hold = await one.reserve(k, 0.001, T0)
        await one.commit(k, 10, 0.012, T0, hold)
        with pytest.raises(BudgetExceeded):
            await two.reserve(k, 0.001, T0 + 1)
        # Redis restarts and keeps nothing; the ledger has the spend and is asked again.
        async for name in one.redis.scan_iter(match=f"{prefix}*"):
            await one.redis.delete(name)
        ledger.spent[(k.id, day_start(T0))] = 0.012
        with pytest.raises(BudgetExceeded):
            await two.reserve(k, 0.001, T0 + 2)
        assert ledger.calls.count((k.id, day_start(T0))) == 2
    finally:
        await one.close()
        await two.close()


async def test_unreachable_redis_is_a_storage_error_without_the_password(ledger: Ledger) -> None:
    password = secrets.token_hex(8)
    limiter = RedisLimiter(f"redis://:{password}@127.0.0.1:1/0", ledger.spend)
    try:
        with pytest.raises(StorageError) as caught:
            await limiter.check(key(rpm=5), T0)
    finally:
        await limiter.close()
    assert "redis://127.0.0.1:1/0" in caught.value.message
    assert password not in caught.value.message


@pytest.mark.redis
async def test_open_limiter_picks_redis_when_configured(ledger: Ledger) -> None:
    db = await open_database("sqlite:///:memory:")
    memory = await open_limiter(None, ledger.spend, db)
    assert isinstance(memory, MemoryLimiter)
    await memory.close()
    await db.close()
    shared = await open_limiter(TEST_REDIS_URL, ledger.spend)
    assert isinstance(shared, RedisLimiter)
    await shared.close()
    with pytest.raises(StorageError):
        await open_limiter("redis://127.0.0.1:1/0", ledger.spend)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def shared_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    if request.param == "postgresql":
        async with postgres_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'leases.db'}"


class CountingDatabase:
    """Counts the transactions a real database runs (the budget's round trips)."""

    def __init__(self, inner: Database) -> None:
        self.inner, self.transactions = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def transaction(self, steps: Any, *, lock: str | None = None) -> list[int]:
        self.transactions += 1
        return await self.inner.transaction(steps, lock=lock)


async def test_a_lease_keeps_the_database_off_the_hot_path(shared_url: str, ledger: Ledger) -> None:
    db = CountingDatabase(await open_database(shared_url))
    limiter = MemoryLimiter(await DatabaseBudgets.open(db, ledger.spend))  # type: ignore[arg-type]
    k = key(budget_daily_usd=100.0)
    now = time.time()
    try:
        for _ in range(200):
            hold = await limiter.reserve(k, 0.01, now)
            await limiter.commit(k, 10, 0.001, now, hold)
        assert db.transactions <= 10  # a seed and a few renewals, not 400 round trips
        await asyncio.sleep(0.6)  # a flush: the settled costs reach the shared spend
        row = await db.fetchone("SELECT nanos FROM sophia_spend WHERE key_id = ?", [k.id])
        assert row is not None and row["nanos"] == pytest.approx(200 * 1_000_000, abs=2)
    finally:
        await limiter.close()
        await db.inner.close()


async def test_an_idle_lease_gives_its_room_back_to_other_processes(
    shared_url: str, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sophia.accounts import budgets as budgets_module

    monkeypatch.setattr(budgets_module, "IDLE_SECONDS", 0.2)
    one_db, two_db = await open_database(shared_url), await open_database(shared_url)
    one = MemoryLimiter(await DatabaseBudgets.open(one_db, ledger.spend))
    two = MemoryLimiter(await DatabaseBudgets.open(two_db, ledger.spend))
    k = key(budget_daily_usd=1.0)
    now = time.time()
    held = "SELECT COALESCE(SUM(nanos), 0) AS n FROM sophia_holds WHERE key_id = ?"
    try:
        hold = await one.reserve(k, 0.1, now)  # leases 0.1 plus headroom: a quarter of the room left
        await one.commit(k, 10, 0.1, now, hold)
        assert (await two_db.fetchone(held, [k.id])) == {"n": 325_000_000}  # 0.1 + (1.0 - 0.1) / 4
        await asyncio.sleep(1.0)  # one is idle: its lease shrinks to its calls in flight (none)
        assert (await two_db.fetchone(held, [k.id])) == {"n": 0}
        spent = await two_db.fetchone("SELECT nanos FROM sophia_spend WHERE key_id = ?", [k.id])
        assert spent == {"nanos": 100_000_000}
        hold = await two.reserve(k, 0.85, now)  # 0.1 spent: the rest is two's to lease
        assert hold is not None and hold.leased
        await two.commit(k, 10, 0.85, now, hold)
    finally:
        await one.close()
        await two.close()
        await one_db.close()
        await two_db.close()
