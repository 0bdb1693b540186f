"""The Business Intelligence server (8094) through an in-memory MCP client, on a small demo warehouse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from mcp_support import MODES, text

from fakes.upstream import FakeUpstream
from mcp import Client
from sophia.accounts import Accounts
from sophia.container import Services
from sophia.knowledge import Document
from sophia.knowledge.service import KNOWLEDGE
from sophia.mcp.registry import get_registry
from sophia.mcp.server import build_server
from sophia.settings import load_settings
from sophia.warehouse.backends.duckdb import READ_ONLY_CONFIG
from sophia.warehouse.demo import build_duckdb, transcript_documents

BI_TOOLS = {
    "list_datasets", "describe_table", "run_sql", "list_metrics", "query_metrics", "kpi_report",
    "search_documents", "ask_data", "chart",
}  # fmt: skip


@dataclass
class Bi:
    services: Services
    path: Path
    key: str
    narrow: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bi") / "demo.duckdb"
    build_duckdb(path, scale=0.02, seed=0)
    return path


@pytest.fixture
async def bi(demo: Path, tmp_path: Path, upstream: FakeUpstream) -> AsyncIterator[Bi]:
    settings = load_settings(
        home=str(tmp_path / "home"),
        warehouse={"url": f"duckdb:///{demo}"},
        knowledge={"url": f"sqlite:///{demo.parent / 'knowledge.db'}"},  # indexed once for the module
        providers={"local": {"enabled": False}, "vllm": {"base_url": f"{upstream.url}/vllm/v1"}},
        aliases={"sophia/fast": ["vllm/fast"]},
        cache={"enabled": False},
    )
    services = Services(settings)
    accounts: Accounts = await services.open()
    key, _ = await accounts.keys.create(name="analyst", team="sales")
    narrow, _ = await accounts.keys.create(name="sql-only", team="sales", allowed_tools=["bi/run_sql"])
    kb = await services.get(KNOWLEDGE)
    await kb.sync(
        "demo-calls", [Document.from_dict(d, source="demo-calls") for d in transcript_documents(demo)]
    )
    yield Bi(services, demo, key, narrow)
    await services.close()


async def call(
    bi: Bi, tool: str, args: dict[str, Any], mode: str = "legacy", secret: str | None = None
) -> Any:
    server = build_server(get_registry().get("bi"), bi.services, secret=secret or bi.key)
    async with Client(server, mode=mode) as client:
        return await client.call_tool(tool, args)


def direct(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True, config=dict(READ_ONLY_CONFIG)) as con:
        return con.execute(sql).fetchall()


@pytest.mark.parametrize("mode", MODES)
async def test_every_tool_is_listed_read_only(bi: Bi, mode: str) -> None:
    server = build_server(get_registry().get("bi"), bi.services, secret=bi.key)
    async with Client(server, mode=mode) as client:
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools} == BI_TOOLS
    assert all(t.annotations.read_only_hint is True for t in tools)
    assert all(t.annotations.destructive_hint is False for t in tools)


async def test_a_key_sees_only_its_tools(bi: Bi) -> None:
    server = build_server(get_registry().get("bi"), bi.services, secret=bi.narrow)
    async with Client(server) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        refused = await client.call_tool("list_datasets", {})
    assert names == ["run_sql"]
    assert refused.is_error


async def test_datasets_and_describe(bi: Bi) -> None:
    listed = (await call(bi, "list_datasets", {})).structured_content
    tables = {t["name"]: t for t in listed["tables"]}
    assert {"deals", "accounts", "reps", "calls", "product_usage", "call_transcript_turns"} <= set(tables)
    assert tables["deals"]["rows"] == direct(bi.path, "SELECT count(*) FROM deals")[0][0]
    assert listed["metrics"] >= 8 and listed["documents"] > 0
    described = (await call(bi, "describe_table", {"table": "deals", "sample_rows": 3})).structured_content
    assert {"deal_id", "stage", "amount", "competitor"} <= {c["name"] for c in described["columns"]}
    assert len(described["sample"]) == 3
    unknown = await call(bi, "describe_table", {"table": "deal"})
    assert unknown.is_error and "deals" in text(unknown)


async def test_run_sql_pages_and_shows_what_ran(bi: Bi) -> None:
    sql = "SELECT deal_id, amount FROM deals ORDER BY deal_id"
    first = (await call(bi, "run_sql", {"sql": sql, "limit": 7})).structured_content
    assert first["truncated"] is True and first["next_cursor"]
    second = (
        await call(bi, "run_sql", {"sql": sql, "limit": 7, "cursor": first["next_cursor"]})
    ).structured_content
    expected = direct(bi.path, sql + " LIMIT 14")
    assert [r[0] for r in first["rows"] + second["rows"]] == [r[0] for r in expected]
    assert "deals" in first["sql"] and first["elapsed_ms"] >= 0


async def test_result_rows_are_published_as_a_plain_array(bi: Bi) -> None:
    """Every SDK client validates each result against the output schema: rows described cell by cell
    made that check walk the whole page (benchmarks/warehouse/README.md), so the schema stops at the
    array while the server still sends arrays of cells."""
    server = build_server(get_registry().get("bi"), bi.services, secret=bi.key)
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("run_sql", "query_metrics", "ask_data"):
        schema = tools[name].output_schema
        assert schema is not None
        rows = schema["properties"]["rows"]
        assert rows["type"] == "array" and "items" not in rows, name
    page = (
        await call(bi, "run_sql", {"sql": "SELECT deal_id, amount FROM deals LIMIT 3"})
    ).structured_content
    assert len(page["rows"]) == 3 and all(isinstance(r, list) and len(r) == 2 for r in page["rows"])


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("DELETE FROM deals", "DELETE"),
        ("SELECT * INTO new_deals FROM deals", "INTO"),
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT 1; DROP TABLE deals", "one statement"),
    ],
)
async def test_run_sql_refuses_side_effects_and_says_why(bi: Bi, sql: str, why: str) -> None:
    result = await call(bi, "run_sql", {"sql": sql})
    assert result.is_error
    assert why.lower() in text(result).lower()
    assert direct(bi.path, "SELECT count(*) FROM deals")[0][0] > 0


async def test_query_metrics_equals_hand_written_sql(bi: Bi) -> None:
    names = {m["name"] for m in (await call(bi, "list_metrics", {})).structured_content["metrics"]}
    assert {"revenue", "bookings", "win_rate"} <= names
    out = (
        await call(
            bi,
            "query_metrics",
            {"metrics": ["win_rate"], "group_by": ["account__region"], "order": ["account__region"]},
        )
    ).structured_content
    got = {row[0]: row[1] for row in out["rows"]}
    hand = direct(
        bi.path,
        "SELECT a.region, avg(CASE WHEN d.stage = 'closed_won' THEN 1.0 ELSE 0.0 END) FROM deals d "
        "JOIN accounts a USING (account_id) WHERE d.stage IN ('closed_won', 'closed_lost') GROUP BY 1",
    )
    assert got.keys() == {r[0] for r in hand}
    for region, rate in hand:
        assert got[region] == pytest.approx(float(rate), rel=1e-9)
    assert out["sql"].upper().startswith(("SELECT", "WITH"))


async def test_search_documents_cites_verbatim_turns(bi: Bi) -> None:
    out = (
        await call(bi, "search_documents", {"query": "worried about the price", "k": 3})
    ).structured_content
    assert out["hits"]
    for hit in out["hits"]:
        c = hit["citation"]
        call_id = int(c["document_id"].split("-")[-1])
        turns = direct(
            bi.path,
            f"SELECT text FROM call_transcript_turns WHERE call_id = {call_id} "
            f"AND turn BETWEEN {c['turn_start']} AND {c['turn_end']} ORDER BY turn",
        )
        assert all(t[0] in c["quote"] for t in turns)


async def test_ask_data_answers_from_metrics_without_a_model(bi: Bi) -> None:
    out = (
        await call(bi, "ask_data", {"question": "Which regions convert best, quarter by quarter?"})
    ).structured_content
    assert out["route"] == "metrics" and out["model_calls"] == 0
    assert out["rows"] and "SELECT" in out["sql"].upper()


async def test_ask_data_abstains_with_a_reason(bi: Bi) -> None:
    out = (
        await call(bi, "ask_data", {"question": "What will the weather be in Boston tomorrow?"})
    ).structured_content
    assert out["abstained"] is True and out["route"] == "abstained" and out["reason"]
    assert out["model_calls"] == 0


async def test_chart_is_valid_vega_lite_with_a_png(bi: Bi) -> None:
    result = await call(bi, "chart", {"metrics": ["bookings"], "grain": "quarter"})
    assert not result.is_error, text(result)
    spec = result.structured_content["spec"]
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v5")
    assert spec["encoding"]["x"]["field"] == "metric_time__quarter"
    images = [b for b in result.content if getattr(b, "type", "") == "image"]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    import base64

    assert base64.b64decode(images[0].data)[:8] == b"\x89PNG\r\n\x1a\n"


async def test_chart_refuses_a_column_that_is_not_there(bi: Bi) -> None:
    result = await call(
        bi, "chart", {"sql": "SELECT region, count(*) AS n FROM accounts GROUP BY 1", "y": "nope"}
    )
    assert result.is_error and "nope" in text(result)


async def test_kpi_report_compares_two_quarters(bi: Bi) -> None:
    out = (await call(bi, "kpi_report", {"period": "quarter", "end": "2026-08-15"})).structured_content
    assert out["period"] == "Q3 2026" and out["previous_period"] == "Q2 2026"
    rows = {r["metric"]: r for r in out["rows"]}
    bookings = direct(
        bi.path,
        "SELECT sum(amount) FROM deals WHERE stage = 'closed_won' AND closed_on >= DATE '2026-07-01' "
        "AND closed_on < DATE '2026-10-01'",
    )[0][0]
    assert rows["bookings"]["current"] == pytest.approx(float(bookings or 0), rel=1e-9)
    assert "| Metric | Q3 2026 | Q2 2026 | Change |" in out["markdown"]


async def test_every_call_is_booked_in_the_ledger(bi: Bi) -> None:
    await call(bi, "run_sql", {"sql": "SELECT 1 AS one"})
    await call(bi, "run_sql", {"sql": "DROP TABLE deals"})
    accounts = await bi.services.open()
    rows = await accounts.ledger.rows(0, endpoint="mcp:bi/run_sql")
    assert [r["outcome"] for r in rows] == ["ok", "error"]


@pytest.mark.local_model
async def test_ask_data_runs_end_to_end_with_the_local_model(demo: Path, tmp_path: Path) -> None:
    """A question no metric covers goes to the bundled SmolLM2 through the gateway (its SQL may be poor:
    the answer either runs through the guard or says why it did not, never a tool failure)."""
    settings = load_settings(
        home=str(tmp_path / "home"),
        warehouse={"url": f"duckdb:///{demo}"},
        knowledge={"url": f"sqlite:///{demo.parent / 'knowledge.db'}"},
        cache={"enabled": False},
    )
    services = Services(settings)
    try:
        key, _ = await (await services.open()).keys.create(name="analyst", team="sales")
        server = build_server(get_registry().get("bi"), services, secret=key)
        async with Client(server) as client:
            result = await client.call_tool(
                "ask_data", {"question": "How many contacts are decision makers at Enterprise accounts?"}
            )
        out = result.structured_content
        assert not result.is_error, text(result)
        assert out["route"] in ("sql_via_model", "metrics_via_model") and out["model_calls"] >= 1
        assert out["abstained"] is False and out["sql"]
        rows = await (await services.open()).ledger.rows(0, endpoint="chat")
        assert rows and rows[0]["served_model"] == "local"
    finally:
        await services.close()


async def test_kpi_report_takes_as_many_metrics_as_its_schema_allows(bi: Bi) -> None:
    names = ["revenue", "bookings", "win_rate", "average_deal_size", "sales_cycle_days", "deals_won",
             "deals_lost", "deals_closed", "calls", "tickets", "churned_accounts", "new_customers"]  # fmt: skip
    result = await call(bi, "kpi_report", {"period": "quarter", "end": "2026-08-15", "metrics": names})
    assert not result.is_error, text(result)
    assert [r["metric"] for r in result.structured_content["rows"]] == names
