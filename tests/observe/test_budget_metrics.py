"""Budget use at /metrics: each budgeted key's limit, spend this period and share used, read at scrape time.

Two keys with budgets spend through the gateway (``vllm/priced`` on the stand-in provider: 10 prompt
tokens at $1/M and 5 completion tokens at $2/M, so 20,000 nano-dollars a call); the scrape is parsed
with prometheus_client's own text parser.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakes.helpers import chat, gateway_settings
from fakes.upstream import FakeUpstream
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway
from sophia.observe.metrics import BudgetReader, BudgetUse
from sophia.storage.testing import TEST_REDIS_URL, database_url

CALL_NANOS = 20_000
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(
    params=[
        pytest.param(("sqlite", None), id="sqlite"),
        pytest.param(("postgresql", None), id="postgresql", marks=pytest.mark.postgres),
        pytest.param(
            ("postgresql", TEST_REDIS_URL),
            id="postgresql+redis",
            marks=[pytest.mark.postgres, pytest.mark.redis],
        ),
    ]
)
async def gateway(
    request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path: Path
) -> AsyncIterator[Gateway]:
    """The gateway on SQLite or PostgreSQL, with its budgets in the database or (with Redis) in Redis."""
    kind, redis_url = request.param
    async with database_url(kind, tmp_path) as url:
        settings = gateway_settings(upstream.url, storage={"database_url": url, "redis_url": redis_url})
        gw = Gateway(settings)
        await gw.start()
        try:
            yield gw
        finally:
            await gw.close()


def budget_samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("sophia_budget_")
    }


async def spend(gateway: Gateway, secret: str, calls: int) -> None:
    transport = httpx.ASGITransport(app=GatewayApp(gateway))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {secret}"}
    ) as client:
        for _ in range(calls):
            resp = await client.post("/v1/chat/completions", json=chat("vllm/priced"))
            assert resp.status_code == 200, resp.text


async def test_two_budgeted_keys_show_their_limits_spend_and_share(gateway: Gateway) -> None:
    keys = gateway.accounts.keys
    admin, _ = await keys.create(name="prometheus", team="ops", admin=True)  # no budget: no gauges
    sales, a = await keys.create(name="a", team="sales", budget_daily_usd=1.0, budget_monthly_usd=5.0)
    data, b = await keys.create(name="b", team="data", budget_daily_usd=0.5)
    await spend(gateway, sales, 3)
    await spend(gateway, data, 1)
    await gateway.accounts.ledger.flush()
    ledger = {
        row["key_id"]: int(row["spent"])
        for row in await gateway.accounts.db.fetchall(
            "SELECT key_id, SUM(cost_nanos) AS spent FROM sophia_usage GROUP BY key_id"
        )
    }
    assert ledger == {a.id: 3 * CALL_NANOS, b.id: CALL_NANOS}
    expected = {
        ("sophia_budget_limit_nanodollars", a.id, "sales", "daily"): 1_000_000_000,
        ("sophia_budget_limit_nanodollars", a.id, "sales", "monthly"): 5_000_000_000,
        ("sophia_budget_limit_nanodollars", b.id, "data", "daily"): 500_000_000,
        ("sophia_budget_spent_nanodollars", a.id, "sales", "daily"): 3 * CALL_NANOS,
        ("sophia_budget_spent_nanodollars", a.id, "sales", "monthly"): 3 * CALL_NANOS,
        ("sophia_budget_spent_nanodollars", b.id, "data", "daily"): CALL_NANOS,
        ("sophia_budget_used_ratio", a.id, "sales", "daily"): 3 * CALL_NANOS / 1e9,
        ("sophia_budget_used_ratio", a.id, "sales", "monthly"): 3 * CALL_NANOS / 5e9,
        ("sophia_budget_used_ratio", b.id, "data", "daily"): CALL_NANOS / 5e8,
    }

    reader = gateway.metrics.budgets  # type: ignore[union-attr]
    # the budgets' own spend rows, unless they live in Redis: then the ledger's sums
    assert reader is not None and reader.spend_table == (gateway.settings.storage.redis_url is None)
    transport = httpx.ASGITransport(app=GatewayApp(gateway))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {admin}"}
    ) as scraper:

        async def scrape() -> tuple[str, Samples]:
            resp = await scraper.get("/metrics")
            assert resp.status_code == 200
            return resp.text, budget_samples(resp.text)

        text, first = await scrape()
        assert first and reader.reads == 1  # read for this scrape: the gauges do not trail by one scrape
        deadline = time.monotonic() + 5
        while True:
            await reader.settled()
            text, samples = await scrape()
            got = {
                (name, labels["key"], labels["team"], labels["period"]): value
                for (name, pairs), value in samples.items()
                if name != "sophia_budget_read_timestamp_seconds"
                for labels in [dict(pairs)]
            }
            # the budgets book settled costs every 250 ms: wait for the read that has them
            if got == expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert got == expected
        assert samples[("sophia_budget_read_timestamp_seconds", ())] == pytest.approx(time.time(), abs=10)
        for secret in (admin, sales, data):
            assert secret not in text
        reads = reader.reads
        for _ in range(5):  # scrapes closer together than a second share one read
            await scrape()
        await reader.settled()
        assert reader.reads - reads <= 1


async def test_the_ledger_gives_the_same_figures_when_budgets_live_elsewhere(gateway: Gateway) -> None:
    """With Redis the spend counters are not in the database: the ledger's sums (what seeds them) are read."""
    keys = gateway.accounts.keys
    sales, a = await keys.create(name="a", team="sales", budget_monthly_usd=2.0)
    _, revoked = await keys.create(name="gone", team="sales", budget_daily_usd=1.0)
    await keys.revoke(revoked.id)
    await spend(gateway, sales, 2)
    await gateway.accounts.ledger.flush()
    reader = BudgetReader(gateway.accounts.db, spend_table=False)
    assert await reader.read() == [BudgetUse(a.id, "sales", "monthly", 2_000_000_000, 2 * CALL_NANOS)]
    assert reader.uses[0].share == 2 * CALL_NANOS / 2e9
