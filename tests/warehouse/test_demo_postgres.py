"""``load_postgres`` puts the same rows in PostgreSQL as the DuckDB file holds, idempotently."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import duckdb
import pytest

from sophia.errors import StorageError
from sophia.storage.testing import TEST_POSTGRES_URL
from sophia.warehouse.demo import TABLES, build_duckdb, load_postgres_async
from sophia.warehouse.demo.build import ORDER_BY

pytestmark = pytest.mark.postgres


def database_url(name: str) -> str:
    return urlunsplit(urlsplit(TEST_POSTGRES_URL)._replace(path=f"/{name}", query=""))


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    """A database of its own (``sophia_t_<hex>``), dropped afterwards."""
    import asyncpg

    name = f"sophia_t_{secrets.token_hex(5)}"
    admin = await asyncpg.connect(database_url("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield database_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def duckdb_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY {ORDER_BY[table]}").fetchall()


async def test_postgres_holds_the_same_rows_as_duckdb(tmp_path: Path, fresh_database: str) -> None:
    import asyncpg

    path = tmp_path / "demo.duckdb"
    counts = build_duckdb(path, scale=0.02, seed=5)
    assert await load_postgres_async(path, fresh_database, schema="demo") == counts
    assert await load_postgres_async(path, fresh_database, schema="demo") == counts  # again: same tables
    conn = await asyncpg.connect(fresh_database)
    try:
        for table in TABLES:
            rows = await conn.fetch(f"SELECT * FROM demo.{table} ORDER BY {ORDER_BY[table]}")
            assert [tuple(r) for r in rows] == duckdb_rows(path, table), table
        types = await conn.fetch(
            """SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = 'demo' AND column_name IN ('amount', 'started_at', 'has_transcript')"""
        )
        assert {(r["table_name"], r["data_type"]) for r in types} >= {
            ("deals", "numeric"),
            ("calls", "timestamp without time zone"),
            ("calls", "boolean"),
        }
        assert await conn.fetchval("SELECT count(*) FROM pg_stats WHERE schemaname = 'demo'") > 0  # analyzed
    finally:
        await conn.close()


async def test_a_failed_connection_never_shows_the_password(tmp_path: Path) -> None:
    path = tmp_path / "demo.duckdb"
    build_duckdb(path, scale=0.01)
    password = secrets.token_hex(8)
    with pytest.raises(StorageError) as caught:
        await load_postgres_async(path, f"postgresql://demo:{password}@127.0.0.1:1/nowhere")
    assert password not in str(caught.value) and "127.0.0.1" in str(caught.value)
