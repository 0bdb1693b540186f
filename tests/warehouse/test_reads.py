"""Zero refusals on reads: the 22 TPC-H queries and everyday analytics pass the guard in both dialects
and run on both engines, returning what the caller's own text returns (the guard's regenerated
statement is faithful)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import duckdb
import pytest

from sophia.warehouse.backends.base import Backend, to_json
from sophia.warehouse.backends.duckdb import READ_ONLY_CONFIG, DuckDBBackend
from sophia.warehouse.backends.postgres import PostgresBackend
from sophia.warehouse.guard import check
from warehouse.corpus.reads import BOTH, DUCKDB, POSTGRES, tpch_queries
from warehouse.warehouse_helpers import SETTINGS, PostgresWarehouse

TPCH = tpch_queries()


def test_there_are_22_tpch_queries() -> None:
    assert [name for name, _ in TPCH] == [f"q{i:02d}" for i in range(1, 23)]


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_guard_passes_every_read(dialect: str) -> None:
    own = DUCKDB if dialect == "duckdb" else POSTGRES
    for sql in [q for _, q in TPCH] + BOTH + own:
        checked = check(sql, dialect)
        assert checked.sql and checked.kind in ("select", "explain", "describe", "show")


def test_tables_read_exclude_ctes() -> None:
    q15 = dict(TPCH)["q15"]
    assert check(q15, "duckdb").tables == ("lineitem", "supplier")  # not the CTE "revenue"
    assert check(dict(TPCH)["q02"], "postgres").tables == ("nation", "part", "partsupp", "region", "supplier")


def _normal(rows: list[Any]) -> list[str]:
    """Rows compared as JSON values, order-insensitive (ties in ORDER BY may come either way)."""
    return sorted(repr([_round(to_json(v)) for v in row]) for row in rows)


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


@pytest.fixture
async def duckdb_backend(tpch_duckdb: Path) -> AsyncIterator[Backend]:
    backend = DuckDBBackend(f"duckdb:///{tpch_duckdb}", SETTINGS)
    yield backend
    await backend.close()


async def test_duckdb_runs_every_read_as_written(duckdb_backend: Backend, tpch_duckdb: Path) -> None:
    direct = duckdb.connect(
        str(tpch_duckdb), read_only=True, config=dict(READ_ONLY_CONFIG)
    )  # one config per file
    try:
        for sql in [q for _, q in TPCH] + BOTH + DUCKDB:
            page = await duckdb_backend.query(sql, limit=10_000)
            assert not page.truncated
            if check(sql, "duckdb").kind == "select":
                assert _normal(page.rows) == _normal(direct.execute(sql).fetchall()), sql
    finally:
        direct.close()


async def test_most_tpch_queries_return_rows_on_the_tiny_data(duckdb_backend: Backend) -> None:
    non_empty = [name for name, sql in TPCH if (await duckdb_backend.query(sql, limit=1)).rows]
    assert len(non_empty) >= 12, non_empty


@pytest.fixture
async def postgres_backend(pg_tpch: PostgresWarehouse) -> AsyncIterator[Backend]:
    backend = PostgresBackend(pg_tpch.readonly_url, SETTINGS)
    yield backend
    await backend.close()


@pytest.mark.postgres
async def test_postgres_runs_every_read_as_written(
    postgres_backend: Backend, pg_tpch: PostgresWarehouse
) -> None:
    admin = await asyncpg.connect(pg_tpch.admin_url)
    try:
        for sql in [q for _, q in TPCH] + BOTH + POSTGRES:
            page = await postgres_backend.query(sql, limit=10_000)
            assert not page.truncated
            if check(sql, "postgres").kind == "select" and "now()" not in sql:
                assert _normal(page.rows) == _normal(await admin.fetch(sql)), sql
    finally:
        await admin.close()
