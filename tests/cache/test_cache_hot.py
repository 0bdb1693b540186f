"""Hits from memory, writes in batches: the cache's hot path costs no store round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from cache.cache_helpers import answer, chat, ctx, remember
from sophia.cache import ResponseCache
from sophia.cache.entries import Payload
from sophia.cache.hot import BatchWriter, HotAnswers
from sophia.errors import StorageError


def test_hot_answers_keep_a_byte_budget_and_expire_their_confirmation() -> None:
    hot = HotAnswers(budget=10, confirm_interval=1.0)
    hot.put("a", Payload(b"12345", "m", 1, 1, 0.0), now=0.0)
    hot.put("b", Payload(b"12345", "m", 1, 1, 0.0), now=0.0)
    assert hot.get("a", now=0.5) is not None  # used: now the newest
    hot.put("c", Payload(b"123", "m", 1, 1, 0.0), now=0.5)
    assert hot.get("b", now=0.6) is None and hot.size == 8  # least recently used went first
    assert hot.get("a", now=1.2) is None  # confirmed more than a second ago: ask the store
    hot.put("big", Payload(b"x" * 11, "m", 1, 1, 0.0))
    assert hot.get("big") is None  # larger than the whole budget: never kept


async def test_a_hit_is_served_from_memory_without_asking_the_store(cache: ResponseCache) -> None:
    await remember(cache, "Which invoices are overdue?")
    fetched: list[str] = []
    real = cache.store_backend.fetch

    async def counting(entry: Any) -> Any:
        fetched.append(entry.id)
        return await real(entry)

    cache.store_backend.fetch = counting  # type: ignore[method-assign]
    for _ in range(5):
        assert await answer(cache, "Which invoices are overdue?") == "answer to: Which invoices are overdue?"
    assert fetched == []
    cache.hot.confirm_interval = 0.0  # every hit confirmed by the store
    assert await answer(cache, "Which invoices are overdue?") is not None
    assert len(fetched) == 1


async def test_concurrent_answers_are_written_in_one_batch(cache: ResponseCache) -> None:
    batches: list[int] = []
    real = cache.store_backend.put_many

    async def counting(writes: Any) -> None:
        batches.append(len(writes))
        await real(writes)

    cache.store_backend.put_many = counting  # type: ignore[method-assign]
    for i in range(50):  # exact-only answers need no embedding: kept at once, no task
        cache.store_soon(chat(f"Question {i}?"), ctx(strategy="exact"), b"answer", 1, 1, "m", 0.0)
    assert not cache._tasks
    assert await answer(cache, "Question 7?", strategy="exact") == "answer"  # in memory before it is written
    await cache.drain()
    assert sum(batches) == 50 and len(batches) <= 2
    assert await cache.store_backend.count() == 50


async def test_the_same_question_answered_twice_at_once_is_stored_once(
    cache: ResponseCache, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.gather(*(remember(cache, "What is our churn?", f"answer {i}") for i in range(4)))
    await cache.drain()
    assert await cache.store_backend.count() == 1 and len(cache.table) == 1
    assert await answer(cache, "What is our churn?") in {f"answer {i}" for i in range(4)}
    assert "not cached" not in caplog.text


async def test_a_failed_write_is_logged_and_the_answer_leaves_the_cache(
    cache_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    cache = await cache_factory(confirm_interval=0.0)

    async def failing(writes: Any) -> None:
        raise StorageError("database is down (test)")

    cache.store_backend.put_many = failing  # type: ignore[method-assign]
    await remember(cache, "Who owns the Denver account?")
    assert "not stored" in caplog.text
    assert await answer(cache, "Who owns the Denver account?") is None  # the store does not have it


async def test_the_writer_bounds_what_waits_and_reports_overflow() -> None:
    release = asyncio.Event()
    written: list[int] = []

    async def slow(writes: list[Any]) -> None:
        await release.wait()
        written.append(len(writes))

    writer = BatchWriter(slow, batch_size=4, max_pending=6)
    from cache.cache_helpers import MODEL
    from sophia.cache.entries import Entry

    def entry(i: int) -> Entry:
        return Entry(f"e{i}", "ns", f"x{i}", "", MODEL, "t", {}, 0.0, None, False)

    for i in range(10):
        writer.submit((entry(i), None, Payload(b"a", "m", 1, 1, 0.0)))
    await asyncio.sleep(0)
    assert writer.dropped >= 4 and len(writer.pending) <= 6
    release.set()
    await writer.close()
    assert sum(written) == 10 - writer.dropped and not writer.pending
