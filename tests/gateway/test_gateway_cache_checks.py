"""The wrong-answer budget through the gateway: a sampled check calls the model, is booked as a
check, labels a row; stats show the estimate per alias; a report of a wrong hit is learned from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from fakes.helpers import FixedRandom, chat, gateway_settings
from fakes.upstream import FakeUpstream
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway

MODEL = "vllm/priced"
STORED = "How can I cancel my subscription?"
ASKED = "How do I cancel my subscription?"


@asynccontextmanager
async def budgeted(
    upstream: FakeUpstream, cache: dict[str, Any]
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """A gateway with this cache section and an admin client; the stored question is asked once."""
    gw = Gateway(gateway_settings(upstream.url, cache={"enabled": True, "threshold": 0.5, **cache}))
    await gw.start()
    try:
        secret, _ = await gw.accounts.keys.create(name="root", team="ops", admin=True)
        transport = httpx.ASGITransport(app=GatewayApp(gw))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {secret}"}
        ) as http:
            await http.post("/v1/chat/completions", json=chat(MODEL, STORED))
            assert gw.cache is not None
            await gw.cache.drain()
            yield gw, http
    finally:
        await gw.close()


@pytest.fixture
async def served(upstream: FakeUpstream) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """A gateway whose alias has a budget (5%) and checks 5% of would-be hits, and an admin client."""
    cache = {
        "models": {MODEL: {"max_error_rate": 0.05, "check_rate": 0.05}},
        "budget_cold": "threshold",  # a cold alias serves by the threshold: checks sample those hits
    }
    async with budgeted(upstream, cache) as pair:
        yield pair


async def test_a_check_is_a_model_call_booked_as_a_check_and_learned(
    served: tuple[Gateway, httpx.AsyncClient], upstream: FakeUpstream
) -> None:
    gw, http = served
    assert gw.cache is not None
    gw.cache.learner._random = FixedRandom(0.0)  # the next would-be hit is checked
    checked = await http.post("/v1/chat/completions", json=chat(MODEL, ASKED))
    assert checked.status_code == 200 and checked.headers["x-sophia-cache"] == "miss"
    assert upstream.calls["priced"] == 2  # the model answered the check
    gw.cache.learner._random = FixedRandom(0.99)
    again = await http.post("/v1/chat/completions", json=chat(MODEL, ASKED + " "))
    assert again.headers["x-sophia-cache"] in ("semantic", "exact")
    await gw.cache.drain()
    await gw.accounts.ledger.flush()
    rows = await gw.accounts.db.fetchall("SELECT cache, cache_entry, cost_usd FROM sophia_usage ORDER BY ts")
    assert [r["cache"] for r in rows][:2] == ["miss", "check"]
    assert rows[1]["cache_entry"] and rows[1]["cost_usd"] > 0
    stats = (await http.get("/admin/cache", params={"since": "1h"})).json()
    alias = stats["aliases"][MODEL]
    assert stats["checks"] == 1 and alias["checks_in_period"] == 1
    assert alias["checks"] == 1 and alias["max_error_rate"] == 0.05
    assert alias["check_cost_usd"] == pytest.approx(rows[1]["cost_usd"])
    assert alias["state"] == "threshold" and alias["error_interval"] is not None


async def test_a_reported_semantic_hit_becomes_a_wrong_row(served: tuple[Gateway, httpx.AsyncClient]) -> None:
    gw, http = served
    assert gw.cache is not None
    gw.cache.learner._random = FixedRandom(0.99)  # no checks
    hit = await http.post("/v1/chat/completions", json=chat(MODEL, ASKED))
    assert hit.headers["x-sophia-cache"] == "semantic"
    assert " margin=" in hit.headers["x-sophia-route"]
    report = await http.post("/admin/cache/reports", json={"request_id": hit.headers["x-request-id"]})
    assert report.json()["learned"] is True
    rows, _ = await gw.cache.store_backend.observations()
    assert [(r.kind, r.y, r.alias) for r in rows] == [("report", 1, MODEL)]
    assert rows[0].z > 0 and rows[0].cos > 0.8


async def test_a_cold_alias_withholds_the_rewording_and_learns_from_the_miss(upstream: FakeUpstream) -> None:
    """The default cold rule: until the alias has learned, a rewording is a miss (the budget holds from
    the first request) and the model's answer to it labels the withheld candidate, at no extra call."""
    async with budgeted(upstream, {"models": {MODEL: {"max_error_rate": 0.02}}}) as (gw, http):
        assert gw.cache is not None
        asked = await http.post("/v1/chat/completions", json=chat(MODEL, ASKED))
        assert asked.headers["x-sophia-cache"] == "miss" and upstream.calls["priced"] == 2
        await gw.cache.drain()
        await gw.cache.learner.sync()
        rows, _ = await gw.cache.store_backend.observations()
        # the fake echoes each question: "echo: How can I …" against "echo: How do I …" is a small edit
        assert [(r.kind, r.y) for r in rows] == [("shadow", 1)]
        stats = (await http.get("/admin/cache", params={"since": "1h"})).json()
        alias = stats["aliases"][MODEL]
        assert alias["state"] == "withhold" and alias["shadows"] == 1 and alias["checks"] == 0
