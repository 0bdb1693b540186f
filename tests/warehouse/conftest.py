"""Shared warehouses for the warehouse tests: the tiny TPC-H dataset in DuckDB and in PostgreSQL.

The PostgreSQL one is a database of its own (``sophia_t_<hex>``) read through a role made by
``create_readonly_role``, both dropped when the module's tests are done.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sophia.storage.testing import TEST_POSTGRES_URL
from warehouse.tpch_data import build_duckdb, build_postgres
from warehouse.warehouse_helpers import PostgresWarehouse, server_url


@pytest.fixture(scope="session")
def tpch_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the tiny TPC-H tables (do not write to it: copy it first)."""
    path = tmp_path_factory.mktemp("tpch") / "tpch.duckdb"
    build_duckdb(str(path))
    return path


@pytest.fixture(scope="module")
def pg_tpch() -> Iterator[PostgresWarehouse]:
    """A fresh PostgreSQL database with the TPC-H tables and a read-only role."""
    import asyncpg

    from sophia.warehouse.backends.postgres import create_readonly_role

    name = f"sophia_t_{secrets.token_hex(5)}"
    role = f"{name}_ro"
    admin = server_url("postgres")

    async def setup() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(server_url(name))
        try:
            await build_postgres(conn)
        finally:
            await conn.close()
        await create_readonly_role(server_url(name), role, "public", login=True, revoke_large_objects=True)

    async def teardown() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await conn.close()

    _run(setup)
    try:
        base = TEST_POSTGRES_URL.split("://", 1)[1].split("@", 1)[-1].rsplit("/", 1)[0]
        yield PostgresWarehouse(server_url(name), f"postgresql://{role}@{base}/{name}", role)
    finally:
        _run(teardown)


def _run(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``work`` on an event loop of its own (a fixture may be set up while a test's loop runs)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work()).result()
