"""``build_duckdb``: every generator in order, the rows inserted into a DuckDB file built beside the
target and renamed over it once complete (a reader never sees half a warehouse)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from sophia.errors import InvalidRequest
from sophia.warehouse.demo.calls import build_calls, call_table
from sophia.warehouse.demo.common import FEATURES, START, Columns
from sophia.warehouse.demo.deals import build_pipeline, pipeline_tables
from sophia.warehouse.demo.revenue import revenue_tables
from sophia.warehouse.demo.support import ticket_table
from sophia.warehouse.demo.transcripts import transcript_tables
from sophia.warehouse.demo.usage import usage_arrays
from sophia.warehouse.demo.world import build_world, world_tables

#: the demo tables, in load order (a table comes after every table it refers to)
TABLES: tuple[str, ...] = (
    "teams",
    "reps",
    "accounts",
    "contacts",
    "deals",
    "calls",
    "call_transcript_turns",
    "call_objections",
    "support_tickets",
    "subscriptions",
    "mrr_monthly",
    "invoices",
    "payments",
    "product_usage",
)
#: the columns that order each table's rows (its primary key)
ORDER_BY: dict[str, str] = {
    "teams": "team_id",
    "reps": "rep_id",
    "accounts": "account_id",
    "contacts": "contact_id",
    "deals": "deal_id",
    "calls": "call_id",
    "call_transcript_turns": "call_id, turn",
    "call_objections": "call_id, turn, category",
    "support_tickets": "ticket_id",
    "subscriptions": "subscription_id",
    "mrr_monthly": "account_id, month",
    "invoices": "invoice_id",
    "payments": "payment_id",
    "product_usage": "account_id, usage_date, feature",
}
Progress = Callable[[str, float], None]


def schema_statements() -> list[str]:
    """The statements of schema.sql (portable DDL, one per ';'), comments removed."""
    text = resources.files("sophia.warehouse.demo").joinpath("schema.sql").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def _array(values: list[Any]) -> np.ndarray:
    """A column for DuckDB's numpy scan: typed when it has no NULLs, Python objects otherwise."""
    if values and None not in values and isinstance(values[0], (bool, int, float)):
        kind = bool if isinstance(values[0], bool) else int if isinstance(values[0], int) else float
        return np.array(values, dtype={bool: np.bool_, int: np.int64, float: np.float64}[kind])
    return np.array(values, dtype=object)


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: Columns) -> None:
    con.register("frame", {name: _array(values) for name, values in columns.items()})
    try:
        names = ", ".join(columns)
        con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM frame ORDER BY {ORDER_BY[table]}")
    finally:
        con.unregister("frame")


def _insert_usage(con: duckdb.DuckDBPyConnection, arrays: dict[str, np.ndarray]) -> None:
    features = ", ".join(f"'{name}'" for name in FEATURES)
    con.register("frame", arrays)
    try:
        con.execute(
            "INSERT INTO product_usage (usage_date, account_id, feature, events, active_users) "
            f"SELECT DATE '{START.isoformat()}' + day::INTEGER, account_id, [{features}][feature + 1], events, "
            "active_users FROM frame ORDER BY account_id, day, feature"
        )
    finally:
        con.unregister("frame")


def build_duckdb(
    path: Path, *, scale: float = 1.0, seed: int = 0, progress: Progress | None = None
) -> dict[str, int]:
    """Build the demo warehouse at ``path``; returns each table's row count.

    ``scale`` multiplies the number of accounts (about 2,000 at 1.0), reps and recorded calls; the
    same scale and seed always give the same rows.
    """
    if not scale > 0 or scale > 100:
        raise InvalidRequest(f"scale must be above 0 and at most 100, not {scale}", param="scale")
    report = progress or (lambda _step, _done: None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    for stale in (tmp, tmp.with_name(tmp.name + ".wal")):
        stale.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for statement in schema_statements():
            con.execute(statement)
        report("accounts", 0.05)
        world = build_world(seed, scale)
        pipeline = build_pipeline(world, seed)
        tables = world_tables(world) | pipeline_tables(pipeline)
        report("calls", 0.2)
        calls = build_calls(world, pipeline, seed, scale)
        tables["calls"] = call_table(calls)
        tables |= transcript_tables(calls, seed)
        report("support and revenue", 0.35)
        tables["support_tickets"] = ticket_table(world, seed)
        tables |= revenue_tables(pipeline, seed)
        for table in TABLES[:-1]:
            _insert(con, table, tables[table])
        report("product usage", 0.55)
        _insert_usage(con, usage_arrays(pipeline, seed))
        report("checkpoint", 0.9)
        counts = {table: int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) for table in TABLES}  # type: ignore[index]
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    con.close()
    os.replace(tmp, path)
    report("done", 1.0)
    return counts
