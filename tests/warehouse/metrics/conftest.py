"""The demo warehouse at a small scale, in DuckDB and (for parity tests) in a PostgreSQL database of its own."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from sophia.storage.testing import TEST_POSTGRES_URL
from sophia.warehouse.demo import build_duckdb, load_postgres
from sophia.warehouse.metrics import MetricCatalog, load_catalog
from warehouse.metrics.metrics_helpers import Postgres

SCALE = 0.02


def _server(database: str) -> str:
    return f"{TEST_POSTGRES_URL.rsplit('/', 1)[0]}/{database}"


@pytest.fixture(scope="session")
def catalog() -> MetricCatalog:
    return load_catalog()


@pytest.fixture(scope="session")
def demo_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("metrics") / "demo.duckdb"
    build_duckdb(path, scale=SCALE)
    return path


@pytest.fixture(scope="session")
def duck(demo_duckdb: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(demo_duckdb), read_only=True)
    yield con
    con.close()


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_server("postgres"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg(demo_duckdb: Path) -> Iterator[Postgres]:
    name = f"sophia_t_{secrets.token_hex(5)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        load_postgres(demo_duckdb, _server(name))
        client = Postgres(_server(name))
        try:
            yield client
        finally:
            client.close()
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
