"""The result cache never serves a result older than the last load it could see.

A seeded replay interleaves loads (rows really changed: DuckDB through a writable copy that then
replaces the served file, PostgreSQL through an admin connection), made by this process
(``Warehouse.loaded``) or by "another process" (a second ``DataVersions`` over the same database),
with reads compared to a fresh uncached execution. The stale window that ``confirm_interval``
allows is shown too.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import duckdb
import pytest

from sophia.storage import Database, open_database
from sophia.warehouse.backends.base import Column, to_json
from sophia.warehouse.backends.duckdb import DuckDBBackend
from sophia.warehouse.backends.postgres import PostgresBackend
from sophia.warehouse.results import QueryResult, ResultCache
from sophia.warehouse.versions import DataVersions
from sophia.warehouse.warehouse import Warehouse
from warehouse.warehouse_helpers import SETTINGS, PostgresWarehouse

READS = [
    "SELECT n_nationkey, n_name FROM nation ORDER BY n_nationkey",
    "SELECT r_regionkey, r_name FROM region ORDER BY r_regionkey",
    "SELECT r_name, count(*) AS n FROM nation JOIN region ON n_regionkey = r_regionkey GROUP BY r_name ORDER BY r_name",
    "SELECT count(*) FROM supplier",
]
LOADS: list[tuple[str, str]] = [  # (table, statement with one {v} placeholder)
    ("nation", "UPDATE nation SET n_name = 'N{v}' WHERE n_nationkey = {k}"),
    ("region", "UPDATE region SET r_name = 'R{v}' WHERE r_regionkey = {k5}"),
    ("nation", "UPDATE nation SET n_regionkey = {k5} WHERE n_nationkey = {k}"),
]


@pytest.fixture
async def sophia_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    yield db
    await db.close()


async def _replay(
    warehouse: Warehouse,
    other_process: DataVersions,
    write: Callable[[str], Awaitable[None]],
    truth: Callable[[str], Awaitable[list[Any]]],
    steps: int,
) -> tuple[int, int]:
    rnd = random.Random(1234)
    hits = stale = 0
    for step in range(steps):
        if rnd.random() < 0.3:
            table, template = rnd.choice(LOADS)
            await write(template.format(v=step, k=rnd.randrange(25), k5=rnd.randrange(5)))
            if rnd.random() < 0.5:
                await warehouse.loaded([table])
            else:
                await other_process.bump([table])
        else:
            sql = rnd.choice(READS)
            result = await warehouse.query(sql, limit=rnd.choice([5, 30]))
            expected = [[to_json(v) for v in row] for row in await truth(sql)][: len(result.rows)]
            hits += result.cache == "hit"
            stale += result.rows != expected
    return hits, stale


async def test_duckdb_replay_serves_nothing_stale(
    tpch_duckdb: Path, tmp_path: Path, sophia_db: Database
) -> None:
    served, work = tmp_path / "served.duckdb", tmp_path / "work.duckdb"
    shutil.copy(tpch_duckdb, work)
    shutil.copy(tpch_duckdb, served)
    writer = duckdb.connect(str(work))

    async def write(statement: str) -> None:
        writer.execute(statement)
        writer.execute("CHECKPOINT")
        shutil.copy(work, tmp_path / "next.duckdb")
        os.replace(tmp_path / "next.duckdb", served)  # what `sophia demo-data` does: a new file, atomically

    async def truth(sql: str) -> list[Any]:
        return writer.execute(sql).fetchall()

    other = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    warehouse = Warehouse(
        DuckDBBackend(f"duckdb:///{served}", SETTINGS),
        SETTINGS,
        versions=DataVersions(sophia_db, confirm_interval=0),
    )
    try:
        hits, stale = await _replay(warehouse, DataVersions(other), write, truth, steps=120)
    finally:
        await warehouse.close()
        await other.close()
        writer.close()
    assert stale == 0
    assert hits > 20  # the cache did serve: the test is not vacuous


@pytest.mark.postgres
async def test_postgres_replay_serves_nothing_stale(
    pg_tpch: PostgresWarehouse, sophia_db: Database, tmp_path: Path
) -> None:
    admin = await asyncpg.connect(pg_tpch.admin_url)
    other = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    warehouse = Warehouse(
        PostgresBackend(pg_tpch.readonly_url, SETTINGS),
        SETTINGS,
        versions=DataVersions(sophia_db, confirm_interval=0),
    )

    async def write(statement: str) -> None:
        await admin.execute(statement)

    async def truth(sql: str) -> list[Any]:
        return [tuple(r) for r in await admin.fetch(sql)]

    try:
        hits, stale = await _replay(warehouse, DataVersions(other), write, truth, steps=200)
    finally:
        await warehouse.close()
        await other.close()
        await admin.close()
    assert stale == 0 and hits > 30


async def test_the_stale_window_is_confirm_interval(
    tpch_duckdb: Path, tmp_path: Path, sophia_db: Database
) -> None:
    """A load by another process goes unseen for at most ``confirm_interval``; a load here at once."""
    served, work = tmp_path / "served.duckdb", tmp_path / "work.duckdb"
    shutil.copy(tpch_duckdb, work)
    shutil.copy(tpch_duckdb, served)
    settings = SETTINGS.model_copy(update={"confirm_interval": 0.3})
    warehouse = Warehouse(
        DuckDBBackend(f"duckdb:///{served}", settings),
        settings,
        versions=DataVersions(sophia_db, confirm_interval=0.3),
    )
    other = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    sql = "SELECT r_name FROM region WHERE r_regionkey = 0"
    try:
        assert (await warehouse.query(sql)).rows == [["AFRICA"]]
        with duckdb.connect(str(work)) as writer:
            writer.execute("UPDATE region SET r_name = 'AFRIKA' WHERE r_regionkey = 0")
        os.replace(work, served)
        await DataVersions(other).bump(["region"])  # another process loaded
        within = await warehouse.query(sql)
        assert within.rows == [["AFRICA"]] and within.cache == "hit"  # stale, inside the window
        await asyncio.sleep(0.35)
        after = await warehouse.query(sql)
        assert after.rows == [["AFRIKA"]] and after.cache == "miss"
        await warehouse.loaded(["region"])  # a load in this process is seen at once
        assert (await warehouse.query(sql)).cache == "miss"
    finally:
        await warehouse.close()
        await other.close()


async def test_loaded_bumps_versions_and_calls_back(tpch_duckdb: Path, sophia_db: Database) -> None:
    calls: list[list[str]] = []

    async def on_loaded(tables: list[str]) -> None:
        calls.append(tables)

    versions = DataVersions(sophia_db, confirm_interval=0)
    warehouse = Warehouse(
        DuckDBBackend(f"duckdb:///{tpch_duckdb}", SETTINGS), SETTINGS, versions=versions, on_loaded=on_loaded
    )
    try:
        assert await warehouse.loaded(["Nation", "region", "nation"]) == {"nation": 1, "region": 1}
        assert await warehouse.loaded(["nation"]) == {"nation": 2}
        assert calls == [["nation", "region"], ["nation"]]
        assert await versions.of(["nation", "orders"]) == (("nation", 2), ("orders", 0))
    finally:
        await warehouse.close()


def _result(rows: int) -> QueryResult:
    return QueryResult(
        [Column("a", "INTEGER")], [[i] for i in range(rows)], rows, False, None, "q", 1.0, "miss"
    )


def test_result_cache_is_bounded_by_entries_and_bytes() -> None:
    cache = ResultCache(max_entries=3, max_bytes=10_000)
    for i in range(5):
        cache.put((f"q{i}", 10, 0), (("t", 1),), _result(2))
    assert len(cache) == 3 and cache.get(("q0", 10, 0), (("t", 1),)) is None
    assert cache.get(("q4", 10, 0), (("t", 1),)) is not None
    assert cache.get(("q4", 10, 0), (("t", 2),)) is None  # another data version: gone for good
    assert cache.get(("q4", 10, 0), (("t", 1),)) is None
    small = ResultCache(max_entries=100, max_bytes=2_000)
    for i in range(10):
        small.put((f"q{i}", 10, 0), (), _result(100))
    assert small.bytes <= 2_000 and 0 < len(small) < 10
    small.put(("huge", 10, 0), (), _result(5_000))  # larger than the whole budget: not kept
    assert small.get(("huge", 10, 0), ()) is None
