"""Observation rows in the cache stores: append-only, read by cursor, shared by every instance.

Each test runs on a real SQLite file, a fresh PostgreSQL schema and a unique Redis key prefix,
so what one store instance appends another one (or a restarted one) reads back.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from sophia.cache import store_redis
from sophia.cache.entries import Entry, EntryTable, Payload
from sophia.cache.observations import KINDS, Observation
from sophia.cache.store import CacheStore
from sophia.cache.store_local import LocalStore
from sophia.cache.store_redis import RedisStore
from sophia.errors import StorageError
from sophia.storage.testing import TEST_REDIS_URL, database_url, forget_redis_prefix

Opener = Callable[..., Awaitable[CacheStore]]

SQL = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
ALL = [*SQL, pytest.param("redis", marks=pytest.mark.redis)]


def rows(
    n: int, *, start: int = 0, alias: Callable[[int], str] = lambda i: "sophia/fast"
) -> list[Observation]:
    """``n`` distinct rows; floats that are not round numbers, so a lossy store would show."""
    return [
        Observation(
            alias=alias(i),
            namespace=f"ns-{i % 3}",
            entry_id=f"e{i}",
            kind=KINDS[i % len(KINDS)],
            ts=1_750_000_000.125 + i / 7,
            z=(i % 17) / 3 - 4,
            cos=0.5 + i / 100_003,
            margin=4.0 if i % 5 == 0 else 0.1 * i,
            spread=i / 9,
            y=i % 2,
            cost_usd=0.0001 * i,
            age=i * 1.5,
            origin="instance-a",
        )
        for i in range(start, start + n)
    ]


async def _backend(kind: str, tmp_path: Path, stack: AsyncExitStack) -> Callable[[], CacheStore]:
    """A maker of store instances that all share one fresh database or Redis key prefix."""
    if kind == "redis":
        prefix = f"sophia-test:{secrets.token_hex(6)}:"
        stack.push_async_callback(forget_redis_prefix, prefix)
        return lambda: RedisStore(TEST_REDIS_URL, prefix)
    url = await stack.enter_async_context(database_url(kind, tmp_path))
    return lambda: LocalStore(url)


@asynccontextmanager
async def stores_on(kind: str, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens store instances on one fresh backend of ``kind``; closes them, then drops the backend."""
    opened: list[CacheStore] = []
    async with AsyncExitStack() as stack:
        make = await _backend(kind, tmp_path, stack)

        async def open_one(*, follow: bool = False) -> CacheStore:
            store = make()
            await store.start(EntryTable(), follow=follow)
            opened.append(store)
            return store

        yield open_one
        for store in opened:
            await store.close()  # before the schema or the keys go


@pytest.fixture(params=ALL)
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """``await open_store()``: one more instance (``follow=False`` unless asked) on a shared backend."""
    async with stores_on(request.param, tmp_path) as opener:
        yield opener


@pytest.fixture(params=SQL)
async def open_sql(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    async with stores_on(request.param, tmp_path) as opener:
        yield opener


async def read_all(store: CacheStore, after: str = "", page: int = 1000) -> tuple[list[Observation], str]:
    got: list[Observation] = []
    while True:
        batch, cursor = await store.observations(after, page)
        if not batch:
            assert cursor == after
            return got, cursor
        got.extend(batch)
        after = cursor


async def test_rows_come_back_equal_in_order_and_the_cursor_moves_on(open_store: Opener) -> None:
    store = await open_store()
    assert await store.observations() == ([], "")
    first = rows(3)
    await store.add_observations(first)
    got, cursor = await store.observations()
    assert got == first
    assert cursor != ""
    assert await store.observations(cursor) == ([], cursor)  # nothing new: the same cursor

    second = rows(2, start=3)
    await store.add_observations(second)
    await store.add_observations([])  # nothing to append is no error
    got, later = await store.observations(cursor)
    assert got == second
    assert later != cursor
    assert await store.observations(later) == ([], later)


async def test_rows_written_by_one_instance_are_read_by_another(open_store: Opener) -> None:
    writer, reader = await open_store(follow=True), await open_store()
    written = rows(40, alias=lambda i: f"alias-{i % 2}")
    await writer.add_observations(written[:25])
    got, cursor = await reader.observations()
    assert got == written[:25]
    await writer.add_observations(written[25:])
    more, _ = await reader.observations(cursor)
    assert more == written[25:]


async def test_rows_are_read_in_pages_of_at_most_limit(open_store: Opener) -> None:
    store = await open_store()
    written = rows(2500)
    await store.add_observations(written)
    pages, cursor = [], ""
    for _ in range(4):
        page, cursor = await store.observations(cursor, 1000)
        pages.append(page)
    assert [len(p) for p in pages] == [1000, 1000, 500, 0]
    assert [r for p in pages for r in p] == written


async def test_a_restarted_instance_reads_every_kept_row(open_store: Opener) -> None:
    first = await open_store()
    written = rows(120)
    await first.add_observations(written)
    await first.close()
    again = await open_store()
    got, cursor = await read_all(again, page=50)
    assert got == written
    more = rows(1, start=120)
    await again.add_observations(more)
    assert (await again.observations(cursor))[0] == more  # ids go on after a restart


async def test_concurrent_writers_lose_nothing_for_a_reader_that_follows(open_store: Opener) -> None:
    """A cursor must never move past a row that another writer commits later."""
    one, two, reader = await open_store(), await open_store(), await open_store()
    written = rows(1000)  # enough commits that, without the lock, PostgreSQL usually shows the race

    async def write(store: CacheStore, part: list[Observation]) -> None:
        for start in range(0, len(part), 4):
            await store.add_observations(part[start : start + 4])

    writers = asyncio.gather(write(one, written[::2]), write(two, written[1::2]))
    seen: list[Observation] = []
    cursor = ""
    while not writers.done():
        batch, cursor = await reader.observations(cursor, 7)
        seen.extend(batch)
        await asyncio.sleep(0)
    await writers
    rest, _ = await read_all(reader, cursor)
    seen.extend(rest)
    assert sorted(seen, key=lambda r: r.entry_id) == sorted(written, key=lambda r: r.entry_id)


async def test_trim_keeps_the_newest_rows_of_each_alias(open_sql: Opener) -> None:
    store = await open_sql()
    written = rows(40, alias=lambda i: "rare" if i % 4 == 0 else "common")  # 10 rare, 30 common
    await store.add_observations(written)
    assert await store.trim_observations(8) == (30 - 8) + (10 - 8)
    kept = [r for r in written if r.alias == "common"][-8:] + [r for r in written if r.alias == "rare"][-8:]
    got, cursor = await read_all(store)
    assert got == sorted(kept, key=written.index)
    assert await store.trim_observations(8) == 0
    assert await store.trim_observations(9) == 0  # under the bound: nothing to drop
    after = rows(1, start=40)
    await store.add_observations(after)
    assert (await store.observations(cursor))[0] == after  # the cursor survives a trim


async def test_trim_to_zero_empties_every_alias(open_sql: Opener) -> None:
    store = await open_sql()
    await store.add_observations(rows(6, alias=lambda i: f"a{i % 3}"))
    assert await store.trim_observations(0) == 6
    assert await store.observations() == ([], "")


async def test_a_cursor_of_another_store_is_refused(open_sql: Opener) -> None:
    store = await open_sql()
    with pytest.raises(ValueError, match="not a cursor"):
        await store.observations("1700000000000-0")


@pytest.mark.redis
async def test_redis_caps_the_stream_instead_of_trimming_per_alias(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(store_redis, "OBSERVATIONS_MAXLEN", 50)
    async with stores_on("redis", tmp_path) as open_redis:
        store = await open_redis()
        written = rows(1000)
        await store.add_observations(written)
        assert await store.trim_observations(1) == 0  # no per-alias trim in a stream
        got, _ = await read_all(store)
        assert 50 <= len(got) < 1000  # MAXLEN trims whole nodes (approximately), oldest first
        assert got == written[-len(got) :]


async def test_redis_failures_are_storage_errors() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", "sophia-test:nowhere:")
    await store.start(EntryTable(), follow=False)
    try:
        with pytest.raises(StorageError, match="add observations failed"):
            await store.add_observations(rows(1))
        with pytest.raises(StorageError, match="read observations failed"):
            await store.observations()
    finally:
        await store.close()


def forgetful_class() -> type[CacheStore]:
    """A fresh class each time: the store logs once per class."""

    class Forgetful(CacheStore):
        """A third-party store written before observations existed: entries only, in a dict."""

        def __init__(self) -> None:
            self.entries: dict[str, Payload] = {}

        async def start(self, table: EntryTable, *, follow: bool = True) -> None:
            return None

        async def put(self, entry: Entry, vector: Any, payload: Payload) -> None:
            self.entries[entry.id] = payload

        async def fetch(self, entry: Entry) -> Payload | None:
            return self.entries.get(entry.id)

        async def delete(self, entry_ids: Iterable[str]) -> int:
            return sum(self.entries.pop(i, None) is not None for i in entry_ids)

        async def select(self, *, tag: str | None, model: str | None, tenant: str | None) -> set[str]:
            return set(self.entries)

        async def versions(self, tags: Iterable[str]) -> dict[str, int]:
            return dict.fromkeys(tags, 0)

        async def bump(self, tag: str) -> int:
            return 1

        async def count(self) -> int:
            return len(self.entries)

        async def close(self) -> None:
            self.entries.clear()

    return Forgetful


async def test_a_store_without_observations_keeps_none_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sophia.cache.store")
    forgetful = forgetful_class()
    store = forgetful()
    await store.add_observations(rows(3))
    await store.add_observations(rows(2))
    await forgetful().add_observations(rows(1))  # once per store class, not per instance
    assert await store.observations("7", 10) == ([], "7")
    assert await store.observations() == ([], "")
    assert await store.trim_observations(0) == 0
    said = [r for r in caplog.records if "keeps no observations" in r.getMessage()]
    assert len(said) == 1
    assert said[0].levelno == logging.INFO
    assert "Forgetful" in said[0].getMessage()
