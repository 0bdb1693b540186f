"""MetricFlow where filters, parsed and checked before any of their text reaches SQL.

A filter is MetricFlow's Jinja form (``{{ Dimension('account__segment') }} = 'Enterprise'``,
``{{ TimeDimension('metric_time', 'month') }} >= '2025-01-01'``, ``{{ Entity('account') }} = 12``,
``{{ Dimension('deal__created_on').grain('month') }}``) or the same with bare names
(``account__segment = 'Enterprise'``, what the MCP tool's triples become). Each Jinja call becomes a
placeholder column, the rest is parsed by sqlglot, and the tree must be a boolean expression over
those names, literals and a few harmless operators: a subquery, a function we do not list, a table
or a column that is not a known name is refused. The compiler swaps the placeholders for the
dimension expressions each measure sees.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from sophia.errors import InvalidRequest

_CALL = re.compile(
    r"\{\{\s*(?P<kind>Dimension|TimeDimension|Entity|Metric)\s*\((?P<args>[^{}]*?)\)"
    r"(?:\s*\.\s*grain\s*\(\s*(?P<grain>'\w+'|\"\w+\")\s*\))?\s*\}\}"
)
_PLACEHOLDER = "__sophia_ref_"
#: nodes a filter may contain (anything else, e.g. a subquery or an unknown function, is refused)
_ALLOWED: tuple[type[exp.Expr], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Tuple,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.And, exp.Or, exp.Not, exp.In, exp.Between, exp.Is, exp.Like, exp.ILike,
    exp.Cast, exp.DataType, exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div,
    exp.Lower, exp.Upper, exp.Coalesce, exp.CurrentDate, exp.Interval, exp.Var,
)  # fmt: skip
_BOOLEAN_ROOTS: tuple[type[exp.Expr], ...] = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean)


@dataclass(frozen=True)
class Filter:
    """A checked filter: a sqlglot tree whose placeholder columns stand for ``refs`` (MetricFlow names)."""

    text: str
    tree: exp.Expr
    refs: tuple[str, ...]

    def render(self, resolve: Callable[[str], exp.Expr]) -> exp.Expr:
        """The filter with each name replaced by ``resolve(name)`` (a column expression)."""

        def swap(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and not node.table and node.name.startswith(_PLACEHOLDER):
                return resolve(self.refs[int(node.name[len(_PLACEHOLDER) :])])
            return node

        return exp.paren(self.tree.copy().transform(swap), copy=False)


def _call_name(kind: str, args: str, grain: str | None) -> str:
    try:
        call = ast.parse(f"f({args})", mode="eval").body
    except SyntaxError:
        raise InvalidRequest(f"cannot read {kind}({args})") from None
    assert isinstance(call, ast.Call)
    try:
        values = [ast.literal_eval(arg) for arg in call.args]
        options = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except ValueError:
        raise InvalidRequest(f"{kind}(...) takes literal arguments, got {args}") from None
    if kind == "Metric":
        raise InvalidRequest("Metric(...) filters are not supported; filter on dimensions")
    if not values or not isinstance(values[0], str):
        raise InvalidRequest(f"{kind}(...) needs a name")
    name = values[0]
    path = options.get("entity_path") or []
    if path:
        name = "__".join([*map(str, path), name])
    time_grain = options.get("time_granularity_name") or (values[1] if len(values) > 1 else None)
    if grain:
        time_grain = grain.strip("'\"")
    if time_grain and kind != "Entity":
        name = f"{name}__{str(time_grain).lower()}"
    return name


def parse_filter(text: str, is_known: Callable[[str], bool]) -> Filter:
    """Parse one where clause; ``is_known(name)`` says whether a bare name is a dimension or entity."""
    refs: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        refs.append(_call_name(match["kind"], match["args"], match["grain"]))
        return f"{_PLACEHOLDER}{len(refs) - 1}"

    sql = _CALL.sub(placeholder, text)
    if "{{" in sql or "{%" in sql:
        raise InvalidRequest(f"unsupported template in filter: {text}")
    try:
        tree = sqlglot.parse_one(sql)
    except ParseError as error:
        raise InvalidRequest(f"cannot parse filter {text!r}: {error.errors[0]['description']}") from None
    if not isinstance(tree, _BOOLEAN_ROOTS) and not (
        isinstance(tree, exp.Paren) and isinstance(tree.unnest(), _BOOLEAN_ROOTS)
    ):
        raise InvalidRequest(f"a filter must be a condition (true or false): {text}")
    for node in tree.walk():
        if not isinstance(node, _ALLOWED):
            raise InvalidRequest(f"not allowed in a filter: {node.key.upper()} in {text!r}")
        if isinstance(node, exp.Column):
            if node.table:
                raise InvalidRequest(f"filters name dimensions, not table columns: {node.sql()} in {text!r}")
            if node.name.startswith(_PLACEHOLDER):
                continue
            if not is_known(node.name):
                raise InvalidRequest(f"unknown dimension {node.name!r} in filter {text!r}")
            refs.append(node.name)
            node.replace(exp.column(f"{_PLACEHOLDER}{len(refs) - 1}"))
    return Filter(text, tree, tuple(refs))
