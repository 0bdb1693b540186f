"""Two ResponseCache instances on one real PostgreSQL keep their indexes in step (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from cache.cache_helpers import answer, eventually, remember
from sophia.cache import CacheSettings, ResponseCache
from sophia.cache.store_local import LocalStore
from sophia.storage.testing import postgres_schema

pytestmark = pytest.mark.postgres

Factory = Callable[[], Awaitable[ResponseCache]]


@pytest.fixture
async def on_postgres() -> AsyncIterator[Callable[[str], Factory]]:
    """``on_postgres(schema_key)``: a factory of caches sharing one fresh schema per key."""
    opened: list[ResponseCache] = []
    schemas: dict[str, str] = {}
    async with postgres_schema() as first, postgres_schema() as second:
        urls = iter((first, second))

        def factory(key: str) -> Factory:
            async def open_one() -> ResponseCache:
                url = schemas.setdefault(key, next(urls))
                cache = ResponseCache(CacheSettings(threshold=0.5), LocalStore(url))
                await cache.start()
                opened.append(cache)
                return cache

            return open_one

        yield factory
        for cache in opened:
            await cache.close()


async def test_an_entry_stored_by_one_instance_reaches_the_others_index(on_postgres: Any) -> None:
    pair = on_postgres("shared")
    one, two = await pair(), await pair()
    await remember(one, "How do I reset my password?", "Use the reset link.")
    # in two's in-memory index without a restart: exact and semantic hits
    assert await eventually(lambda: asyncio.sleep(0, len(two.table) == 1))
    assert await answer(two, "How do I reset my password?") == "Use the reset link."
    assert await answer(two, "How can I reset my password?") == "Use the reset link."


async def test_purges_reach_the_other_index(on_postgres: Any) -> None:
    pair = on_postgres("shared")
    one, two = await pair(), await pair()
    await remember(one, "What is our refund policy?", "30 days.", model="sophia/smart")
    await remember(one, "How do I reset my password?", "Use the reset link.")
    assert await eventually(lambda: asyncio.sleep(0, len(two.table) == 2))
    assert await two.purge(model="sophia/smart") == 1
    assert await eventually(lambda: asyncio.sleep(0, len(one.table) == 1))
    assert await answer(one, "What is our refund policy?", model="sophia/smart") is None
    assert await answer(one, "How do I reset my password?") == "Use the reset link."


async def test_a_replaced_answer_replaces_it_everywhere(on_postgres: Any) -> None:
    pair = on_postgres("shared")
    one, two = await pair(), await pair()
    await remember(one, "What were our Q3 deals?", "Twelve deals.", tags=("crm.deals",))
    assert await eventually(lambda: answer(two, "What were our Q3 deals?", tags=("crm.deals",)))
    assert await one.bump("crm.deals") == 1
    assert await answer(two, "What were our Q3 deals?", tags=("crm.deals",)) is None  # at once
    await remember(two, "What were our Q3 deals?", "Thirteen deals.", tags=("crm.deals",))
    fresh = await eventually(lambda: answer(one, "What were our Q3 deals?", tags=("crm.deals",)))
    assert fresh == "Thirteen deals."
    assert len(one.table) == 1 and len(two.table) == 1


async def test_instances_on_another_schema_hear_nothing(on_postgres: Any) -> None:
    here, elsewhere = await on_postgres("a")(), await on_postgres("b")()
    await remember(elsewhere, "How do I reset my password?", "Use the reset link.")
    await remember(here, "What is our refund policy?", "30 days.")
    await asyncio.sleep(0.3)  # ample time for a stray notification to arrive
    assert len(here.table) == 1 and len(elsewhere.table) == 1
    assert await answer(here, "How do I reset my password?") is None


async def test_a_lost_notification_connection_is_replaced_and_the_index_reloaded(on_postgres: Any) -> None:
    import asyncpg

    from sophia.storage.testing import TEST_POSTGRES_URL

    pair = on_postgres("shared")
    one, two = await pair(), await pair()
    store = two.store_backend
    assert isinstance(store, LocalStore)
    conn = await asyncpg.connect(TEST_POSTGRES_URL)
    try:  # the database drops both listening connections (as a restart or a failover would)
        killed = await conn.fetchval(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1",
            f'LISTEN "{store._channel}"',
        )
    finally:
        await conn.close()
    assert killed == 2
    await remember(one, "What is our refund policy?", "30 days.")  # possibly before two listens again
    assert await eventually(lambda: answer(two, "What is our refund policy?")) == "30 days."
    await remember(two, "How do I reset my password?", "Use the reset link.")
    assert await eventually(lambda: asyncio.sleep(0, len(one.table) == 2))
