"""The catalog API: metrics, dimensions, describe, compile in three dialects, errors with close names."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from sophia.errors import InvalidRequest
from sophia.warehouse.metrics import MetricCatalog, MetricQuery, emitted_sql_corpus


def test_metrics_carry_labels_descriptions_and_synonyms(catalog: MetricCatalog) -> None:
    infos = {info.name: info for info in catalog.metrics()}
    assert infos["win_rate"].type == "ratio"
    assert infos["win_rate"].label == "Win rate"
    assert "close rate" in infos["win_rate"].synonyms
    assert "NRR" in infos["net_revenue_retention"].synonyms
    assert all(info.description for info in infos.values())
    assert infos["revenue_growth_mom"].requires_metric_time
    assert not infos["revenue"].requires_metric_time


def test_dimensions_include_grains_and_multi_hop_joins(catalog: MetricCatalog) -> None:
    dims = catalog.dimensions(["bookings"])
    for name in ("metric_time__day", "metric_time__quarter", "deal__stage", "account__region", "rep__name",
                 "account__rep__name", "rep__team__name", "deal__created_on__month", "account"):  # fmt: skip
        assert name in dims
    assert "account__rep__team__name" not in dims  # three joins: past MetricFlow's two-hop limit
    mrr = catalog.dimensions(["mrr"])
    assert "metric_time__month" in mrr and "metric_time__day" not in mrr  # month-grain table
    shared = catalog.dimensions(["bookings", "revenue"])
    assert "account__region" in shared and "deal__stage" not in shared
    assert "objection__category" in catalog.dimensions(["calls_by_objection"])


def test_describe_says_formula_and_tables(catalog: MetricCatalog) -> None:
    described = catalog.describe("win_rate")
    assert described["formula"] == "deals_won / deals_closed"
    assert described["tables"] == ["deals"]
    nrr = catalog.describe("net_revenue_retention")
    assert "expansion_mrr" in nrr["formula"] and nrr["tables"] == ["mrr_monthly"]
    assert catalog.describe("call_to_win_rate")["tables"] == ["calls", "deals"]
    assert "closed_won" in catalog.describe("bookings")["filter"][0]


def test_unknown_names_list_close_ones(catalog: MetricCatalog) -> None:
    with pytest.raises(InvalidRequest, match="win_rate") as caught:
        catalog.compile(MetricQuery(metrics=["winrate"]))
    assert "did you mean" in caught.value.message
    with pytest.raises(InvalidRequest, match="account__region"):
        catalog.compile(MetricQuery(metrics=["bookings"], group_by=["account__regoin"]))
    with pytest.raises(InvalidRequest, match="deal__stage"):  # not a dimension of payments
        catalog.compile(MetricQuery(metrics=["revenue"], group_by=["deal__stage"]))
    with pytest.raises(InvalidRequest, match="unknown dimension"):
        catalog.compile(MetricQuery(metrics=["bookings"], where=["secret_column = 1"]))
    with pytest.raises(InvalidRequest, match="dialect"):
        catalog.compile(MetricQuery(metrics=["bookings"]), "oracle")
    with pytest.raises(InvalidRequest, match="metric_time"):
        catalog.compile(MetricQuery(metrics=["revenue_growth_mom"], group_by=["account__region"]))
    with pytest.raises(InvalidRequest, match="date"):
        catalog.compile(MetricQuery(metrics=["bookings"], start="2025-13-45"))
    with pytest.raises(InvalidRequest, match="order_by"):
        catalog.compile(MetricQuery(metrics=["bookings"], order_by=["-revenue"]))


def test_every_snowflake_statement_reads_back_identically(catalog: MetricCatalog) -> None:
    """Snowflake is not run here: its SQL must parse in sqlglot's Snowflake dialect and regenerate the same."""
    corpus = emitted_sql_corpus("snowflake")
    assert len(corpus) > 3 * len(catalog.metrics())
    for sql in corpus:
        statements = sqlglot.parse(sql, read="snowflake")
        assert len(statements) == 1 and isinstance(statements[0], exp.Select), sql
        assert sqlglot.transpile(sql, read="snowflake", write="snowflake")[0] == sql
        assert not any(
            isinstance(node, (exp.Insert, exp.Delete, exp.Update, exp.Create, exp.Drop))
            for node in statements[0].walk()
        )


def test_every_duckdb_statement_runs(catalog: MetricCatalog, duck: duckdb.DuckDBPyConnection) -> None:
    corpus = emitted_sql_corpus("duckdb")
    assert len(corpus) > 3 * len(catalog.metrics())
    non_empty = sum(1 for sql in corpus if duck.execute(sql).fetchall())
    assert non_empty > len(corpus) * 0.8


def test_snowflake_spelling(catalog: MetricCatalog) -> None:
    query = MetricQuery(
        metrics=["revenue_ytd", "win_rate"], group_by=["metric_time__quarter"], start="2025-01-01"
    )
    sql = catalog.compile(query, "snowflake")
    assert "GENERATOR(ROWCOUNT" in sql and "GENERATE_SERIES" not in sql
    assert "DATE_TRUNC('QUARTER'" in sql
    assert "GENERATE_SERIES" in catalog.compile(query, "postgres")


def test_schema_qualifies_every_table(catalog: MetricCatalog) -> None:
    sql = catalog.compile(
        MetricQuery(metrics=["calls_by_objection"], group_by=["objection__raised_at__month"]),
        "postgres",
        schema="sales",
    )
    tables = {
        (t.db, t.name)
        for t in sqlglot.parse_one(sql, read="postgres").find_all(exp.Table)
        if t.name in ("calls", "call_objections")
    }
    assert tables == {("sales", "calls"), ("sales", "call_objections")}
