"""What the BI tools share: the process's warehouse, metric catalogue and knowledge base, and the two
ways to get rows (a guarded SQL statement, or a metrics query compiled to one)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import TYPE_CHECKING, Any

from sophia.container import Service, Services
from sophia.mcp.bi.schemas import Column, MetricQueryIn, TableResult
from sophia.mcp.context import ToolContext
from sophia.warehouse.service import WAREHOUSE

if TYPE_CHECKING:
    from sophia.warehouse.metrics import MetricCatalog, MetricQuery

DEFAULT_PAGE = 200


async def _catalog(services: Services) -> MetricCatalog:
    from sophia.warehouse.metrics import load_catalog

    paths = services.settings.warehouse.metrics or None
    return await asyncio.to_thread(load_catalog, paths)


#: the metric catalogue of this process (the shipped demo definitions unless warehouse.metrics names files)
METRICS: Service[MetricCatalog] = Service("metrics", _catalog)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def metric_query(args: MetricQueryIn | Any) -> MetricQuery:
    from sophia.warehouse.metrics import MetricQuery

    group_by = list(dict.fromkeys(args.group_by))
    if args.grain and f"metric_time__{args.grain}" not in group_by:
        group_by.insert(0, f"metric_time__{args.grain}")
    return MetricQuery(
        metrics=list(dict.fromkeys(args.metrics)),
        group_by=group_by,
        where=list(args.where),
        start=_day(getattr(args, "start", None)),
        end=_day(getattr(args, "end", None)),
        order_by=list(getattr(args, "order", [])),
        limit=getattr(args, "limit", None),
    )


async def run_metrics(ctx: ToolContext, query: MetricQuery, *, limit: int | None = None) -> TableResult:
    catalog = await ctx.service(METRICS)
    warehouse = await ctx.service(WAREHOUSE)
    sql = catalog.compile(query, dialect=warehouse.dialect)
    return table_result(await warehouse.query(sql, limit=limit or query.limit or DEFAULT_PAGE))


def table_result(result: Any) -> TableResult:
    return TableResult(
        columns=[Column(name=c.name, type=c.type) for c in result.columns],
        rows=result.rows,
        row_count=result.row_count,
        truncated=result.truncated,
        next_cursor=result.next_cursor,
        sql=result.sql,
        elapsed_ms=round(result.elapsed_ms, 3),
        cache=result.cache,
    )


async def rows_for(ctx: ToolContext, args: Any, *, limit: int) -> tuple[list[Column], list[list[Any]], str]:
    """Rows for a chart: its SQL through the guard, else its metrics query."""
    if args.sql is not None:
        warehouse = await ctx.service(WAREHOUSE)
        result = table_result(await warehouse.query(args.sql, limit=limit))
    else:
        result = await run_metrics(ctx, metric_query(args), limit=limit)
    return result.columns, result.rows, result.sql
