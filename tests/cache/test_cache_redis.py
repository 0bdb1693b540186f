"""Two ResponseCache instances on one real Redis see each other's entries, purges and bumps."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from cache.cache_helpers import answer, eventually, remember
from sophia.cache import CacheSettings, ResponseCache
from sophia.cache.store_redis import RedisStore
from sophia.storage.testing import TEST_REDIS_URL, forget_redis_prefix

pytestmark = pytest.mark.redis


@pytest.fixture
async def pair() -> AsyncIterator[Callable[[], Awaitable[ResponseCache]]]:
    """A factory of caches sharing one unique key prefix; everything under it is deleted afterwards."""
    prefix = f"sophia-test:{secrets.token_hex(6)}:"
    opened: list[ResponseCache] = []

    async def open_one() -> ResponseCache:
        settings = CacheSettings(store="redis", redis_prefix=prefix, threshold=0.5)
        cache = ResponseCache(settings, RedisStore(TEST_REDIS_URL, prefix))
        await cache.start()
        opened.append(cache)
        return cache

    yield open_one
    for cache in opened:
        await cache.close()
    await forget_redis_prefix(prefix)


async def test_an_entry_stored_by_one_instance_is_served_by_the_other(pair: Any) -> None:
    one, two = await pair(), await pair()
    await remember(one, "How do I reset my password?", "Use the reset link.")
    assert await eventually(lambda: answer(two, "How do I reset my password?")) == "Use the reset link."
    semantic = await eventually(lambda: answer(two, "How can I reset my password?"))
    assert semantic == "Use the reset link."
    assert len(two.table) == 1


async def test_a_new_instance_loads_existing_entries(pair: Any) -> None:
    one = await pair()
    await remember(one, "What is our refund policy?", "30 days.")
    late = await pair()
    assert len(late.table) == 1
    assert await answer(late, "What is our refund policy?") == "30 days."


async def test_purge_on_one_instance_reaches_the_other(pair: Any) -> None:
    one, two = await pair(), await pair()
    await remember(one, "What is our refund policy?", "30 days.", model="sophia/smart")
    await remember(one, "How do I reset my password?", "Use the reset link.")
    await eventually(lambda: asyncio.sleep(0, len(two.table) == 2))
    assert await two.purge(model="sophia/smart") == 1
    assert await answer(one, "What is our refund policy?", model="sophia/smart") is None
    await eventually(lambda: asyncio.sleep(0, len(one.table) == 1))
    assert len(one.table) == 1
    assert await answer(one, "How do I reset my password?") == "Use the reset link."


async def test_tag_bump_on_one_instance_invalidates_everywhere(pair: Any) -> None:
    one, two = await pair(), await pair()
    await remember(one, "What were our Q3 deals?", "Twelve deals.", tags=("crm.deals",))
    assert await eventually(lambda: answer(two, "What were our Q3 deals?", tags=("crm.deals",)))
    assert await one.bump("crm.deals") == 1
    # no waiting: the version check and the store confirm every hit
    assert await answer(two, "What were our Q3 deals?", tags=("crm.deals",)) is None
    await remember(two, "What were our Q3 deals?", "Thirteen deals.", tags=("crm.deals",))
    fresh = await eventually(lambda: answer(one, "What were our Q3 deals?", tags=("crm.deals",)))
    assert fresh == "Thirteen deals."


async def test_stats_count_the_shared_entries(pair: Any) -> None:
    one, two = await pair(), await pair()
    await remember(one, "Question one?")
    await remember(two, "Question two?")
    assert (await one.stats())["entries"] == 2
