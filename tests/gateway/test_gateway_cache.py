"""The response cache in the gateway: exact and semantic hits, streams, tenants, tags, restarts, ledger."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from fakes.helpers import chat, gateway_settings
from fakes.upstream import FakeUpstream
from sophia.gateway import auto
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway
from sophia.storage.testing import TEST_REDIS_URL, forget_redis_prefix

MODEL = "vllm/priced"  # $1 / $2 per million tokens: a call costs 0.00002 USD (10 in, 5 out)
COST = 10 * 1.0 / 1e6 + 5 * 2.0 / 1e6


def cached_gateway(upstream: FakeUpstream, **cache: Any) -> Gateway:
    return Gateway(gateway_settings(upstream.url, cache={"enabled": True, **cache}))


@pytest.fixture
async def gw(upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    gateway = cached_gateway(upstream)
    await gateway.start()
    yield gateway
    await gateway.close()


async def settled(gw: Gateway) -> None:
    """Wait for the answers being stored in the background."""
    assert gw.cache is not None
    await gw.cache.drain()


async def ledger_rows(gw: Gateway) -> list[dict[str, Any]]:
    await gw.accounts.ledger.flush()
    return await gw.accounts.db.fetchall(
        "SELECT cache, cost_usd, saved_usd, route, outcome FROM sophia_usage ORDER BY ts"
    )


async def test_a_repeated_request_is_answered_from_the_exact_cache(
    gw: Gateway, upstream: FakeUpstream
) -> None:
    first = await gw.chat(chat(MODEL, "What is our churn rate this quarter?"), None)
    await settled(gw)
    again = await gw.chat(chat(MODEL, "  What is our churn rate this quarter?\n"), None)
    assert (first.cache, again.cache) == ("miss", "exact")
    assert upstream.calls["priced"] == 1
    assert again.body == first.body and again.model.id == MODEL
    assert again.cost == 0.0 and again.saved_usd == pytest.approx(COST)
    rows = await ledger_rows(gw)
    assert [r["cache"] for r in rows] == ["miss", "exact"]
    assert rows[1]["cost_usd"] == 0.0 and rows[1]["saved_usd"] == pytest.approx(COST)
    assert "cache=exact" in rows[1]["route"]


async def test_a_paraphrase_hits_the_semantic_cache_and_a_look_alike_does_not(upstream: FakeUpstream) -> None:
    # the benchmark's balanced operating point: the gateway's wiring is under test here; the
    # verifier's own quality at its default is tested in tests/cache and measured in benchmarks/cache
    gw = cached_gateway(upstream, threshold=0.5)
    await gw.start()
    try:
        await gw.chat(chat(MODEL, "How can I cancel my subscription?"), None)
        await settled(gw)
        paraphrase = await gw.chat(chat(MODEL, "How do I cancel my subscription?"), None)
        assert paraphrase.cache == "semantic"
        assert "cache=semantic entry=" in paraphrase.route and " cos=" in paraphrase.route
        look_alike = await gw.chat(chat(MODEL, "How do I pause my subscription?"), None)
        assert look_alike.cache == "miss"
        assert upstream.calls["priced"] == 2
    finally:
        await gw.close()


async def test_high_temperature_only_reuses_exact_answers(gw: Gateway) -> None:
    await gw.chat(chat(MODEL, "How do I reset my password?", temperature=1.2), None)
    await settled(gw)
    assert (await gw.chat(chat(MODEL, "How can I reset my password?", temperature=1.2), None)).cache == "miss"
    assert (await gw.chat(chat(MODEL, "How do I reset my password?", temperature=1.2), None)).cache == "exact"


async def test_answers_are_not_shared_across_teams(gw: Gateway, upstream: FakeUpstream) -> None:
    _, sales = await gw.accounts.keys.create(name="s", team="sales")
    _, support = await gw.accounts.keys.create(name="p", team="support")
    body = chat(MODEL, "Summarise the Acme renewal call")
    await gw.chat(body, sales)
    await settled(gw)
    assert (await gw.chat(body, support)).cache == "miss"
    assert (await gw.chat(body, sales)).cache == "exact"
    assert upstream.calls["priced"] == 2


async def test_a_data_version_bump_invalidates_dependent_answers(gw: Gateway) -> None:
    deals = chat(MODEL, "Which deals closed this week?", metadata={"sources": ["crm.deals", "crm.calls"]})
    other = chat(MODEL, "Which deals closed this week?", metadata={"sources": "crm.calls"})
    await gw.chat(deals, None)
    await gw.chat(other, None)
    await settled(gw)
    assert (await gw.chat(deals, None)).cache == "exact"
    assert gw.cache is not None
    assert await gw.cache.bump("crm.deals") == 1
    assert (await gw.chat(deals, None)).cache == "miss"  # depended on crm.deals
    assert (await gw.chat(other, None)).cache == "exact"  # did not


async def test_a_request_can_turn_the_cache_off_but_not_on(upstream: FakeUpstream) -> None:
    gw = cached_gateway(upstream, models={"vllm/*": {"strategy": "off"}})
    await gw.start()
    try:
        await gw.chat(chat("ollama/ok", "hello there"), None)
        await gw.chat(chat(MODEL, "hello there"), None)
        await settled(gw)
        skip = chat("ollama/ok", "hello there", metadata={"cache": "off"})
        assert (await gw.chat(skip, None)).cache == "miss"
        assert (await gw.chat(chat("ollama/ok", "hello there"), None)).cache == "exact"
        forced = chat(MODEL, "hello there", metadata={"cache": "semantic"})
        assert (await gw.chat(forced, None)).cache == "miss"  # the model's strategy is off
    finally:
        await gw.close()


async def test_a_restart_keeps_the_cache(upstream: FakeUpstream) -> None:
    body = chat(MODEL, "What does the enterprise plan cost?")
    for expected in ("miss", "exact"):
        gw = cached_gateway(upstream)
        await gw.start()
        try:
            assert (await gw.chat(body, None)).cache == expected
        finally:
            await gw.close()  # drains the pending store
    assert upstream.calls["priced"] == 1


async def test_http_headers_bad_options_and_streams(gw: Gateway, upstream: FakeUpstream) -> None:
    secret, _ = await gw.accounts.keys.create(name="web", team="qa")
    transport = httpx.ASGITransport(app=GatewayApp(gw))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {secret}"}
    ) as http:
        body = chat(
            MODEL, "Explain net revenue retention", stream=True, stream_options={"include_usage": True}
        )
        miss = await http.post("/v1/chat/completions", json=body)
        assert miss.headers["x-sophia-cache"] == "miss"
        await settled(gw)
        # the streamed answer was cached whole: a non-streamed request gets it as a completion
        plain = await http.post(
            "/v1/chat/completions", json={**body, "stream": False, "stream_options": None}
        )
        assert plain.headers["x-sophia-cache"] == "exact", plain.text
        assert plain.json()["choices"][0]["message"]["content"] == "one two three "
        hit = await http.post("/v1/chat/completions", json=body)
        assert hit.headers["x-sophia-cache"] == "exact"
        assert hit.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in hit.text.split("\n\n") if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [orjson.loads(e) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert text == "one two three "
        assert chunks[-1]["usage"]["completion_tokens"] == 5  # include_usage honoured on a hit
        bad = await http.post("/v1/chat/completions", json=chat(MODEL, "x", metadata={"cache": "always"}))
        assert bad.status_code == 400 and "metadata.cache" in bad.json()["error"]["message"]
    assert upstream.calls["priced"] == 1
    rows = await ledger_rows(gw)
    assert [(r["cache"], r["outcome"]) for r in rows] == [
        ("miss", "ok"),
        ("exact", "ok"),
        ("exact", "ok"),
        ("miss", "error"),
    ]


async def test_the_router_reuses_the_cache_embedding(
    gw: Gateway, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded: list[str] = []
    real = auto._embed
    monkeypatch.setattr(auto, "_embed", lambda text: embedded.append(text) or real(text))
    await gw.chat(chat("sophia/auto", "How do I export my invoices to CSV?"), None)
    await settled(gw)  # nothing to compare with yet: the router embedded, the store reused it
    assert embedded == ["How do I export my invoices to CSV?"]
    result = await gw.chat(chat("sophia/auto", "Where can I find the weather forecast for Paris?"), None)
    assert result.cache == "miss" and result.route.startswith("[learned ")
    assert len(embedded) == 1  # the cache embedded it for its lookup; the router took that vector


async def test_admin_api_stats_purge_bump_and_false_hit_reports(gw: Gateway) -> None:
    secret, _ = await gw.accounts.keys.create(name="root", team="ops", admin=True)
    user, _ = await gw.accounts.keys.create(name="dev", team="ops")
    transport = httpx.ASGITransport(app=GatewayApp(gw))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {secret}"}
    ) as http:
        tagged = chat(MODEL, "Top five deals by value?", metadata={"sources": "crm.deals"})
        await http.post("/v1/chat/completions", json=tagged)
        await http.post("/v1/chat/completions", json=chat(MODEL, "What is ARR?"))
        await settled(gw)
        hit = await http.post("/v1/chat/completions", json=chat(MODEL, "What is ARR?"))
        assert hit.headers["x-sophia-cache"] == "exact"
        stats = (await http.get("/admin/cache", params={"since": "1h"})).json()
        assert (stats["entries"], stats["lookups"], stats["hits_exact"]) == (2, 3, 1)
        assert stats["saved_usd"] == pytest.approx(COST) and stats["this_process"]["hits_exact"] == 1
        bumped = await http.post("/admin/cache/bump", json={"tag": "crm.deals"})
        assert bumped.json() == {"tag": "crm.deals", "invalidated": 1}
        report = await http.post("/admin/cache/reports", json={"request_id": hit.headers["x-request-id"]})
        assert report.json()["removed"] is True and report.json()["kind"] == "exact"
        again = await http.post("/v1/chat/completions", json=chat(MODEL, "What is ARR?"))
        assert again.headers["x-sophia-cache"] == "miss"  # the reported entry is gone
        not_cached = await http.post(
            "/admin/cache/reports", json={"request_id": again.headers["x-request-id"]}
        )
        assert not_cached.status_code == 400 and "not answered from the cache" in not_cached.text
        vague = await http.post("/admin/cache/purge", json={})
        assert vague.status_code == 400
        await settled(gw)
        purged = await http.post("/admin/cache/purge", json={"all": True})
        assert purged.json() == {"deleted": 1}
        stats = (await http.get("/admin/cache", params={"since": "1h"})).json()
        assert stats["entries"] == 0 and stats["false_hits_reported"] == 1
        forbidden = await http.get("/admin/cache", headers={"Authorization": f"Bearer {user}"})
        assert forbidden.status_code == 403


@pytest.mark.redis
async def test_two_gateways_share_answers_and_bumps_through_redis(upstream: FakeUpstream) -> None:
    prefix = f"sophia-test:{secrets.token_hex(6)}:"
    settings = gateway_settings(
        upstream.url,
        cache={"enabled": True, "store": "redis", "redis_prefix": prefix},
        storage={"redis_url": TEST_REDIS_URL},
    )
    first, second = Gateway(settings), Gateway(settings)
    await first.start()
    await second.start()
    body = chat(MODEL, "Which accounts churned in March?", metadata={"sources": "crm.accounts"})
    try:
        assert (await first.chat(body, None)).cache == "miss"
        await settled(first)
        for _ in range(100):  # the other instance's index follows the Redis stream within milliseconds
            if (result := await second.chat(body, None)).cache == "exact":
                break
            await asyncio.sleep(0.05)
        assert result.cache == "exact" and upstream.calls["priced"] == 1
        assert second.cache is not None
        await second.cache.bump("crm.accounts")
        assert (await first.chat(body, None)).cache == "miss"  # the bump reached the first gateway
    finally:
        await first.close()
        await second.close()
        await forget_redis_prefix(prefix)
