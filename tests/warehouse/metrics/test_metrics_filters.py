"""Where filters: MetricFlow's Jinja and bare names are parsed; anything but a condition on known names is refused."""

from __future__ import annotations

import pytest
from sqlglot import exp

from sophia.errors import InvalidRequest
from sophia.warehouse.metrics.filters import parse_filter

KNOWN = {"account__segment", "deal__stage", "account", "metric_time__month"}


def _render(text: str) -> tuple[tuple[str, ...], str]:
    flt = parse_filter(text, KNOWN.__contains__)
    return flt.refs, flt.render(lambda name: exp.column(name.replace("__", "_"), "t")).sql()


@pytest.mark.parametrize(
    ("text", "refs", "sql"),
    [
        ("{{ Dimension('account__segment') }} = 'Enterprise'", ("account__segment",), "(t.account_segment = 'Enterprise')"),
        ("{{ TimeDimension('metric_time', 'month') }} >= '2025-01-01'", ("metric_time__month",), "(t.metric_time_month >= '2025-01-01')"),
        ("{{ Dimension('deal__created_on').grain('month') }} < '2025-01-01'", ("deal__created_on__month",), "(t.deal_created_on_month < '2025-01-01')"),
        ("{{ Entity('account') }} = 12", ("account",), "(t.account = 12)"),
        ("{{ Dimension('segment', entity_path=['account']) }} = 'SMB'", ("account__segment",), "(t.account_segment = 'SMB')"),
        ("account__segment IN ('SMB', 'Enterprise') AND NOT deal__stage = 'closed_lost'", ("account__segment", "deal__stage"), "(t.account_segment IN ('SMB', 'Enterprise') AND NOT t.deal_stage = 'closed_lost')"),
    ],
)  # fmt: skip
def test_filters_become_expressions_over_resolved_names(text: str, refs: tuple[str, ...], sql: str) -> None:
    assert _render(text) == (refs, sql)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("deal__stage = 'x'; DROP TABLE deals", "condition|parse"),
        ("deal__stage = (SELECT max(stage) FROM deals)", "SUBQUERY|SELECT"),
        ("password = 'x'", "unknown dimension"),
        ("deals.stage = 'x'", "not table columns"),
        ("read_csv('/etc/passwd') IS NOT NULL", "not allowed"),
        ("deal__stage", "condition"),
        ("{{ Metric('bookings', group_by=['account']) }} > 10", "Metric"),
        ("{% for x in y %}1=1{% endfor %}", "template"),
        ("{{ Dimension(__import__('os')) }} = 1", "literal"),
    ],
)
def test_anything_else_is_refused(text: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        parse_filter(text, KNOWN.__contains__)
