"""One measure, aggregated by the query's group-by: the building block of every metric.

``rows`` projects a measure's table (plus the left joins its names need) to the group-by columns and
the measure's value, filtered; ``aggregate`` groups those rows into a CTE ``(group-by…, value)``.
The compiler joins such CTEs on their group-by columns, so a ratio's numerator and denominator,
or a derived metric's inputs, are aggregated apart and never fan each other out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dbt_semantic_interfaces.protocols import Measure, SemanticModel
from dbt_semantic_interfaces.type_enums import AggregationType
from sqlglot import exp

from sophia.errors import InvalidRequest
from sophia.warehouse.metrics.filters import Filter
from sophia.warehouse.metrics.graph import BASE_ALIAS, Hop, Resolved, SemanticGraph
from sophia.warehouse.metrics.sqlparts import col, date_literal, definition_expr, ident, time_at

VALUE = "__value"
#: an offset window, as (count, unit): revenue of the month before is (1, "month")
Offset = tuple[int, str] | None


@dataclass
class Context:
    """One compilation: the query's shape and the CTEs emitted so far."""

    graph: SemanticGraph
    schema: str
    dialect: str
    source_dialect: str | None
    group_by: tuple[str, ...]
    where: tuple[Filter, ...]
    start: str | None
    end: str | None
    ctes: list[tuple[str, exp.Select]] = field(default_factory=list)
    seen: dict[object, str] = field(default_factory=dict)
    tables: set[str] = field(default_factory=set)

    def add(self, key: object, select: exp.Select, prefix: str) -> str:
        """Register a CTE (once per key) and return its name."""
        if key in self.seen:
            return self.seen[key]
        name = f"{prefix}_{len(self.ctes)}"
        self.ctes.append((name, select))
        self.seen[key] = name
        return name


class Rows:
    """The projection of one measure's table: resolves names to expressions and collects the joins."""

    def __init__(self, ctx: Context, measure: str, offset: Offset = None) -> None:
        self.ctx = ctx
        self.measure_name = measure
        self.model, self.time_dim = ctx.graph.agg_time(measure)
        self.measure: Measure = ctx.graph.measures[measure][1]
        self.offset = offset
        self.hops: dict[str, Hop] = {}

    def resolved(self, name: str) -> Resolved:
        try:
            return self.ctx.graph.resolve(name, self.model, self.time_dim)
        except InvalidRequest as error:
            raise InvalidRequest(
                f"{name!r} cannot be used with measure {self.measure_name} ({error.message})",
                param="group_by",
            ) from None

    def expr(self, name: str) -> exp.Expr:
        """The SQL of a name (dimension, time dimension at a grain, entity) seen from this measure."""
        found = self.resolved(name)
        for hop in found.hops:
            self.hops.setdefault(hop.alias, hop)
        value = definition_expr(found.expr, found.alias, self.ctx.schema, self.ctx.source_dialect)
        if found.kind == "time":
            offset = self.offset if name.startswith("metric_time") else None
            return time_at(value, found.grain or "day", offset)
        return value

    def value(self) -> exp.Expr:
        sql = self.measure.expr or self.measure.name
        return definition_expr(str(sql), BASE_ALIAS, self.ctx.schema, self.ctx.source_dialect)

    def day(self) -> exp.Expr:
        """metric_time as a DATE at the measure's own precision (month-grain tables too), offset applied."""
        sql = self.time_dim.expr or self.time_dim.name
        value = definition_expr(sql, BASE_ALIAS, self.ctx.schema, self.ctx.source_dialect)
        return time_at(value, "day", self.offset)

    def raw_time(self) -> exp.Expr:
        """The measure's time at full precision, as a timestamp (conversion windows compare these)."""
        sql = self.time_dim.expr or self.time_dim.name
        value = definition_expr(sql, BASE_ALIAS, self.ctx.schema, self.ctx.source_dialect)
        return exp.cast(value, exp.DataType.Type.TIMESTAMP)

    def key(self) -> exp.Expr:
        """The measure's row key (its model's primary entity), to tell rows apart."""
        entity = self.ctx.graph.primary_entity(self.model)
        spec = self.ctx.graph.entity(self.model, entity) if entity else None
        if spec is None:
            raise InvalidRequest(f"{self.model.name} has no primary entity column to tell its rows apart")
        return definition_expr(spec.expr or spec.name, BASE_ALIAS, self.ctx.schema, self.ctx.source_dialect)

    def conditions(
        self, filters: Sequence[Filter], *, with_range: bool = True, with_where: bool = True
    ) -> list[exp.Expr]:
        found = [flt.render(self.expr) for flt in (*filters, *(self.ctx.where if with_where else ()))]
        if with_range and (self.ctx.start or self.ctx.end):
            day = self.day()
            if self.ctx.start:
                found.append(exp.GTE(this=day, expression=date_literal(self.ctx.start)))
            if self.ctx.end:
                found.append(exp.LT(this=day.copy(), expression=date_literal(self.ctx.end)))
        return found

    def table(self, model: SemanticModel, alias: str) -> exp.Expr:
        relation = model.node_relation
        self.ctx.tables.add(relation.alias)
        schema = self.ctx.schema or relation.schema_name or None
        return exp.alias_(exp.table_(relation.alias, db=schema), alias, table=True)

    def select(self, columns: dict[str, exp.Expr], conditions: list[exp.Expr]) -> exp.Select:
        """SELECT columns FROM the measure's table LEFT JOIN what the names needed WHERE conditions."""
        query = exp.select(*(exp.alias_(value, ident(name)) for name, value in columns.items()))
        query = query.from_(self.table(self.model, BASE_ALIAS))
        graph = self.ctx.graph
        for hop in self.hops.values():
            source, target = graph.models[hop.source_model], graph.models[hop.model]
            left, right = graph.entity(source, hop.entity), graph.entity(target, hop.entity)
            assert left is not None and right is not None
            on = exp.EQ(
                this=definition_expr(left.expr or left.name, hop.source_alias, self.ctx.schema, None),
                expression=definition_expr(right.expr or right.name, hop.alias, self.ctx.schema, None),
            )
            query = query.join(self.table(target, hop.alias), on=on, join_type="left")
        for condition in conditions:
            query = query.where(condition, copy=False)
        return query


def aggregation(agg: AggregationType, value: exp.Expr, measure: Measure) -> exp.Expr:
    """The aggregate of a measure's value column, in sqlglot (each dialect spells it its own way)."""
    params = measure.agg_params
    if agg is AggregationType.SUM:
        return exp.Sum(this=value)
    if agg is AggregationType.COUNT:
        return exp.Count(this=value)
    if agg is AggregationType.COUNT_DISTINCT:
        return exp.Count(this=exp.Distinct(expressions=[value]))
    if agg is AggregationType.AVERAGE:
        return exp.Avg(this=value)
    if agg is AggregationType.MIN:
        return exp.Min(this=value)
    if agg is AggregationType.MAX:
        return exp.Max(this=value)
    if agg is AggregationType.SUM_BOOLEAN:
        case = exp.Case(ifs=[exp.If(this=value, true=exp.Literal.number(1))], default=exp.Literal.number(0))
        return exp.Sum(this=case)
    if agg in (AggregationType.MEDIAN, AggregationType.PERCENTILE):
        fraction = (
            0.5 if agg is AggregationType.MEDIAN else float(params.percentile or 0.5) if params else 0.5
        )
        discrete = bool(params and params.use_discrete_percentile)
        kind = exp.PercentileDisc if discrete else exp.PercentileCont
        func = kind(this=exp.Literal.number(fraction))
        return exp.WithinGroup(this=func, expression=exp.Order(expressions=[exp.Ordered(this=value)]))
    raise InvalidRequest(f"aggregation {agg.value} is not supported")


def aggregate(ctx: Context, measure: str, filters: Sequence[Filter], offset: Offset = None) -> str:
    """The CTE ``(group-by…, value)`` of a measure under filters (and an offset window); its name."""
    key = ("measure", measure, tuple(f.text for f in filters), offset)
    if key in ctx.seen:
        return ctx.seen[key]
    if offset is not None and not any(name.startswith("metric_time") for name in ctx.group_by):
        raise InvalidRequest("a metric with an offset window needs metric_time in group_by", param="group_by")
    rows = Rows(ctx, measure, offset)
    columns = {name: rows.expr(name) for name in ctx.group_by}
    columns[VALUE] = rows.value()
    conditions = rows.conditions(filters)
    inner = non_additive(rows, columns, conditions)
    outer = exp.select(*(col(name, "r") for name in ctx.group_by))
    outer = outer.select(
        exp.alias_(aggregation(rows.measure.agg, col(VALUE, "r"), rows.measure), ident("value"))
    )
    outer = outer.from_(inner.subquery("r"))
    if ctx.group_by:
        outer = outer.group_by(*(col(name, "r") for name in ctx.group_by))
    return ctx.add(key, outer, "m")


def non_additive(rows: Rows, columns: dict[str, exp.Expr], conditions: list[exp.Expr]) -> exp.Select:
    """The measure's rows; for a semi-additive measure (MRR) only those at the last (first) time of each period."""
    spec = rows.measure.non_additive_dimension
    if spec is None:
        return rows.select(columns, conditions)
    at = rows.expr(f"{rows.ctx.graph.primary_entity(rows.model)}__{spec.name}")
    pick = exp.Max if spec.window_choice is AggregationType.MAX else exp.Min
    periods = [col(name, "p") for name in rows.ctx.group_by if name.startswith("metric_time")]
    inner = rows.select({**columns, "__nad": at}, conditions)
    window = exp.Window(this=pick(this=col("__nad", "p")), partition_by=periods or None)
    marked = exp.select("*", exp.alias_(window, ident("__nad_pick"))).from_(inner.subquery("p"))
    return (
        exp.select(*(col(name, "q") for name in columns))
        .from_(marked.subquery("q"))
        .where(exp.EQ(this=col("__nad", "q"), expression=col("__nad_pick", "q")))
    )
