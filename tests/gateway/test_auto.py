"""`sophia/auto`: the static ranking, the learned pick, request options and explanations."""

from __future__ import annotations

import httpx
import pytest

from fakes.helpers import chat, gateway_settings
from fakes.upstream import FakeUpstream
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway

CODE_TASK = (
    "Write a python function to find the first repeated character in a given string. "
    "Your code should pass these tests: assert first_repeated_char('abcabc') == 'a'"
)


async def post(gw: Gateway, body: dict[str, object]) -> httpx.Response:
    secret, _ = await gw.accounts.keys.create(name="auto")
    transport = httpx.ASGITransport(app=GatewayApp(gw))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}
        )


@pytest.fixture
async def gw(upstream: FakeUpstream) -> Gateway:
    gateway = Gateway(gateway_settings(upstream.url))
    await gateway.start()
    yield gateway  # type: ignore[misc]
    await gateway.close()


async def test_learned_pick_is_explained_and_served(gw: Gateway, upstream: FakeUpstream) -> None:
    resp = await post(gw, chat("sophia/auto", CODE_TASK))
    assert resp.status_code == 200, resp.text
    route = resp.headers["x-sophia-route"]
    assert route.startswith("[learned ")
    assert "task=mbpp" in route
    # on coding tasks the GPT-3.5-class model matches the GPT-4-class one: the cheaper one is picked
    assert resp.headers["x-sophia-model"] == "openai/gpt-4.1-mini"
    assert upstream.requests[-1].body["model"] == "gpt-4.1-mini"


async def test_a_full_quality_target_asks_for_the_strongest(gw: Gateway) -> None:
    body = chat("sophia/auto", CODE_TASK, metadata={"quality_target": "1.0"})
    resp = await post(gw, body)
    assert resp.status_code == 200
    assert resp.headers["x-sophia-model"] == "openai/gpt-4.1"


async def test_max_price_keeps_the_cheapest_candidate_and_falls_back(gw: Gateway) -> None:
    body = chat("sophia/auto", CODE_TASK, metadata={"quality_target": "1.0", "max_price": "0.000001"})
    resp = await post(gw, body)
    assert resp.status_code == 200
    route = resp.headers["x-sophia-route"]
    # the cheapest mapped model is Mixtral on Together, which is down in these settings: the
    # chain falls back to the next ones in the static (cheapest-first) order
    assert "chose together/mistralai/Mixtral-8x7B-Instruct-v0.1" in route
    assert "max_price below every candidate: cheapest kept" in route
    assert "together/mistralai/Mixtral-8x7B-Instruct-v0.1=provider_unavailable" in route
    assert resp.headers["x-sophia-model"].startswith("openai/")


async def test_bad_routing_options_are_400(gw: Gateway) -> None:
    resp = await post(gw, chat("sophia/auto", "hi", metadata={"max_price": "cheap"}))
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "metadata.max_price"


async def test_an_open_breaker_takes_the_pick_out(gw: Gateway) -> None:
    breaker = gw.breakers.get("openai/gpt-4.1-mini")
    for _ in range(gw.settings.reliability.breaker_failures):
        breaker.failure("test")
    resp = await post(gw, chat("sophia/auto", CODE_TASK))
    assert resp.status_code == 200
    assert resp.headers["x-sophia-model"] != "openai/gpt-4.1-mini"
    assert "gpt-4.1-mini" not in resp.headers["x-sophia-route"]  # not even a candidate


async def test_without_mapped_models_the_static_policy_decides(upstream: FakeUpstream) -> None:
    settings = gateway_settings(upstream.url, router={"model_map": {}})
    gateway = Gateway(settings)
    await gateway.start()
    try:
        resp = await post(gateway, chat("sophia/auto", "hello"))
    finally:
        await gateway.close()
    assert resp.status_code == 200
    assert resp.headers["x-sophia-route"].startswith("[static cheapest")
    assert resp.headers["x-sophia-model"] == "openai/gpt-5-nano"  # the cheapest enabled chat model


async def test_tools_exclude_models_without_them(upstream: FakeUpstream) -> None:
    settings = gateway_settings(upstream.url, router={"model_map": {}})
    gateway = Gateway(settings)
    await gateway.start()
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    try:
        resp = await post(gateway, chat("sophia/auto", "use the tool", tools=tools))
    finally:
        await gateway.close()
    assert resp.status_code == 200
    assert resp.headers["x-sophia-model"] != "vllm/priced"  # no tools capability declared
    assert "vllm/priced excluded (no tools)" in resp.headers["x-sophia-route"]


async def test_an_alias_can_order_its_chain_cheapest_first(upstream: FakeUpstream) -> None:
    aliases = {"team/cheap-first": {"chain": ["openai/gpt-4.1", "openai/gpt-4.1-nano"], "policy": "cheapest"}}
    gateway = Gateway(gateway_settings(upstream.url, aliases=aliases))
    await gateway.start()
    try:
        result = await gateway.chat(chat("team/cheap-first"), None)
    finally:
        await gateway.close()
    assert result.model.id == "openai/gpt-4.1-nano"


async def test_team_defaults_apply_to_auto(upstream: FakeUpstream) -> None:
    gateway = Gateway(gateway_settings(upstream.url, router={"teams": {"research": {"quality_target": 1.0}}}))
    await gateway.start()
    try:
        _, key = await gateway.accounts.keys.create(name="r", team="research")
        result = await gateway.chat(chat("sophia/auto", CODE_TASK), key)
    finally:
        await gateway.close()
    assert result.model.id == "openai/gpt-4.1"  # the team asks for full quality
    assert "target=1" in result.route
