"""Read-only in two layers, each sufficient alone: every side effect of the corpus is refused by the
guard with the connection unguarded, and by the connection with the guard switched off.

Layer (a) is pure: ``guard.check`` on each statement in the engine's dialect. Layer (b) runs each
statement on the real read-only connection (``guard=False``) and asserts the engine refuses it
(``query_failed``), cancels it (``query_timeout``) or, for the few the corpus marks CONFINED with
a reason, that it leaves nothing behind: the same database file, catalog, settings and session
state before and after.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from sophia.errors import InvalidRequest
from sophia.warehouse.backends.base import Backend
from sophia.warehouse.backends.duckdb import DuckDBBackend
from sophia.warehouse.backends.postgres import PostgresBackend
from sophia.warehouse.guard import QueryRefused, check
from warehouse.corpus.side_effects import CONFINED, DUCKDB, ERROR, GAP, POSTGRES, TIMEOUT, Case
from warehouse.warehouse_helpers import SETTINGS, PostgresWarehouse

#: one session, so its state is observable; sleeps cut after 300 ms
PG_SETTINGS = SETTINGS.model_copy(update={"pool_size": 1, "statement_timeout": 0.3})


def test_the_corpus_is_big_enough() -> None:
    assert len(DUCKDB) >= 60
    assert len(POSTGRES) >= 60
    assert len({c.sql for c in DUCKDB}) == len(DUCKDB)
    assert len({c.sql for c in POSTGRES}) == len(POSTGRES)
    assert all(c.note for c in DUCKDB + POSTGRES if c.engine == CONFINED)


# -- (a) the guard alone ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", DUCKDB, ids=str)
def test_guard_refuses_duckdb_side_effect(case: Case) -> None:
    with pytest.raises(QueryRefused) as refused:
        check(case.sql, "duckdb")
    assert refused.value.code == "query_refused" and refused.value.message


@pytest.mark.parametrize("case", POSTGRES, ids=str)
def test_guard_refuses_postgres_side_effect(case: Case) -> None:
    with pytest.raises(QueryRefused) as refused:
        check(case.sql, "postgres")
    assert refused.value.code == "query_refused" and refused.value.message


# -- (b) the connection alone: DuckDB -----------------------------------------------------------------


@pytest.fixture(scope="module")
def duckdb_copy(tpch_duckdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ro") / "tpch.duckdb"
    shutil.copy(tpch_duckdb, path)
    return path


@pytest.fixture
async def unguarded_duckdb(duckdb_copy: Path) -> AsyncIterator[DuckDBBackend]:
    backend = DuckDBBackend(f"duckdb:///{duckdb_copy}", SETTINGS, guard=False)
    yield backend
    await backend.close()


async def _duckdb_state(backend: Backend, path: Path, case: Case) -> tuple[Any, ...]:
    queries = [
        "SELECT database_name FROM duckdb_databases() ORDER BY 1",
        "SELECT table_name, temporary, estimated_size FROM duckdb_tables() ORDER BY 1",
        "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1",
        "SELECT current_setting('threads'), current_setting('enable_external_access'), current_setting('memory_limit')",
        "SELECT getvariable('sophia_v')",
        "SELECT count(*), sum(n_nationkey) FROM nation",
    ]
    if "MACRO" in case.sql:  # listing the functions is slow (35 ms): only where a macro could appear
        queries.append(
            "SELECT function_name FROM duckdb_functions() WHERE function_type LIKE '%macro%' AND NOT internal"
        )
    results = [(await backend.query(q, limit=1000)).rows for q in queries]
    return (_digest(path), *map(repr, results))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers() -> list[str]:
    names = (
        "/tmp/sophia_h1_copy.csv",
        "/tmp/sophia_h1_copy.parquet",
        "/tmp/sophia_h1_export",
        "/tmp/sophia_h1_lo",
    )
    return [name for name in names if Path(name).exists()]


@pytest.mark.parametrize("case", DUCKDB, ids=str)
async def test_duckdb_connection_refuses_side_effect(
    case: Case, unguarded_duckdb: DuckDBBackend, duckdb_copy: Path
) -> None:
    before = await _duckdb_state(unguarded_duckdb, duckdb_copy, case)
    await _run_case(unguarded_duckdb, case)
    assert await _duckdb_state(unguarded_duckdb, duckdb_copy, case) == before
    assert _leftovers() == []


async def test_duckdb_settings_hold_at_the_engine(unguarded_duckdb: DuckDBBackend) -> None:
    """Each setting of the read-only connection is in force, and none can be changed back."""
    rows = (
        await unguarded_duckdb.query(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('access_mode', 'enable_external_access', 'lock_configuration', 'autoload_known_extensions',"
            " 'autoinstall_known_extensions')",
            limit=10,
        )
    ).rows
    assert dict(map(tuple, rows)) == {  # type: ignore[arg-type]
        "access_mode": "read_only",
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoload_known_extensions": "false",
        "autoinstall_known_extensions": "false",
    }
    for statement in (
        "SET enable_external_access = true",
        "SET access_mode = 'read_write'",
        "SET lock_configuration = false",
    ):
        with pytest.raises(InvalidRequest, match=r"locked|Cannot change"):
            await unguarded_duckdb.query(statement, limit=1)


# -- (b) the connection alone: PostgreSQL -------------------------------------------------------------


@pytest.fixture
async def unguarded_postgres(pg_tpch: PostgresWarehouse) -> AsyncIterator[PostgresBackend]:
    backend = PostgresBackend(pg_tpch.readonly_url, PG_SETTINGS, guard=False)
    yield backend
    await backend.close()


async def _postgres_state(admin: asyncpg.Connection, backend: Backend) -> tuple[Any, ...]:
    data = await admin.fetch(
        "SELECT (SELECT count(*) FROM region), (SELECT md5(string_agg(n_name, ',' ORDER BY n_nationkey)) FROM nation),"
        " (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace),"
        " (SELECT last_value FROM s), (SELECT count(*) FROM pg_largeobject_metadata),"
        " (SELECT count(*) FROM pg_roles WHERE rolname = 'sophia_h1_intruder'),"
        " (SELECT obj_description('nation'::regclass)), (SELECT n FROM mv),"
        " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory')"
    )
    session = (
        await backend.query(
            "SELECT current_setting('statement_timeout'), current_setting('default_transaction_read_only'),"
            " current_setting('transaction_read_only'), (SELECT count(*) FROM pg_listening_channels()),"
            " (SELECT count(*) FROM pg_prepared_statements WHERE name = 'sophia_p')",
            limit=1,
        )
    ).rows
    return tuple(data[0]), repr(session)


@pytest.mark.postgres
@pytest.mark.parametrize("case", POSTGRES, ids=str)
async def test_postgres_connection_refuses_side_effect(
    case: Case, unguarded_postgres: PostgresBackend, pg_tpch: PostgresWarehouse
) -> None:
    admin = await asyncpg.connect(pg_tpch.admin_url)  # also a superuser session the case may aim at
    try:
        before = await _postgres_state(admin, unguarded_postgres)
        assert "'300ms', 'on', 'on'" in before[1]
        await _run_case(unguarded_postgres, case)
        assert await _postgres_state(admin, unguarded_postgres) == before
    finally:
        await admin.close()


async def _run_case(backend: Backend, case: Case) -> None:
    if case.engine in (CONFINED, GAP):
        # The engine runs it: CONFINED leaves nothing behind (the caller compares the state), GAP has
        # an effect outside the database's state that only the guard prevents (see the case's note).
        await backend.query(case.sql, limit=10)
        return
    with pytest.raises(InvalidRequest) as failed:
        await backend.query(case.sql, limit=10)
    assert not isinstance(failed.value, QueryRefused)  # the engine refused it, not the guard
    assert failed.value.code == {ERROR: "query_failed", TIMEOUT: "query_timeout"}[case.engine]
