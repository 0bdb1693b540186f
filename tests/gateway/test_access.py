"""Keys, allowed models, rate limits and budgets, as an HTTP client meets them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from fakes.helpers import chat, gateway_settings
from fakes.upstream import FakeUpstream
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway


@pytest.fixture
async def fresh_gateway(upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    gw = Gateway(gateway_settings(upstream.url, storage={"key_cache_ttl": 0}))
    await gw.start()
    yield gw
    await gw.close()


def http(gw: Gateway, secret: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=GatewayApp(gw)), base_url="http://t", headers=headers
    )


async def test_missing_and_wrong_keys_get_401(fresh_gateway: Gateway) -> None:
    for secret in (None, "sk-sophia-not-a-real-key"):
        async with http(fresh_gateway, secret) as c:
            resp = await c.post("/v1/chat/completions", json=chat("vllm/ok"))
        assert resp.status_code == 401
        err = resp.json()["error"]
        assert err["type"] == "authentication_error"
        assert "sk-sophia-not-a-real-key" not in resp.text


async def test_revoked_key_is_refused(fresh_gateway: Gateway) -> None:
    secret, record = await fresh_gateway.accounts.keys.create(name="temp")
    async with http(fresh_gateway, secret) as c:
        assert (await c.post("/v1/chat/completions", json=chat("vllm/ok"))).status_code == 200
        await fresh_gateway.accounts.keys.revoke(record.id)
        assert (await c.post("/v1/chat/completions", json=chat("vllm/ok"))).status_code == 401


async def test_key_limited_to_some_models(fresh_gateway: Gateway) -> None:
    secret, _ = await fresh_gateway.accounts.keys.create(name="narrow", allowed_models=("vllm/*",))
    async with http(fresh_gateway, secret) as c:
        assert (await c.post("/v1/chat/completions", json=chat("vllm/ok"))).status_code == 200
        resp = await c.post("/v1/chat/completions", json=chat("openai/gpt-4.1"))
        assert resp.status_code == 403
        assert resp.json()["error"]["type"] == "permission_error"
        models = {m["id"] for m in (await c.get("/v1/models")).json()["data"]}
    assert models and all(m.startswith("vllm/") for m in models)


async def test_requests_per_minute_limit(fresh_gateway: Gateway) -> None:
    secret, _ = await fresh_gateway.accounts.keys.create(name="rpm", rpm=2)
    async with http(fresh_gateway, secret) as c:
        codes = [(await c.post("/v1/chat/completions", json=chat("vllm/ok"))).status_code for _ in range(3)]
        resp = await c.post("/v1/chat/completions", json=chat("vllm/ok"))
    assert codes == [200, 200, 429]
    assert resp.json()["error"]["type"] == "rate_limit_error"
    assert int(resp.headers["retry-after"]) >= 1


async def test_tokens_per_minute_limit(fresh_gateway: Gateway) -> None:
    secret, _ = await fresh_gateway.accounts.keys.create(name="tpm", tpm=20)
    async with http(fresh_gateway, secret) as c:
        codes = [(await c.post("/v1/chat/completions", json=chat("vllm/ok"))).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # 15 tokens each: the second starts under 20, the third does not


async def test_daily_budget(fresh_gateway: Gateway) -> None:
    # vllm/priced costs $0.00002 a call
    secret, _ = await fresh_gateway.accounts.keys.create(name="budget", budget_daily_usd=0.00003)
    async with http(fresh_gateway, secret) as c:
        codes = [
            (await c.post("/v1/chat/completions", json=chat("vllm/priced"))).status_code for _ in range(3)
        ]
        resp = await c.post("/v1/chat/completions", json=chat("vllm/priced"))
    assert codes == [200, 200, 429]
    assert resp.json()["error"]["type"] == "insufficient_quota"
    assert resp.json()["error"]["code"] == "budget_exceeded"


async def test_budget_survives_a_restart(upstream: FakeUpstream) -> None:
    settings = gateway_settings(upstream.url)
    gw = Gateway(settings)
    await gw.start()
    secret, _ = await gw.accounts.keys.create(name="budget", budget_monthly_usd=0.00003)
    async with http(gw, secret) as c:
        assert (await c.post("/v1/chat/completions", json=chat("vllm/priced"))).status_code == 200
        assert (await c.post("/v1/chat/completions", json=chat("vllm/priced"))).status_code == 200
    await gw.close()
    again = Gateway(settings)
    await again.start()
    try:
        async with http(again, secret) as c:
            resp = await c.post("/v1/chat/completions", json=chat("vllm/priced"))
    finally:
        await again.close()
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "budget_exceeded"
