"""``list_datasets``, ``describe_table`` and ``run_sql``: the warehouse, read-only and paged.

Every statement goes through the warehouse's two read-only layers (the sqlglot guard, then a
connection that cannot write); a refused statement comes back as a tool error that says why.
"""

from __future__ import annotations

import logging

from sophia.errors import SophiaError
from sophia.knowledge.service import KNOWLEDGE
from sophia.mcp.bi.schemas import (
    DatasetsOut,
    DescribeIn,
    DescribeOut,
    NoArgs,
    RunSqlIn,
    TableColumn,
    TableInfo,
    TableResult,
)
from sophia.mcp.bi.sources import METRICS, table_result
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import ToolSet
from sophia.warehouse.service import WAREHOUSE

log = logging.getLogger(__name__)
tools = ToolSet()


@tools.tool(title="List datasets", read_only=True, destructive=False, idempotent=True, open_world=False)
async def list_datasets(ctx: ToolContext, args: NoArgs) -> DatasetsOut:
    """The warehouse's tables and row counts, how many metrics and documents there are. Start here."""
    warehouse = await ctx.service(WAREHOUSE)
    tables = await warehouse.datasets()
    catalog = await ctx.service(METRICS)
    documents = None
    try:
        stats = await (await ctx.service(KNOWLEDGE)).stats()
        documents = int(stats["documents"])
    except SophiaError as exc:  # the warehouse answers even when the knowledge store is not set up
        log.info("list_datasets: knowledge base unavailable: %s", exc.message)
    return DatasetsOut(
        dialect=warehouse.dialect,
        tables=[
            TableInfo(name=t.name, rows=t.rows, columns=len(t.columns), description=t.description)
            for t in tables
        ],
        metrics=len(catalog.metrics()),
        documents=documents,
    )


@tools.tool(title="Describe a table", read_only=True, destructive=False, idempotent=True, open_world=False)
async def describe_table(ctx: ToolContext, args: DescribeIn) -> DescribeOut:
    """A table's columns (name, type, nullable), row count and a few sample rows."""
    warehouse = await ctx.service(WAREHOUSE)
    info = await warehouse.describe(args.table, sample_rows=args.sample_rows)
    return DescribeOut(
        name=info.name,
        rows=info.rows,
        columns=[TableColumn(name=c.name, type=c.type, nullable=c.nullable) for c in info.columns],
        sample=[dict(zip([c.name for c in info.columns], row, strict=True)) for row in info.sample],
    )


@tools.tool(title="Run read-only SQL", read_only=True, destructive=False, idempotent=True, open_world=False)
async def run_sql(ctx: ToolContext, args: RunSqlIn) -> TableResult:
    """Run one read-only SQL statement (dialect: list_datasets); refusals say why. Paged by next_cursor; shows the SQL run and its time."""
    warehouse = await ctx.service(WAREHOUSE)
    await ctx.progress("running the query")
    return table_result(await warehouse.query(args.sql, limit=args.limit, cursor=args.cursor))
