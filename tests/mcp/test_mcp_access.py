"""Keys decide what a caller sees and may do: hidden tools and resources, refused keys, model limits, report scope."""

from __future__ import annotations

import orjson
import pytest
from mcp.shared.exceptions import MCPError
from mcp_support import MODES, Env, connect, text

pytestmark = pytest.mark.parametrize("mode", MODES)


async def test_a_hidden_tool_is_absent_from_the_list_and_refused(env: Env, mode: str) -> None:
    async with connect(env, env.limited, mode) as client:
        listed = [t.name for t in (await client.list_tools()).tools]
        hidden = await client.call_tool("usage_report", {})
        unknown = await client.call_tool("no_such_tool", {})
    assert listed == ["generate", "list_models"]
    assert hidden.is_error and unknown.is_error
    # A hidden tool is refused exactly like one that does not exist: nothing leaks its existence.
    assert text(hidden).replace("usage_report", "X") == text(unknown).replace("no_such_tool", "X")


async def test_a_key_limited_to_some_models_cannot_reach_others(env: Env, mode: str) -> None:
    async with connect(env, env.limited, mode) as client:
        refused = await client.call_tool("generate", {"prompt": "x", "priority": "quality"})
        allowed = await client.call_tool("generate", {"prompt": "x", "priority": "cost"})
        models = await client.call_tool("list_models", {})
    assert refused.is_error and "may not use the model 'sophia/smart'" in text(refused)
    assert not allowed.is_error
    assert [a["id"] for a in models.structured_content["aliases"]] == ["sophia/fast"]
    assert models.structured_content["models"] == []


async def test_an_unknown_key_cannot_list_or_call(env: Env, mode: str) -> None:
    async with connect(env, "sk-sophia-not-a-real-key", mode) as client:
        with pytest.raises(MCPError, match="unknown or has been revoked"):
            await client.list_tools()
        result = await client.call_tool("list_models", {})
    assert result.is_error and "Check the Sophia API key" in text(result)


async def test_a_revoked_key_is_refused(env: Env, mode: str) -> None:
    record = await env.gateway.accounts.keys.get_by_secret(env.user)
    assert record is not None
    await env.gateway.accounts.keys.revoke(record.id)
    env.gateway.accounts.key_cache.clear()
    async with connect(env, env.user, mode) as client:
        result = await client.call_tool("list_models", {})
    assert result.is_error and "revoked" in text(result)


async def test_without_a_key_tools_are_listed_and_calls_say_how_to_set_one(env: Env, mode: str) -> None:
    async with connect(env, None, mode) as client:
        listed = await client.list_tools()
        result = await client.call_tool("list_models", {})
    assert len(listed.tools) == 8
    assert result.is_error and "SOPHIA_API_KEY" in text(result)


async def test_usage_report_of_a_non_admin_key_covers_its_team_only(env: Env, mode: str) -> None:
    async with connect(env, env.admin, mode) as admin:
        await admin.call_tool("generate", {"prompt": "a", "model": "vllm/priced"})
    async with connect(env, env.user, mode) as user:
        await user.call_tool("generate", {"prompt": "b", "model": "vllm/priced"})
        mine = await user.call_tool("usage_report", {"since": "1h", "group_by": ["endpoint"]})
    out = mine.structured_content
    assert out["scope"] == "team alpha"
    assert all("team" not in row for row in out["rows"])
    chat = next(r for r in out["rows"] if r["endpoint"] == "chat")
    assert chat["requests"] == 1  # the admin's call (team ops) is not counted


# -- resources follow the tool filter ----------------------------------------------------------------

PRICES, POLICY = "sophia://ai/prices", "sophia://ai/routing-policy"


async def key_for(env: Env, tools: list[str], models: list[str] | None = None) -> str:
    secret, _ = await env.gateway.accounts.keys.create(
        name="filtered", team="beta", allowed_tools=tools, allowed_models=models
    )
    return secret


async def test_a_key_filtered_to_other_tools_sees_no_resource(env: Env, mode: str) -> None:
    # The probe: a key allowed only ai/embed read the prices and the routing policy.
    async with connect(env, await key_for(env, ["ai/embed"]), mode) as client:
        listed = (await client.list_resources()).resources
        with pytest.raises(MCPError) as hidden:
            await client.read_resource(PRICES)
        with pytest.raises(MCPError) as missing:
            await client.read_resource("sophia://ai/nothing")
    assert listed == []
    # refused exactly like a resource that does not exist, and the error lists no hidden one
    assert hidden.value.error.code == missing.value.error.code
    assert str(hidden.value).replace(PRICES, "X") == str(missing.value).replace("sophia://ai/nothing", "X")
    assert "known: none" in str(hidden.value)


async def test_a_resource_is_there_for_a_key_that_may_call_one_of_its_tools(env: Env, mode: str) -> None:
    async with connect(env, await key_for(env, ["ai/route_explain"]), mode) as client:
        listed = [r.uri for r in (await client.list_resources()).resources]
        policy = await client.read_resource(POLICY)
        with pytest.raises(MCPError, match=f"known: {POLICY}$"):
            await client.read_resource(PRICES)
    assert listed == [POLICY]
    assert "sophia/fast" in orjson.loads(getattr(policy.contents[0], "text", ""))["aliases"]


async def test_resources_show_only_the_models_the_key_may_use(env: Env, mode: str) -> None:
    async with connect(env, env.limited, mode) as client:  # ai/list_models, ai/gen*; model sophia/fast
        listed = {r.uri for r in (await client.list_resources()).resources}
        prices = orjson.loads(getattr((await client.read_resource(PRICES)).contents[0], "text", ""))
        policy = orjson.loads(getattr((await client.read_resource(POLICY)).contents[0], "text", ""))
        models = (await client.call_tool("list_models", {})).structured_content
    assert listed == {PRICES, POLICY}
    assert prices == models["models"] == []  # the same models list_models shows this key
    assert list(policy["aliases"]) == [a["id"] for a in models["aliases"]] == ["sophia/fast"]


async def test_an_unknown_key_cannot_list_or_read_resources(env: Env, mode: str) -> None:
    async with connect(env, "sk-sophia-not-a-real-key", mode) as client:
        with pytest.raises(MCPError, match="unknown or has been revoked"):
            await client.list_resources()
        with pytest.raises(MCPError, match="unknown or has been revoked"):
            await client.read_resource(PRICES)
