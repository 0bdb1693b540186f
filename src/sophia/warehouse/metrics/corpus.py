"""Every SQL statement the shipped metrics emit, for a representative set of group-bys.

The SQL guard's read corpus includes these, so a change to the guard that would refuse a metric's
query fails its tests.
"""

from __future__ import annotations

from sophia.warehouse.metrics.catalog import MetricCatalog, MetricQuery, load_catalog

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


def shaped_queries(catalog: MetricCatalog, start: str, end: str) -> list[MetricQuery]:
    """One query per shipped metric and each shape of ``SHAPES`` it supports, over [start, end)."""
    found: list[MetricQuery] = []
    for info in catalog.metrics():
        for shape in SHAPES:
            if not set(shape) <= set(info.dimensions):
                continue
            if info.requires_metric_time and not any(name.startswith("metric_time") for name in shape):
                continue
            found.append(MetricQuery(metrics=[info.name], group_by=shape, start=start, end=end))
    return found


def emitted_sql_corpus(dialect: str) -> list[str]:
    """The SELECTs of every shipped metric by each shape it supports, with a filter and a date range."""
    catalog = load_catalog()
    return [catalog.compile(query, dialect) for query in shaped_queries(catalog, "2025-01-01", "2026-01-01")]
