"""The compiled SQL answers what a person would write by hand (DuckDB, demo data)."""

from __future__ import annotations

import duckdb

from sophia.warehouse.metrics import MetricCatalog, MetricQuery
from warehouse.metrics.metrics_helpers import same


def _run(
    duck: duckdb.DuckDBPyConnection, catalog: MetricCatalog, query: MetricQuery
) -> list[tuple[object, ...]]:
    return duck.execute(catalog.compile(query, "duckdb")).fetchall()


def test_win_rate_by_region_for_enterprise(catalog: MetricCatalog, duck: duckdb.DuckDBPyConnection) -> None:
    query = MetricQuery(
        metrics=["win_rate"],
        group_by=["account__region"],
        where=["{{ Dimension('account__segment') }} = 'Enterprise'"],
        start="2024-01-01",
        end="2026-12-01",
    )
    expected = duck.execute("""
        SELECT a.region,
               count(*) FILTER (WHERE d.stage = 'closed_won')::DOUBLE / nullif(count(*)::DOUBLE, 0)
        FROM deals d JOIN accounts a USING (account_id)
        WHERE d.stage IN ('closed_won', 'closed_lost') AND a.segment = 'Enterprise'
          AND d.closed_on >= DATE '2024-01-01' AND d.closed_on < DATE '2026-12-01'
        GROUP BY 1""").fetchall()
    assert expected and same(_run(duck, catalog, query), expected)


def test_bookings_by_quarter(catalog: MetricCatalog, duck: duckdb.DuckDBPyConnection) -> None:
    expected = duck.execute("""
        SELECT date_trunc('quarter', closed_on)::DATE, sum(amount) FROM deals
        WHERE stage = 'closed_won' GROUP BY 1""").fetchall()
    got = _run(duck, catalog, MetricQuery(metrics=["bookings"], group_by=["metric_time__quarter"]))
    assert len(expected) > 4 and same(got, expected)


def test_net_revenue_retention_by_month(catalog: MetricCatalog, duck: duckdb.DuckDBPyConnection) -> None:
    expected = duck.execute("""
        SELECT month, (sum(starting_mrr) + sum(expansion_mrr) - sum(contraction_mrr) - sum(churned_mrr))::DOUBLE
                      / nullif(sum(starting_mrr)::DOUBLE, 0)
        FROM mrr_monthly GROUP BY 1""").fetchall()
    got = _run(duck, catalog, MetricQuery(metrics=["net_revenue_retention"], group_by=["metric_time__month"]))
    assert len(expected) > 12 and same(got, expected)


def test_mrr_takes_the_last_month_of_a_quarter(
    catalog: MetricCatalog, duck: duckdb.DuckDBPyConnection
) -> None:
    expected = duck.execute("""
        SELECT date_trunc('quarter', month)::DATE, sum(ending_mrr) FROM mrr_monthly
        WHERE month = (SELECT max(month) FROM mrr_monthly m WHERE date_trunc('quarter', m.month) = date_trunc('quarter', mrr_monthly.month))
        GROUP BY 1""").fetchall()
    got = _run(duck, catalog, MetricQuery(metrics=["mrr"], group_by=["metric_time__quarter"]))
    assert same(got, expected)


def test_revenue_year_to_date_by_month(catalog: MetricCatalog, duck: duckdb.DuckDBPyConnection) -> None:
    query = MetricQuery(
        metrics=["revenue_ytd"], group_by=["metric_time__month"], start="2025-01-01", end="2026-01-01"
    )
    expected = duck.execute("""
        SELECT m::DATE, (SELECT sum(amount) FROM payments
                         WHERE paid_on >= DATE '2025-01-01' AND paid_on < m + INTERVAL 1 MONTH)
        FROM generate_series(DATE '2025-01-01', DATE '2025-12-01', INTERVAL 1 MONTH) s(m)""").fetchall()
    got = _run(duck, catalog, query)
    assert len(expected) == 12 and same(got, expected)


def test_bookings_trailing_90_days_by_day(catalog: MetricCatalog, duck: duckdb.DuckDBPyConnection) -> None:
    query = MetricQuery(
        metrics=["bookings_trailing_90d"], group_by=["metric_time__day"], start="2025-03-01", end="2025-04-01"
    )
    expected = duck.execute("""
        SELECT d::DATE, sum(amount) FROM generate_series(DATE '2025-03-01', DATE '2025-03-31', INTERVAL 1 DAY) s(d)
        JOIN deals ON stage = 'closed_won' AND closed_on <= d AND closed_on > d - INTERVAL 90 DAY
        GROUP BY 1""").fetchall()
    assert expected and same(_run(duck, catalog, query), expected)


def test_call_to_win_conversion(catalog: MetricCatalog, duck: duckdb.DuckDBPyConnection) -> None:
    expected = duck.execute("""
        WITH credited AS (
            SELECT c.call_id, d.deal_id,
                   row_number() OVER (PARTITION BY d.deal_id ORDER BY c.started_at DESC, c.call_id DESC) AS rn
            FROM calls c JOIN deals d ON d.account_id = c.account_id AND d.stage = 'closed_won'
             AND d.closed_on::TIMESTAMP >= c.started_at AND d.closed_on::TIMESTAMP <= c.started_at + INTERVAL 90 DAY)
        SELECT (SELECT count(*) FROM credited WHERE rn = 1)::DOUBLE / (SELECT count(*) FROM calls)""").fetchall()
    got = _run(duck, catalog, MetricQuery(metrics=["call_to_win_rate"]))
    assert 0 < expected[0][0] < 1 and same(got, expected)
    conversions = _run(duck, catalog, MetricQuery(metrics=["call_to_win_conversions"]))
    calls = _run(duck, catalog, MetricQuery(metrics=["calls"]))
    assert same([(conversions[0][0] / calls[0][0],)], expected)


def test_calls_by_objection_category(catalog: MetricCatalog, duck: duckdb.DuckDBPyConnection) -> None:
    expected = duck.execute("""
        SELECT o.category, count(*) FROM call_objections o JOIN calls c USING (call_id)
        WHERE c.started_at >= DATE '2025-01-01' GROUP BY 1""").fetchall()
    query = MetricQuery(metrics=["calls_by_objection"], group_by=["objection__category"], start="2025-01-01")
    assert expected and same(_run(duck, catalog, query), expected)


def test_same_helper_notices_a_difference() -> None:
    assert same([(1, 2.0)], [(1, 2.0 + 1e-12)])
    assert not same([(1, 2.0)], [(1, 2.0001)])
    assert not same([(1, 2.0)], [(1, 2.0), (2, 3.0)])
