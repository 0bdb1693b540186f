"""Every AI Intelligence tool, in memory, in both protocol eras: what it answers and how it refuses."""

from __future__ import annotations

import orjson
import pytest
from mcp_support import MODES, Env, connect, text

pytestmark = pytest.mark.parametrize("mode", MODES)


async def test_generate_answers_with_model_cost_cache_and_route(env: Env, mode: str) -> None:
    async with connect(env, env.user, mode) as client:
        result = await client.call_tool("generate", {"prompt": "hello", "priority": "quality"})
    assert not result.is_error, text(result)
    out = result.structured_content
    assert out["answer"] == "echo: hello"
    assert out["model"] == "vllm/priced" and out["requested"] == "sophia/smart"
    assert out["cost_usd"] == pytest.approx((10 * 1.0 + 5 * 2.0) / 1e6)
    assert out["cache"] == "miss"
    assert "priority=quality chose sophia/smart" in out["route"] and "vllm/priced=ok" in out["route"]
    assert text(result).startswith("echo: hello") and "vllm/priced" in text(result)


async def test_generate_takes_messages_model_and_task_type(env: Env, mode: str) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]
    args = {"messages": messages, "model": "test/fallback-500", "task_type": "chat", "max_tokens": 20}
    async with connect(env, env.user, mode) as client:
        result = await client.call_tool("generate", args)
    out = result.structured_content
    assert out["answer"] == "echo: hi there" and out["model"] == "ollama/ok"
    assert "vllm/status-500=" in out["route"]  # the fallback is explained
    sent = env.upstream.requests[-1].body
    assert sent["max_tokens"] == 20 and sent["messages"] == messages


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, "give exactly one of `prompt` or `messages`"),
        ({"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, "exactly one"),
        ({"prompt": 5}, "prompt: Input should be a valid string"),
        ({"prompt": "a", "priority": "fastest"}, "priority: Input should be"),
        ({"prompt": "a", "temperature": 9}, "temperature"),
        ({"prompt": "a", "nonsense": True}, "nonsense: unknown argument"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ],
)
async def test_generate_refuses_bad_arguments_with_a_tool_error(
    env: Env, mode: str, args: dict[str, object], expected: str
) -> None:
    async with connect(env, env.user, mode) as client:
        result = await client.call_tool("generate", args)
    assert result.is_error
    assert expected in text(result) and "input schema" in text(result)
    assert env.upstream.requests == []


async def test_generate_names_the_next_step_when_the_model_is_unknown(env: Env, mode: str) -> None:
    async with connect(env, env.user, mode) as client:
        result = await client.call_tool("generate", {"prompt": "x", "model": "nope/none"})
    assert result.is_error and "list_models" in text(result)


async def test_generate_reports_provider_failure_as_tool_error(env: Env, mode: str) -> None:
    async with connect(env, env.user, mode) as client:
        result = await client.call_tool("generate", {"prompt": "x", "model": "vllm/status-503"})
    assert result.is_error and "list_models shows each model's health" in text(result)


async def test_embed_returns_vectors(env: Env, mode: str) -> None:
    args = {"input": ["one", "two"], "model": "openai/text-embedding-3-small"}
    async with connect(env, env.user, mode) as client:
        result = await client.call_tool("embed", args)
        bad = await client.call_tool("embed", {"input": []})
    assert not result.is_error, text(result)
    out = result.structured_content
    assert out["model"] == "openai/text-embedding-3-small" and out["dimensions"] == 3
    assert out["embeddings"] == [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]]
    assert bad.is_error and "input" in text(bad)


async def test_list_models_shows_prices_context_health_and_aliases(env: Env, mode: str) -> None:
    async with connect(env, env.user, mode) as client:
        await client.call_tool("generate", {"prompt": "warm", "model": "vllm/priced"})
        result = await client.call_tool("list_models", {"provider": "vllm"})
        embeddings = await client.call_tool("list_models", {"capability": "embeddings"})
        bad = await client.call_tool("list_models", {"capability": "video"})
    models = {m["id"]: m for m in result.structured_content["models"]}
    priced = models["vllm/priced"]
    assert (priced["input_usd_per_mtok"], priced["output_usd_per_mtok"], priced["context_window"]) == (
        1,
        2,
        8192,
    )
    assert priced["health"] == "closed" and priced["error_rate"] == 0
    aliases = {a["id"]: a["chain"] for a in result.structured_content["aliases"]}
    assert aliases["sophia/smart"] == ["vllm/priced", "ollama/ok"]
    assert all("embeddings" in m["capabilities"] for m in embeddings.structured_content["models"])
    assert embeddings.structured_content["aliases"] == []
    assert bad.is_error and "capability" in text(bad)


async def test_usage_report_groups_spend(env: Env, mode: str) -> None:
    async with connect(env, env.admin, mode) as client:
        await client.call_tool("generate", {"prompt": "a", "model": "vllm/priced"})
        result = await client.call_tool("usage_report", {"since": "1h", "group_by": ["endpoint", "team"]})
        bad = await client.call_tool("usage_report", {"since": "last tuesday"})
        bad_group = await client.call_tool("usage_report", {"group_by": ["colour"]})
    out = result.structured_content
    assert out["scope"] == "all teams"
    rows = {r["endpoint"]: r for r in out["rows"]}
    assert rows["chat"]["cost_usd"] == pytest.approx(20 / 1e6)
    assert rows["mcp:ai/generate"]["cost_usd"] == 0  # booked once, on the model call's row
    assert out["total_cost_usd"] == pytest.approx(20 / 1e6)
    assert bad.is_error and "cannot read the time" in text(bad)
    assert bad_group.is_error and "group_by" in text(bad_group)


async def test_provider_health_lists_breakers(env: Env, mode: str) -> None:
    async with connect(env, env.admin, mode) as client:
        await client.call_tool("generate", {"prompt": "a", "model": "vllm/status-503"})
        result = await client.call_tool("provider_health", {})
        bad = await client.call_tool("provider_health", {"verbose": True})
    out = result.structured_content
    assert "vllm" in out["providers"]
    failing = next(m for m in out["models"] if m["id"] == "vllm/status-503")
    assert failing["errors"] >= 1 and failing["error_rate"] > 0
    assert bad.is_error and "verbose: unknown argument" in text(bad)


async def test_provider_health_is_for_admin_keys_as_on_the_admin_api(env: Env, mode: str) -> None:
    async with connect(env, env.user, mode) as client:
        await client.call_tool("generate", {"prompt": "a", "model": "vllm/priced"})
        await client.call_tool("generate", {"prompt": "a", "model": "vllm/status-503"})
        refused = await client.call_tool("provider_health", {})
        models = await client.call_tool("list_models", {"provider": "vllm"})
    assert refused.is_error and refused.structured_content is None
    assert "reading provider health needs an admin key" in text(refused)
    assert "vllm/status-503" not in text(refused) and "vllm/priced" not in text(refused)
    # what a non-admin key may know of health: its own models', through list_models
    assert not models.is_error
    listed = {m["id"]: m for m in models.structured_content["models"]}
    assert listed["vllm/priced"]["health"]
    assert "vllm/status-503" not in listed  # a name a caller made up is not one of the models


async def test_resources_serve_prices_and_routing_policy(env: Env, mode: str) -> None:
    async with connect(env, env.user, mode) as client:
        listed = await client.list_resources()
        prices = await client.read_resource("sophia://ai/prices")
        policy = await client.read_resource("sophia://ai/routing-policy")
    assert {r.uri for r in listed.resources} == {"sophia://ai/prices", "sophia://ai/routing-policy"}
    rows = {r["id"]: r for r in orjson.loads(getattr(prices.contents[0], "text", ""))}
    assert rows["vllm/priced"]["output_usd_per_mtok"] == 2.0
    aliases = orjson.loads(getattr(policy.contents[0], "text", ""))["aliases"]
    assert aliases["test/fallback-500"]["chain"] == ["vllm/status-500", "ollama/ok"]


async def test_generate_lets_the_router_choose_for_a_quality_target(env: Env, mode: str) -> None:
    async with connect(env, env.user, mode) as client:
        result = await client.call_tool("generate", {"prompt": "route me", "quality_target": 0.8})
        balanced = await client.call_tool("generate", {"prompt": "route me too"})
    assert not result.is_error, text(result)
    out = result.structured_content
    assert out["requested"] == "sophia/auto" and out["answer"] == "echo: route me"
    assert out["route"].startswith("quality_target=0.8 asked the router; tried [")  # the router's reason
    assert balanced.structured_content["requested"] == "sophia/auto"


async def test_route_explain_names_the_pick_without_calling_a_model(env: Env, mode: str) -> None:
    async with connect(env, env.user, mode) as client:
        result = await client.call_tool(
            "route_explain",
            {"prompt": "Write a python function that reverses a string.", "task_type": "mbpp"},
        )
        bad = await client.call_tool("route_explain", {"prompt": ""})
    assert not result.is_error, text(result)
    out = result.structured_content
    assert out["model"]
    assert out["why"]
    assert out["model"] not in out["fallbacks"]
    assert bad.is_error
