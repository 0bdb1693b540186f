"""The two sides of the warehouse benchmark, in one process: `run_sql` over Sophia's BI MCP server, and DuckDB.

Sophia's side is what an agent gets: an SDK ``Client`` session on the BI server built in memory
(``build_server(bi, services, secret=key)``, as tests/mcp does), a real key, a temporary Sophia home whose
``warehouse.url`` is the TPC-H file; every call goes through the key check, the tool's argument
validation, the guard, the paging wrapper, the engine in a worker thread, the JSON conversion, the
result cache and the ledger row. The direct side is a read-only DuckDB connection in this process, opened
with the backend's own configuration: DuckDB then hands both the same database instance, so both run
with the same threads and the same (warm) buffer pool, and the only difference left is Sophia.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from mcp import Client
from sophia.container import Services
from sophia.mcp.registry import get_registry
from sophia.mcp.server import build_server
from sophia.settings import load_settings
from sophia.warehouse.backends.duckdb import READ_ONLY_CONFIG
from sophia.warehouse.service import WAREHOUSE
from sophia.warehouse.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ROOT / "tests" / "warehouse" / "corpus" / "tpch"


def load_queries(only: Sequence[str] = ()) -> dict[str, str]:
    """The 22 TPC-H queries with their validation parameters (tests/warehouse/corpus/tpch), by name."""
    queries = {p.stem: p.read_text() for p in sorted(QUERIES.glob("q*.sql"))}
    if len(queries) != 22:
        raise SystemExit(f"expected the 22 TPC-H queries in {QUERIES}, found {len(queries)}")
    return {name: sql for name, sql in queries.items() if not only or name in only}


def page_sql(sql: str, page: int) -> str:
    """The direct side's page: the same statement under the same LIMIT as run_sql's first page."""
    return f"SELECT * FROM ({sql.strip().rstrip(';')}) AS page LIMIT {page}"


@dataclass
class Sides:
    client: Client
    warehouse: Warehouse
    con: duckdb.DuckDBPyConnection
    page: int  #: rows of run_sql's first page (warehouse.row_limit: what a call without `limit` returns)

    async def run_sql(self, sql: str) -> tuple[float, dict[str, Any]]:
        """Seconds of one `run_sql` call, and its structured result."""
        started = time.perf_counter()
        result = await self.client.call_tool("run_sql", {"sql": sql})
        elapsed = time.perf_counter() - started
        if result.is_error:
            text = " ".join(getattr(block, "text", "") for block in result.content)
            raise RuntimeError(f"run_sql failed: {text}")
        return elapsed, dict(result.structured_content or {})

    def direct(self, sql: str) -> tuple[float, list[tuple[Any, ...]]]:
        """Seconds to run ``sql`` on DuckDB and fetch every row."""
        started = time.perf_counter()
        rows = self.con.execute(sql).fetchall()
        return time.perf_counter() - started, rows

    def clear_result_cache(self) -> None:
        """Forget every cached result: the next call of each statement is a miss (the guard's normalised
        statement drops comments, so a comment cannot make a statement new)."""
        self.warehouse.results.clear()

    def threads(self) -> int:
        return int(self.con.execute("SELECT current_setting('threads')").fetchone()[0])  # type: ignore[index]


@asynccontextmanager
async def sides(database: Path) -> AsyncIterator[Sides]:
    """Sophia (a temporary home, a key, the BI server in memory) and DuckDB direct, on ``database``."""
    with tempfile.TemporaryDirectory(prefix="sophia-warehouse-bench-") as home:
        # its own config file, so a ./sophia.yaml or $SOPHIA_CONFIG of the machine is not read: the defaults
        config = Path(home) / "sophia.yaml"
        config.write_text(json.dumps({"home": home, "warehouse": {"url": f"duckdb:///{database}"}}))
        settings = load_settings(config)
        services = Services(settings)
        try:
            accounts = await services.open()
            key, _ = await accounts.keys.create(name="bench", team="bench", allowed_tools=["bi/run_sql"])
            warehouse = await services.get(WAREHOUSE)
            con = duckdb.connect(str(database), read_only=True, config=dict(READ_ONLY_CONFIG))
            server = build_server(get_registry().get("bi"), services, secret=key)
            try:
                async with Client(server) as client:
                    yield Sides(client, warehouse, con, settings.warehouse.row_limit)
            finally:
                con.close()
        finally:
            await services.close()
