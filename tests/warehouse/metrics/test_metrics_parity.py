"""Every shipped metric gives the same rows on DuckDB and PostgreSQL over the demo warehouse."""

from __future__ import annotations

import duckdb
import pytest

from sophia.warehouse.metrics import MetricCatalog, MetricQuery
from sophia.warehouse.metrics.corpus import shaped_queries
from warehouse.metrics.metrics_helpers import Postgres, same

pytestmark = pytest.mark.postgres


def test_every_metric_same_on_duckdb_and_postgres(
    catalog: MetricCatalog, duck: duckdb.DuckDBPyConnection, pg: Postgres
) -> None:
    checked: dict[str, int] = {}
    mismatches: list[str] = []
    for query in shaped_queries(catalog, "2024-06-01", "2026-06-01"):
        on_duck = duck.execute(catalog.compile(query, "duckdb")).fetchall()
        on_pg = pg.fetch(catalog.compile(query, "postgres"))
        if not same(on_duck, on_pg):
            mismatches.append(f"{query.metrics[0]} by {query.group_by}: {on_duck[:3]} != {on_pg[:3]}")
        checked[query.metrics[0]] = checked.get(query.metrics[0], 0) + len(on_duck)
    assert not mismatches, "\n".join(mismatches)
    assert set(checked) == {info.name for info in catalog.metrics()}
    # the demo data is rich enough that the comparison means something for the headline metrics
    for name in (
        "revenue",
        "bookings",
        "win_rate",
        "net_revenue_retention",
        "calls_by_objection",
        "call_to_win_rate",
    ):
        assert checked[name] > 3, name


def test_filters_order_and_limit_same_on_both(
    catalog: MetricCatalog, duck: duckdb.DuckDBPyConnection, pg: Postgres
) -> None:
    query = MetricQuery(
        metrics=["bookings", "win_rate", "deals_won"],
        group_by=["account__region", "metric_time__quarter"],
        where=["{{ Dimension('account__segment') }} IN ('Enterprise', 'Mid-Market')"],
        start="2024-01-01",
        end="2027-01-01",
        order_by=["-bookings"],
        limit=7,
    )
    on_duck = duck.execute(catalog.compile(query, "duckdb")).fetchall()
    on_pg = pg.fetch(catalog.compile(query, "postgres"))
    assert len(on_duck) == 7
    assert same(on_duck, on_pg)
    assert [row[2] for row in on_duck] == sorted((row[2] for row in on_duck), key=lambda v: -(v or 0))
