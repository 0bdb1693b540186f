"""Fallback chains, retries, latency budgets and breakers against a real loopback upstream."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from fakes.helpers import chat, gateway_settings
from fakes.upstream import FakeUpstream
from sophia.errors import AllProvidersFailed, ProviderHTTPError
from sophia.gateway.engine import Gateway


async def test_provider_returning_500s_falls_back_after_retries(
    client: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("test/fallback-500"))
    assert resp.status_code == 200
    assert resp.headers["x-sophia-model"] == "ollama/ok"
    # 1 try + 2 retries on the failing model, then the next one
    assert upstream.calls["status-500"] == 3
    assert resp.headers["x-sophia-route"].split() == [
        "vllm/status-500=provider_http_error",
        "vllm/status-500=provider_http_error",
        "vllm/status-500=provider_http_error",
        "ollama/ok=ok",
    ]


async def test_provider_that_is_down_falls_back(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("test/fallback-down"))
    assert resp.status_code == 200
    assert resp.headers["x-sophia-model"] == "vllm/ok"
    assert "provider_unavailable" in resp.headers["x-sophia-route"]


async def test_slow_provider_exceeds_latency_budget_and_falls_back(
    client: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("test/fallback-slow"))
    assert resp.status_code == 200
    assert resp.headers["x-sophia-model"] == "ollama/ok"
    # a timeout is not retried on the same model: the budget is spent, move on
    assert upstream.calls["slow-5"] == 1
    assert "vllm/slow-5=provider_timeout" in resp.headers["x-sophia-route"]


async def test_last_model_of_a_chain_gets_the_full_timeout_not_the_budget(upstream: FakeUpstream) -> None:
    # slow-1 takes longer than the 0.5 s latency budget but is alone: it must still be served
    gw = Gateway(gateway_settings(upstream.url))
    await gw.start()
    try:
        result = await gw.chat(chat("vllm/slow-1"), None)
    finally:
        await gw.close()
    assert result.model.id == "vllm/slow-1"


async def test_single_model_that_times_out_gives_504(upstream: FakeUpstream) -> None:
    gw = Gateway(gateway_settings(upstream.url, reliability={"timeout": 0.3}))
    await gw.start()
    try:
        with pytest.raises(AllProvidersFailed) as info:
            await gw.chat(chat("vllm/slow-2"), None)
    finally:
        await gw.close()
    from sophia.gateway.errors import status_and_type

    assert status_and_type(info.value) == (504, "upstream_error")


async def test_flaky_provider_is_retried_until_it_answers(
    client: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("vllm/flaky-2"))
    assert resp.status_code == 200
    assert upstream.calls["flaky-2"] == 3


async def test_all_models_failing_gives_an_upstream_error(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("test/all-bad"))
    assert resp.status_code == 502
    err = resp.json()["error"]
    assert err["type"] == "upstream_error"
    assert err["code"] == "all_providers_failed"
    assert "vllm/status-503" in err["message"]


async def test_429_with_retry_after_is_retried_then_reported(
    client: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("vllm/status-429"))
    assert resp.status_code == 429
    assert upstream.calls["status-429"] == 3
    assert resp.headers["retry-after"] == "1"


async def test_breaker_opens_after_repeated_failures_and_skips_the_model(upstream: FakeUpstream) -> None:
    gw = Gateway(
        gateway_settings(
            upstream.url, reliability={"retries": 0, "breaker_failures": 2, "breaker_cooldown": 60}
        )
    )
    await gw.start()
    try:
        for _ in range(2):
            await gw.chat(chat("test/fallback-500"), None)
        assert gw.breakers.get("vllm/status-500").state == "open"
        result = await gw.chat(chat("test/fallback-500"), None)
    finally:
        await gw.close()
    assert upstream.calls["status-500"] == 2  # the third request never reached it
    assert result.route.split()[0] == "vllm/status-500=circuit_open"


async def test_breaker_half_opens_after_cooldown(upstream: FakeUpstream) -> None:
    gw = Gateway(
        gateway_settings(
            upstream.url, reliability={"retries": 0, "breaker_failures": 1, "breaker_cooldown": 0.2}
        )
    )
    await gw.start()
    try:
        await gw.chat(chat("test/fallback-500"), None)
        assert gw.breakers.get("vllm/status-500").state == "open"
        await asyncio.sleep(0.25)
        await gw.chat(chat("test/fallback-500"), None)  # the probe goes through, fails, reopens
    finally:
        await gw.close()
    assert upstream.calls["status-500"] == 2


async def test_upstream_400_does_not_count_against_the_breaker(upstream: FakeUpstream) -> None:
    gw = Gateway(gateway_settings(upstream.url, reliability={"breaker_failures": 1}))
    await gw.start()
    try:
        for _ in range(3):
            with pytest.raises(ProviderHTTPError):
                await gw.chat(chat("vllm/status-400"), None)
    finally:
        await gw.close()
    assert upstream.calls["status-400"] == 3
    assert gw.breakers.get("vllm/status-400").state == "closed"
