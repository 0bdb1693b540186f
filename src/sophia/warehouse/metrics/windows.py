"""The two metric types that look across time: cumulative and conversion.

Cumulative: the measure's rows are joined to a day spine that the query generates (``day_spine``:
generate_series, or Snowflake's GENERATOR), not read from a ``metricflow_time_spine`` table. Each
spine day sums the rows of its window (``window: 90 days``), of its period so far
(``grain_to_date: quarter``) or of all time; at a coarser grain the day picked by ``period_agg``
(first, last; average over the days) stands for the period. Without metric_time in the group-by
the last day of the range stands for it. Start and end bound the spine, not the rows.

Conversion (MetricFlow's rule): every conversion event (a won deal) is credited to the latest
base event (a call) of the same entity (account) at or before it and within the window;
``conversions`` aggregates the credited conversion measure by the base event's group-by, and
``conversion_rate`` divides it by the base measure.
"""

from __future__ import annotations

from collections.abc import Callable

from dbt_semantic_interfaces.protocols import Metric, WhereFilterIntersection
from dbt_semantic_interfaces.type_enums import ConversionCalculationType, PeriodAggregation
from sqlglot import exp

from sophia.errors import InvalidRequest
from sophia.warehouse.metrics.filters import Filter
from sophia.warehouse.metrics.measures import VALUE, Context, Rows, aggregate, aggregation
from sophia.warehouse.metrics.sqlparts import (
    col,
    date_literal,
    day_spine,
    ident,
    interval,
    safe_divide,
    time_at,
)

DAY = "__day"


def _metric_time(ctx: Context) -> tuple[str | None, list[str]]:
    times = [name for name in ctx.group_by if name.startswith("metric_time")]
    if len(times) > 1:
        raise InvalidRequest("group by one metric_time grain at a time for cumulative metrics")
    return (times[0] if times else None), [name for name in ctx.group_by if name not in times]


def cumulative(ctx: Context, metric: Metric, filters: tuple[Filter, ...]) -> exp.Expr:
    params = metric.type_params
    assert params.measure is not None
    options = params.cumulative_type_params
    window = (options.window if options else None) or params.window
    to_date = (options.grain_to_date if options else None) or params.grain_to_date
    period_agg = (options.period_agg if options else None) or PeriodAggregation.FIRST
    time_name, others = _metric_time(ctx)
    grain = time_name.split("__")[1] if time_name and "__" in time_name else "day"

    rows = Rows(ctx, params.measure.name)
    columns = {name: rows.expr(name) for name in others}
    columns[DAY] = rows.day()
    columns[VALUE] = rows.value()
    source = ctx.add(
        ("rows", metric.name), rows.select(columns, rows.conditions(filters, with_range=False)), "x"
    )

    lo = date_literal(ctx.start) if ctx.start else exp.select(exp.Min(this=col(DAY))).from_(source).subquery()
    hi: exp.Expr = (
        exp.cast(exp.Sub(this=date_literal(ctx.end), expression=interval(1, "day")), exp.DataType.Type.DATE)
        if ctx.end
        else exp.select(exp.Max(this=col(DAY))).from_(source).subquery()
    )
    spine = ctx.add(("spine", metric.name), day_spine(lo, hi, ctx.dialect), "x")

    period = time_at(col("day", "s"), grain)
    days = exp.select(col("day", "s"), exp.alias_(period, ident("period"))).from_(
        exp.to_table(spine).as_("s")
    )
    if period_agg is not PeriodAggregation.AVERAGE or time_name is None:
        pick = exp.Min if period_agg is PeriodAggregation.FIRST and time_name else exp.Max
        by = [period.copy()] if time_name else None
        days = days.select(
            exp.alias_(exp.Window(this=pick(this=col("day", "s")), partition_by=by), ident("pick"))
        )
        days = (
            exp.select(col("day", "d"), col("period", "d"))
            .from_(days.subquery("d"))
            .where(exp.EQ(this=col("day", "d"), expression=col("pick", "d")))
        )
    picked = ctx.add(("days", metric.name), days, "x")

    on: list[exp.Expr] = [exp.LTE(this=col(DAY, "r"), expression=col("day", "s"))]
    if window is not None:
        start = exp.cast(
            exp.Sub(this=col("day", "s"), expression=interval(window.count, window.granularity)), "DATE"
        )
        on.append(exp.GT(this=col(DAY, "r"), expression=start))
    elif to_date is not None:
        on.append(
            exp.GTE(
                this=col(DAY, "r"),
                expression=time_at(col("day", "s"), str(getattr(to_date, "value", to_date)).lower()),
            )
        )
    keys = [col(name, "r") for name in others]
    daily = (
        exp.select(col("day", "s"), col("period", "s"), *keys)
        .select(exp.alias_(aggregation(rows.measure.agg, col(VALUE, "r"), rows.measure), ident("value")))
        .from_(exp.to_table(picked).as_("s"))
        .join(exp.to_table(source).as_("r"), on=exp.and_(*on), join_type="inner")
        .group_by(col("day", "s"), col("period", "s"), *(key.copy() for key in keys))
    )
    outputs = [exp.alias_(col("period", "c"), ident(time_name))] if time_name else []
    outputs += [col(name, "c") for name in others]
    value: exp.Expr = col("value", "c")
    final = exp.select(*outputs).from_(daily.subquery("c"))
    if period_agg is PeriodAggregation.AVERAGE and time_name:
        value = exp.Avg(this=value)
        final = final.group_by(col("period", "c"), *(col(name, "c") for name in others))
    final = final.select(exp.alias_(value, ident("value")))
    return col("value", ctx.add(("cumulative", metric.name, tuple(f.text for f in filters)), final, "m"))


def conversion(
    ctx: Context,
    metric: Metric,
    filters: tuple[Filter, ...],
    parse: Callable[[WhereFilterIntersection | None], tuple[Filter, ...]],
) -> exp.Expr:
    params = metric.type_params.conversion_type_params
    assert params is not None and params.base_measure is not None and params.conversion_measure is not None
    if params.constant_properties:
        raise InvalidRequest(f"{metric.name}: constant_properties are not supported")
    if params.window is None:
        raise InvalidRequest(f"{metric.name}: a conversion metric needs a window")
    base_filters = (*filters, *parse(params.base_measure.filter))
    base = Rows(ctx, params.base_measure.name)
    base_columns = {name: base.expr(name) for name in ctx.group_by}
    base_columns.update(__t=base.raw_time(), __e=base.expr(params.entity), __k=base.key())
    base_rows = ctx.add(("base", metric.name), base.select(base_columns, base.conditions(base_filters)), "x")

    conv = Rows(ctx, params.conversion_measure.name)
    conv_columns = {
        "__t": conv.raw_time(),
        "__e": conv.expr(params.entity),
        "__k": conv.key(),
        VALUE: conv.value(),
    }
    conv_filters = conv.conditions(
        parse(params.conversion_measure.filter), with_range=False, with_where=False
    )
    conv_rows = ctx.add(("conv", metric.name), conv.select(conv_columns, conv_filters), "x")

    reach = exp.Add(this=col("__t", "b"), expression=interval(params.window.count, params.window.granularity))
    on = exp.and_(
        exp.EQ(this=col("__e", "b"), expression=col("__e", "c")),
        exp.GTE(this=col("__t", "c"), expression=col("__t", "b")),
        exp.LTE(this=col("__t", "c"), expression=reach),
    )
    latest = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col("__k", "c")],
        order=exp.Order(
            expressions=[
                exp.Ordered(this=col("__t", "b"), desc=True),
                exp.Ordered(this=col("__k", "b"), desc=True),
            ]
        ),
    )
    matches = (
        exp.select(
            *(col(name, "b") for name in ctx.group_by), col(VALUE, "c"), exp.alias_(latest, ident("__rn"))
        )
        .from_(exp.to_table(base_rows).as_("b"))
        .join(exp.to_table(conv_rows).as_("c"), on=on, join_type="inner")
    )
    credited = exp.select(*(col(name, "t") for name in ctx.group_by)).select(
        exp.alias_(aggregation(conv.measure.agg, col(VALUE, "t"), conv.measure), ident("value"))
    )
    credited = credited.from_(matches.subquery("t")).where(
        exp.EQ(this=col("__rn", "t"), expression=exp.Literal.number(1))
    )
    if ctx.group_by:
        credited = credited.group_by(*(col(name, "t") for name in ctx.group_by))
    converted = ctx.add(("conversions", metric.name), credited, "m")
    conversions = exp.Coalesce(this=col("value", converted), expressions=[exp.Literal.number(0)])
    if params.calculation is ConversionCalculationType.CONVERSIONS:
        return conversions
    base_total = col("value", aggregate(ctx, params.base_measure.name, base_filters))
    return safe_divide(conversions, base_total)
