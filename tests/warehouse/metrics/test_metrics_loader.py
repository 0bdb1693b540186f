"""dbt YAML in, DSI's validation errors out (with the file that holds the mistake)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sophia.errors import ConfigError
from sophia.warehouse.metrics import load_catalog
from sophia.warehouse.metrics.loader import DEFINITIONS, load_manifest, table_of

GOOD = """
semantic_models:
  - name: orders
    model: ref('orders')
    defaults:
      agg_time_dimension: ordered_on
    entities:
      - name: order
        type: primary
        expr: order_id
    dimensions:
      - name: ordered_on
        type: time
        type_params:
          time_granularity: day
    measures:
      - name: order_total
        agg: {agg}
        expr: total
metrics:
  - name: sales
    label: Sales
    type: simple
    type_params:
      measure: order_total
"""


def _write(tmp_path: Path, text: str, name: str = "orders.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_definitions_parse_and_validate() -> None:
    manifest = load_manifest([DEFINITIONS])
    assert {model.name for model in manifest.semantic_models} >= {"deals", "accounts", "mrr_monthly", "calls"}
    names = {metric.name for metric in manifest.metrics}
    for required in (
        "revenue", "bookings", "win_rate", "churned_accounts", "churn_rate", "net_revenue_retention",
        "average_deal_size", "sales_cycle_days", "calls_by_objection", "deals_won", "deals_lost", "pipeline",
        "active_accounts", "mrr", "tickets", "csat", "usage_events", "calls", "call_to_win_rate",
    ):  # fmt: skip
        assert required in names
    deals = next(model for model in manifest.semantic_models if model.name == "deals")
    assert deals.node_relation.alias == "deals"


def test_ref_maps_to_a_table_in_the_configured_schema(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.format(agg="sum"))
    manifest = load_manifest([path], schema="analytics")
    relation = manifest.semantic_models[0].node_relation
    assert (relation.schema_name, relation.alias) == ("analytics", "orders")
    assert table_of("ref('orders')") == table_of('ref("orders")') == "orders"
    with pytest.raises(ConfigError, match="ref"):
        table_of("orders; drop table x")


def test_a_schema_error_names_dbts_reason_and_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.format(agg="total_nonsense"))
    with pytest.raises(ConfigError) as caught:
        load_catalog([path])
    assert str(path) in caught.value.message
    assert "total_nonsense" in caught.value.message
    assert "order_total" in caught.value.message or "orders" in caught.value.message


def test_a_semantic_error_comes_from_dbts_validator(tmp_path: Path) -> None:
    text = (
        GOOD.format(agg="sum")
        + """
  - name: broken_ratio
    label: Broken ratio
    type: ratio
    type_params:
      numerator: sales
      denominator: no_such_metric
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_catalog([_write(tmp_path, text)])
    assert "no_such_metric" in caught.value.message
    assert "dbt-semantic-interfaces" in caught.value.message


def test_a_count_without_expr_is_refused_by_dsi(tmp_path: Path) -> None:
    text = GOOD.format(agg="count").replace("        expr: total\n", "")
    with pytest.raises(ConfigError, match=r"(?i)count"):
        load_catalog([_write(tmp_path, text)])


def test_files_that_are_not_semantic_layer_yaml_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown top-level key"):
        load_catalog([_write(tmp_path, "dashboards: []\n")])
    with pytest.raises(ConfigError, match="ref"):
        load_catalog([_write(tmp_path, GOOD.format(agg="sum").replace("ref('orders')", "orders"))])
    with pytest.raises(ConfigError, match="not found"):
        load_catalog([tmp_path / "missing"])


def test_dbt_project_files_keep_their_other_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 2\nmodels:\n  - name: orders\n" + GOOD.format(agg="sum"))
    assert [info.name for info in load_catalog([tmp_path]).metrics()] == ["sales"]
    assert path.exists()
