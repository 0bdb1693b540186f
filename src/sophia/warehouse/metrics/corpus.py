"""Every SQL statement the shipped metrics emit, for a representative set of group-bys.

The SQL guard's read corpus includes these, so a change to the guard that would refuse a metric's
query fails its tests.
"""

from __future__ import annotations

from sophia.warehouse.metrics.catalog import MetricQuery, load_catalog

#: group-bys tried for each metric (those a metric does not offer are skipped)
SHAPES: tuple[tuple[str, ...], ...] = (
    (),
    ("metric_time__month",),
    ("metric_time__quarter", "account__region"),
    ("metric_time__week", "rep__team__name"),
    ("account__segment",),
    ("objection__category",),
    ("deal__stage",),
)


def emitted_sql_corpus(dialect: str) -> list[str]:
    """The SELECTs of every shipped metric by each shape it supports, with a filter and a date range."""
    catalog = load_catalog()
    found: list[str] = []
    for info in catalog.metrics():
        for shape in SHAPES:
            if not set(shape) <= set(info.dimensions):
                continue
            if info.requires_metric_time and not any(name.startswith("metric_time") for name in shape):
                continue
            query = MetricQuery(metrics=[info.name], group_by=shape, start="2025-01-01", end="2026-01-01")
            found.append(catalog.compile(query, dialect))
    return found
