"""``list_metrics``, ``query_metrics`` and ``kpi_report``: the metric catalogue (dbt's semantic-model
format), compiled to the warehouse's SQL, shown with every answer."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sophia.errors import InvalidRequest
from sophia.mcp.bi.schemas import (
    KpiIn,
    KpiOut,
    KpiRow,
    MetricItem,
    MetricQueryIn,
    MetricsIn,
    MetricsOut,
    MetricsResult,
)
from sophia.mcp.bi.sources import METRICS, metric_query, run_metrics
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import ToolSet

tools = ToolSet()

#: kpi_report's default metrics, those of them the catalogue defines
HEADLINE = (
    "revenue",
    "bookings",
    "win_rate",
    "average_deal_size",
    "sales_cycle_days",
    "net_revenue_retention",
    "churned_accounts",
    "churn_rate",
)


@tools.tool(title="List metrics", read_only=True, destructive=False, idempotent=True, open_world=False)
async def list_metrics(ctx: ToolContext, args: MetricsIn) -> MetricsOut:
    """The defined metrics (dbt semantic layer) and the dimensions each can be grouped or filtered by."""
    catalog = await ctx.service(METRICS)
    needle = (args.search or "").lower()
    items = []
    for info in catalog.metrics():
        text = " ".join(filter(None, (info.name, info.label, info.description))).lower()
        if needle and needle not in text:
            continue
        dims = [d for d in catalog.dimensions([info.name]) if not d.startswith("metric_time__")]
        items.append(
            MetricItem(
                name=info.name,
                label=info.label,
                type=str(info.type),
                description=info.description,
                dimensions=dims,
            )
        )
    return MetricsOut(metrics=items)


@tools.tool(title="Query metrics", read_only=True, destructive=False, idempotent=True, open_world=False)
async def query_metrics(ctx: ToolContext, args: MetricQueryIn) -> MetricsResult:
    """Compute metrics grouped by dimensions and a time grain, filtered, over dates; returns rows and the SQL."""
    query = metric_query(args)
    result = await run_metrics(ctx, query)
    return MetricsResult(**result.model_dump(), metrics=query.metrics, group_by=query.group_by)


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """[start, end) of the month, quarter or year holding ``day``."""
    if period == "year":
        return date(day.year, 1, 1), date(day.year + 1, 1, 1)
    months = 3 if period == "quarter" else 1
    first = (day.month - 1) // months * months + 1
    start = date(day.year, first, 1)
    nxt = first + months
    end = date(day.year + (nxt > 12), (nxt - 1) % 12 + 1, 1)
    return start, end


def period_name(period: str, start: date) -> str:
    if period == "year":
        return str(start.year)
    if period == "quarter":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    return start.strftime("%B %Y")


def _change(current: float | None, previous: float | None) -> float | None:
    if current is None or previous in (None, 0):
        return None
    return round((current - previous) / abs(previous) * 100, 1)


def _fmt(value: float | None, percent: bool) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if percent else f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def is_rate(info: Any) -> bool:
    """A metric shown in percent: a ratio, or a rate/retention by name."""
    return str(info.type).lower().endswith("ratio") or any(w in info.name for w in ("rate", "retention"))


@tools.tool(title="KPI report", read_only=True, destructive=False, idempotent=True, open_world=False)
async def kpi_report(ctx: ToolContext, args: KpiIn) -> KpiOut:
    """A period's headline metrics against the previous period, as a markdown table."""
    catalog = await ctx.service(METRICS)
    known = {m.name: m for m in catalog.metrics()}
    names = list(args.metrics or [m for m in HEADLINE if m in known])
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidRequest(f"unknown metrics {', '.join(unknown)} (list_metrics)", param="metrics")
    if args.end is not None:
        start, end = period_bounds(args.period, args.end)
    else:  # the last complete period before today
        start, end = period_bounds(
            args.period, period_bounds(args.period, date.today())[0] - timedelta(days=1)
        )
    prev_start, _ = period_bounds(args.period, start - timedelta(days=1))
    values: dict[str, dict[str, Any]] = {}
    grain = f"metric_time__{args.period}"
    from sophia.warehouse.metrics import MetricQuery  # the compiler's imports load with the first query

    query = MetricQuery(metrics=names, group_by=[grain], start=prev_start.isoformat(), end=end.isoformat())
    result = await run_metrics(ctx, query, limit=10)
    cols = [c.name for c in result.columns]
    for row in result.rows:
        record = dict(zip(cols, row, strict=True))
        key = str(record.get(grain))[:10]
        values[key] = record
    cur, prev = values.get(start.isoformat(), {}), values.get(prev_start.isoformat(), {})
    rows = []
    for name in names:
        c, p = cur.get(name), prev.get(name)
        c = float(c) if c is not None else None
        p = float(p) if p is not None else None
        rows.append(KpiRow(metric=name, current=c, previous=p, change_pct=_change(c, p)))
    title, before = period_name(args.period, start), period_name(args.period, prev_start)
    lines = [
        f"## KPIs, {title} vs {before}",
        "",
        f"| Metric | {title} | {before} | Change |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        change = "-" if r.change_pct is None else f"{r.change_pct:+.1f}%"
        pct = is_rate(known[r.metric])
        lines.append(
            f"| {known[r.metric].label or r.metric} | {_fmt(r.current, pct)} | {_fmt(r.previous, pct)} | {change} |"
        )
    lines += ["", f"SQL: `{result.sql}`"]
    return KpiOut(period=title, previous_period=before, rows=rows, markdown="\n".join(lines))
