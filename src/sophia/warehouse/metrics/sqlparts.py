"""Small sqlglot builders the compiler shares: definition expressions, time grains, the date spine.

Expressions from the YAML (a measure's ``expr``, a dimension's ``expr``) are parsed by sqlglot, their
bare columns qualified with the alias of the table they belong to, and any table a subquery names
put in the warehouse schema; nothing from a definition is pasted into SQL as text.
"""

from __future__ import annotations

import datetime as dt
import functools

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from sophia.errors import ConfigError, InvalidRequest

#: how many days the Snowflake spine can hold (GENERATOR needs a constant row count): 100 years
SNOWFLAKE_SPINE_DAYS = 36600


def ident(name: str) -> exp.Identifier:
    """An output column name, quoted so every engine keeps its case (Snowflake would upper-case it)."""
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=exp.to_identifier(table) if table else None)


@functools.lru_cache(maxsize=1024)
def _parse(sql: str, dialect: str | None) -> exp.Expr:
    try:
        return sqlglot.parse_one(sql, read=dialect)
    except ParseError as error:
        raise ConfigError(f"cannot parse expression {sql!r}: {error.errors[0]['description']}") from None


def definition_expr(sql: str, alias: str, schema: str, dialect: str | None) -> exp.Expr:
    """A definition's SQL expression with its bare columns on ``alias``, its subqueries' tables in ``schema``.

    The model's own table name may appear in a correlated subquery (``… = call_objections.call_id``);
    it is rewritten to ``alias``.
    """
    tree = _parse(sql, dialect).copy()
    tables = {table.name for table in tree.find_all(exp.Table)}
    for column in list(tree.find_all(exp.Column)):
        inside_subquery = column.find_ancestor(exp.Select) is not None
        own_column = not column.table and not inside_subquery
        outer_reference = (
            bool(column.table)
            and inside_subquery
            and column.table not in tables
            and not _is_subquery_alias(column)
        )
        if own_column or outer_reference:
            column.set("table", exp.to_identifier(alias))
    for table in tree.find_all(exp.Table):
        if schema and not table.args.get("db"):
            table.set("db", exp.to_identifier(schema))
    return tree


def _is_subquery_alias(column: exp.Column) -> bool:
    select = column.find_ancestor(exp.Select)
    if select is None:
        return False
    aliases = {table.alias_or_name for table in select.find_all(exp.Table)}
    return column.table in aliases


def time_at(expr: exp.Expr, grain: str, offset: tuple[int, str] | None = None) -> exp.Expr:
    """``expr`` truncated to ``grain`` as a DATE (Postgres' date_trunc returns a timestamp: cast back)."""
    value: exp.Expr = exp.cast(expr, exp.DataType.Type.DATE)
    if offset is not None:
        value = exp.cast(exp.Add(this=value, expression=interval(*offset)), exp.DataType.Type.DATE)
    if grain == "day":
        return value
    trunc = exp.DateTrunc(this=value, unit=exp.Literal.string(grain.upper()))
    return exp.cast(trunc, exp.DataType.Type.DATE)


def interval(count: int, unit: str) -> exp.Interval:
    unit = unit.rstrip("s").upper()
    if unit not in ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR"):
        raise InvalidRequest(f"unsupported time window unit {unit!r}")
    if unit == "QUARTER":
        count, unit = count * 3, "MONTH"
    return exp.Interval(this=exp.Literal.string(str(int(count))), unit=exp.var(unit))


def date_literal(value: str | dt.date) -> exp.Expr:
    """A validated ISO date as a DATE literal (request text never reaches SQL unparsed)."""
    try:
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InvalidRequest(f"not a date: {value!r} (expected YYYY-MM-DD)") from None
    return exp.cast(exp.Literal.string(day.isoformat()), exp.DataType.Type.DATE)


def as_double(expr: exp.Expr) -> exp.Expr:
    return exp.cast(expr, exp.DataType.Type.DOUBLE)


def safe_divide(numerator: exp.Expr, denominator: exp.Expr) -> exp.Expr:
    """``num / NULLIF(den, 0)`` in double precision: the same answer on every engine (no integer division)."""
    nullif = exp.Nullif(this=as_double(denominator), expression=exp.Literal.number(0))
    return exp.Div(this=as_double(numerator), expression=nullif)


def day_spine(lo: exp.Expr, hi: exp.Expr, dialect: str) -> exp.Select:
    """One row per day from ``lo`` to ``hi`` (inclusive) as column ``day``, generated, not read from a table.

    DuckDB and PostgreSQL: ``generate_series`` over timestamps in a lateral join; Snowflake has no
    generate_series, so a ``GENERATOR`` of 100 years of row numbers, cut at ``hi``.
    """
    bounds = exp.select(exp.alias_(lo, "lo"), exp.alias_(hi, "hi"))
    if dialect == "snowflake":
        days = sqlglot.parse_one(
            "SELECT ROW_NUMBER() OVER (ORDER BY SEQ4()) - 1 AS n "
            f"FROM TABLE(GENERATOR(ROWCOUNT => {SNOWFLAKE_SPINE_DAYS}))",
            read="snowflake",
        )
        assert isinstance(days, exp.Select)
        day = exp.DateAdd(this=exp.column("lo", "b"), expression=exp.column("n", "g"), unit=exp.var("DAY"))
        return (
            exp.select(exp.alias_(exp.cast(day, exp.DataType.Type.DATE), "day"))
            .from_(bounds.subquery("b"))
            .join(days.subquery("g"), join_type="cross")
            .where(exp.LTE(this=day.copy(), expression=exp.column("hi", "b")))
        )
    series = exp.Anonymous(
        this="GENERATE_SERIES",
        expressions=[
            exp.cast(exp.column("lo", "b"), exp.DataType.Type.TIMESTAMP),
            exp.cast(exp.column("hi", "b"), exp.DataType.Type.TIMESTAMP),
            interval(1, "day"),
        ],
    )
    lateral = exp.Lateral(
        this=series, alias=exp.TableAlias(this=exp.to_identifier("s"), columns=[ident("d")])
    )
    return (
        exp.select(exp.alias_(exp.cast(exp.column(ident("d"), "s"), exp.DataType.Type.DATE), "day"))
        .from_(bounds.subquery("b"))
        .join(lateral, join_type="cross")
    )
