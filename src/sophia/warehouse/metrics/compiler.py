"""Metrics to one SELECT: each metric type becomes an expression over measure CTEs.

simple -> its measure's CTE (metric filter applied before aggregation, ``fill_nulls_with`` after);
ratio -> numerator / NULLIF(denominator, 0), each aggregated apart; derived -> its ``expr`` with
every input metric substituted (``offset_window`` shifts an input's metric_time); cumulative and
conversion -> their own CTEs (``windows.py``). The CTEs are joined on the group-by columns (a
``UNION`` of their keys, null-safe equality), so the result has one row per group.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlglot
from dbt_semantic_interfaces.protocols import Metric, MetricInput, WhereFilterIntersection
from dbt_semantic_interfaces.type_enums import MetricType
from sqlglot import exp
from sqlglot.errors import ParseError

from sophia.errors import ConfigError, InvalidRequest
from sophia.warehouse.metrics.filters import Filter, parse_filter
from sophia.warehouse.metrics.measures import Context, Offset, aggregate
from sophia.warehouse.metrics.sqlparts import as_double, col, ident, safe_divide
from sophia.warehouse.metrics.windows import conversion, cumulative

_DERIVED_ALLOWED: tuple[type[exp.Expr], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Paren, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Neg,
    exp.Nullif, exp.Coalesce, exp.Case, exp.If, exp.Null, exp.Boolean, exp.Predicate, exp.Connector,
    exp.Not, exp.Abs, exp.Round, exp.Greatest, exp.Least, exp.Cast, exp.DataType,
)  # fmt: skip


class MetricCompiler:
    """Compiles metrics of one manifest; ``metrics`` maps names to DSI metric objects."""

    def __init__(self, metrics: dict[str, Metric], known: set[str]) -> None:
        self.metrics = metrics
        self.known = known

    def filters(self, intersection: WhereFilterIntersection | None) -> tuple[Filter, ...]:
        if intersection is None:
            return ()
        return tuple(
            parse_filter(flt.where_sql_template, self.known.__contains__)
            for flt in intersection.where_filters
        )

    def metric(
        self, ctx: Context, name: str, inherited: tuple[Filter, ...] = (), offset: Offset = None
    ) -> exp.Expr:
        """The expression of metric ``name`` (over CTE columns), with extra filters and an offset."""
        metric = self.metrics[name]
        filters = (*self.filters(metric.filter), *inherited)
        params = metric.type_params
        if metric.type is MetricType.SIMPLE:
            assert params.measure is not None
            measure_filters = (*filters, *self.filters(params.measure.filter))
            value: exp.Expr = col("value", aggregate(ctx, params.measure.name, measure_filters, offset))
            fill = (
                params.fill_nulls_with
                if params.fill_nulls_with is not None
                else params.measure.fill_nulls_with
            )
            if fill is not None:
                value = exp.Coalesce(this=value, expressions=[exp.Literal.number(fill)])
            return value
        if metric.type is MetricType.RATIO:
            assert params.numerator is not None and params.denominator is not None
            numerator = self.input(ctx, params.numerator, filters, offset)
            denominator = self.input(ctx, params.denominator, filters, offset)
            return safe_divide(numerator, denominator)
        if metric.type is MetricType.DERIVED:
            return self.derived(ctx, metric, filters, offset)
        if metric.type is MetricType.CUMULATIVE:
            if offset is not None:
                raise InvalidRequest(f"{name}: an offset window over a cumulative metric is not supported")
            return cumulative(
                ctx, metric, (*filters, *self.filters(params.measure.filter if params.measure else None))
            )
        if metric.type is MetricType.CONVERSION:
            return conversion(ctx, metric, filters, self.filters)
        raise InvalidRequest(f"{name}: metric type {metric.type.value} is not supported")

    def input(
        self, ctx: Context, metric_input: MetricInput, filters: tuple[Filter, ...], offset: Offset
    ) -> exp.Expr:
        extra = self.filters(metric_input.filter)
        window = metric_input.offset_window
        if metric_input.offset_to_grain:
            raise InvalidRequest(f"{metric_input.name}: offset_to_grain is not supported")
        if window is not None:
            if offset is not None and offset[1] != window.granularity:
                raise InvalidRequest(f"{metric_input.name}: nested offsets of different grains")
            offset = (window.count + (offset[0] if offset else 0), window.granularity)
        return self.metric(ctx, metric_input.name, (*filters, *extra), offset)

    def derived(self, ctx: Context, metric: Metric, filters: tuple[Filter, ...], offset: Offset) -> exp.Expr:
        params = metric.type_params
        try:
            tree = sqlglot.parse_one(params.expr or "")
        except ParseError as error:
            raise ConfigError(f"{metric.name}: cannot parse expr: {error.errors[0]['description']}") from None
        inputs = {(item.alias or item.name): item for item in params.metrics or ()}
        for node in tree.walk():
            if not isinstance(node, _DERIVED_ALLOWED):
                raise ConfigError(f"{metric.name}: {node.key.upper()} is not allowed in a derived expr")

        def swap(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and not node.table:
                item = inputs.get(node.name)
                if item is None:
                    raise ConfigError(f"{metric.name}: {node.name!r} is not one of its input metrics")
                return exp.paren(as_double(self.input(ctx, item, filters, offset)))
            return node

        return exp.paren(tree.transform(swap))


def assemble(
    ctx: Context, outputs: dict[str, exp.Expr], order_by: Sequence[str], limit: int | None
) -> exp.Select:
    """The final SELECT: group-by keys, one column per metric, over the joined CTEs; ordered, limited."""
    names = [name for name, _ in ctx.ctes if not name.startswith("x_")]
    keys = list(ctx.group_by)
    if len(names) == 1 or not keys:
        source: str = names[0]
        query = exp.select(*(exp.alias_(col(key, source), ident(key)) for key in keys)).from_(source)
        for other in names[1:]:
            query = query.join(other, join_type="cross")
    else:
        union: exp.Expr = exp.select(*(col(key) for key in keys)).from_(names[0])
        for other in names[1:]:
            union = exp.union(union, exp.select(*(col(key) for key in keys)).from_(other), distinct=True)
        source = "k"
        assert isinstance(union, exp.Query)
        query = exp.select(*(exp.alias_(col(key, source), ident(key)) for key in keys)).from_(
            union.subquery(source)
        )
        for other in names:
            on = exp.and_(
                *(exp.NullSafeEQ(this=col(key, source), expression=col(key, other)) for key in keys)
            )
            query = query.join(other, on=on, join_type="left")
    for name, value in outputs.items():
        query = query.select(exp.alias_(value, ident(name)))
    query = exp.select("*").from_(query.subquery("q"))
    ordered: list[exp.Ordered] = []
    for item in order_by:
        name = item.lstrip("-")
        if name not in outputs and name not in keys:
            raise InvalidRequest(f"order_by {name!r} is neither a metric nor a group-by of the query")
        ordered.append(exp.Ordered(this=col(name), desc=item.startswith("-"), nulls_first=False))
    ordered += [
        exp.Ordered(this=col(key), nulls_first=False)
        for key in keys
        if key not in {o.lstrip("-") for o in order_by}
    ]
    if ordered:
        query = query.order_by(*ordered)
    if limit is not None:
        query = query.limit(int(limit))
    for cte_name, cte in ctx.ctes:
        query = query.with_(cte_name, as_=cte)
    return query
