"""The Warehouse facade on both engines: paging with cursors, limits, JSON values, catalog, errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sophia.errors import ConfigError, InvalidRequest, StorageError
from sophia.warehouse.backends.base import to_json
from sophia.warehouse.backends.registry import BackendRegistry, default_registry, open_backend
from sophia.warehouse.guard import QueryRefused
from sophia.warehouse.warehouse import Warehouse
from warehouse.warehouse_helpers import SETTINGS, PostgresWarehouse

ENGINES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=ENGINES)
async def warehouse(request: pytest.FixtureRequest, tpch_duckdb: Path) -> AsyncIterator[Warehouse]:
    if request.param == "duckdb":
        url = f"duckdb:///{tpch_duckdb}"
    else:
        pg: PostgresWarehouse = request.getfixturevalue("pg_tpch")
        url = pg.readonly_url
    w = Warehouse(open_backend(url, SETTINGS), SETTINGS)
    yield w
    await w.close()


async def test_pages_follow_the_cursor_to_the_end(warehouse: Warehouse) -> None:
    sql = "SELECT o_orderkey FROM orders ORDER BY o_orderkey"
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = await warehouse.query(sql, limit=40, cursor=cursor)
        pages += 1
        seen += [row[0] for row in page.rows]
        assert page.row_count == len(page.rows) <= 40
        assert page.truncated == (page.next_cursor is not None)
        if not page.truncated:
            break
        cursor = page.next_cursor
    assert seen == list(range(1, 151)) and pages == 4
    assert "LIMIT 41" in page.sql and "OFFSET 120" in page.sql
    assert page.tables == ["orders"] and page.elapsed_ms >= 0


async def test_a_cursor_is_refused_with_another_statement(warehouse: Warehouse) -> None:
    first = await warehouse.query("SELECT n_name FROM nation ORDER BY n_name", limit=5)
    assert first.next_cursor
    with pytest.raises(InvalidRequest) as err:
        await warehouse.query("SELECT r_name FROM region", limit=5, cursor=first.next_cursor)
    assert err.value.code == "invalid_cursor"
    with pytest.raises(InvalidRequest, match="not one this warehouse issued"):
        await warehouse.query("SELECT r_name FROM region", cursor="garbage!")
    # the same statement written differently is the same statement
    again = await warehouse.query(
        "select   n_name from nation order by n_name -- hi", limit=5, cursor=first.next_cursor
    )
    assert again.rows[0] == ["EGYPT"]


async def test_limits_default_and_cap(warehouse: Warehouse) -> None:
    small = Warehouse(warehouse.backend, SETTINGS.model_copy(update={"row_limit": 7, "max_rows": 30}))
    assert len((await small.query("SELECT * FROM lineitem")).rows) == 7
    capped = await small.query("SELECT * FROM lineitem", limit=10_000)
    assert capped.row_count == 30 and capped.truncated
    with pytest.raises(InvalidRequest):
        await small.query("SELECT 1", limit=0)


async def test_refusals_and_engine_errors_say_why(warehouse: Warehouse) -> None:
    with pytest.raises(QueryRefused, match="only reads are allowed, not DELETE"):
        await warehouse.query("DELETE FROM nation")
    with pytest.raises(QueryRefused, match="read_csv reads files"):
        await warehouse.query("SELECT * FROM read_csv('x.csv')")
    with pytest.raises(InvalidRequest) as err:
        await warehouse.query("SELECT no_such_column FROM nation")
    assert err.value.code == "query_failed" and "no_such_column" in err.value.message
    assert "postgresql://" not in err.value.message and "duckdb://" not in err.value.message


async def test_json_values_from_the_engine(warehouse: Warehouse) -> None:
    result = await warehouse.query(
        "SELECT o_totalprice, o_orderdate, o_orderkey, cast(o_totalprice AS DECIMAL(30,10)) * 3 AS exact "
        "FROM orders WHERE o_orderkey = 1"
    )
    price, day, key, exact = result.rows[0]
    assert isinstance(price, float) and isinstance(key, int)
    assert dt.date.fromisoformat(day)  # type: ignore[arg-type]
    assert isinstance(exact, float | str)
    assert [c.name for c in result.columns] == ["o_totalprice", "o_orderdate", "o_orderkey", "exact"]


def test_to_json_keeps_values_exact() -> None:
    assert to_json(decimal.Decimal("12.50")) == 12.5
    assert to_json(decimal.Decimal("12345678901234567890.123")) == "12345678901234567890.123"
    assert to_json(dt.datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02T03:04:05"
    assert to_json(dt.date(2025, 1, 2)) == "2025-01-02"
    assert to_json(b"\x00\xff") == "AP8="
    assert to_json(float("nan")) == "NaN" and to_json(float("-inf")) == "-Infinity"
    assert to_json(decimal.Decimal("Infinity")) == "Infinity"
    assert to_json(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert to_json({"a": [dt.time(1, 2)]}) == {"a": ["01:02:00"]}
    assert to_json(dt.timedelta(minutes=1)) == 60.0


async def test_datasets_and_describe(warehouse: Warehouse) -> None:
    tables = {t.name: t for t in await warehouse.datasets()}
    assert {"nation", "region", "orders", "lineitem"} <= set(tables)
    assert tables["nation"].rows == 25 and tables["nation"].columns[0].name == "n_nationkey"
    nation = await warehouse.describe("NATION", sample_rows=3)
    assert nation.name == "nation" and nation.rows == 25 and len(nation.sample) == 3
    assert [c.nullable for c in nation.columns][:2] == [False, True]
    with pytest.raises(InvalidRequest) as err:
        await warehouse.describe("natoin")
    assert err.value.code == "unknown_table" and "did you mean nation" in err.value.message


def test_registry_finds_backends_by_scheme() -> None:
    registry = default_registry()
    assert {"duckdb", "postgresql", "postgres", "snowflake"} <= set(registry.schemes())
    with pytest.raises(ConfigError, match="unknown warehouse URL scheme 'mysql'"):
        registry.create("mysql://x", SETTINGS)
    with pytest.raises(ConfigError, match="two warehouse backends"):
        registry.register("duckdb", lambda *a, **k: None)  # type: ignore[arg-type, return-value]
    empty = BackendRegistry()
    empty.register("x", lambda url, settings, guard=True: None)  # type: ignore[arg-type, return-value]
    assert empty.schemes() == ["x"]


def test_a_missing_duckdb_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        open_backend(f"duckdb:///{tmp_path}/nope.duckdb", SETTINGS)


@pytest.mark.postgres
async def test_an_unreachable_postgres_never_shows_the_password() -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    w = Warehouse(open_backend(f"postgresql://u:{secret}@127.0.0.1:1/db", SETTINGS), SETTINGS)
    with pytest.raises(StorageError) as err:
        await w.query("SELECT 1")
    assert secret not in str(err.value) and "127.0.0.1:1" in str(err.value)
    await w.close()


async def test_duckdb_statement_timeout_interrupts(tpch_duckdb: Path) -> None:
    quick = SETTINGS.model_copy(update={"statement_timeout": 0.2})
    w = Warehouse(open_backend(f"duckdb:///{tpch_duckdb}", quick), quick)
    try:
        with pytest.raises(InvalidRequest) as err:
            await w.query("SELECT count(*) FROM range(100000000000) a")
        assert err.value.code == "query_timeout"
        assert (await w.query("SELECT 1")).rows == [[1]]  # the connection still works
    finally:
        await w.close()


async def test_duckdb_queries_run_concurrently_across_a_reopen(tpch_duckdb: Path) -> None:
    w = Warehouse(open_backend(f"duckdb:///{tpch_duckdb}", SETTINGS), SETTINGS)
    sql = "SELECT count(*) FROM lineitem l1, lineitem l2 WHERE l1.l_orderkey = l2.l_orderkey"
    try:
        expected = (await w.query(sql)).rows
        results = await asyncio.gather(*[w.query(sql) for _ in range(12)], w.reopen(), w.reopen())
        assert all(r.rows == expected for r in results[:12])
        assert (await w.query("SELECT count(*) FROM nation")).rows == [[25]]
    finally:
        await w.close()
    with pytest.raises(InvalidRequest, match="closed"):
        await w.backend.query("SELECT 1", limit=1)
