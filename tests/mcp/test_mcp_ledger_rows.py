"""Every tool call leaves one ledger row: server, tool, key, latency, outcome and its model calls' cost."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from mcp_support import Env, connect


async def rows(env: Env) -> list[dict[str, Any]]:
    await env.gateway.accounts.ledger.flush()
    found = await env.gateway.accounts.db.fetchall("SELECT * FROM sophia_usage ORDER BY ts, endpoint")
    for row in found:
        row["metadata"] = orjson.loads(row["metadata"]) if row["metadata"] else None
    return found


async def test_a_tool_call_is_booked_with_its_model_call(env: Env) -> None:
    async with connect(env, env.user) as client:
        await client.call_tool("generate", {"prompt": "hi", "model": "vllm/priced", "task_type": "code"})
    chat, tool = sorted(await rows(env), key=lambda r: r["endpoint"])
    key = await env.gateway.accounts.keys.get_by_secret(env.user)  # type: ignore[union-attr]
    assert key is not None
    assert tool["endpoint"] == "mcp:ai/generate" and chat["endpoint"] == "chat"
    assert tool["request_id"] == chat["request_id"]  # the two rows of one call share an id
    assert tool["key_id"] == chat["key_id"] == key.id and tool["team"] == "alpha"
    assert tool["outcome"] == "ok" and tool["status"] == 200 and tool["latency_ms"] > 0
    assert tool["requested_model"] == "vllm/priced" and tool["task_type"] == "code"
    assert tool["cost_usd"] == 0 and chat["cost_usd"] == pytest.approx(20 / 1e6)
    meta = tool["metadata"]
    assert meta["server"] == "ai" and meta["tool"] == "generate" and meta["models"] == "vllm/priced"
    assert meta["model_cost_usd"] == pytest.approx(20 / 1e6) and meta["model_calls"] == 1
    assert chat["metadata"] == {"mcp_tool": "ai/generate", "task_type": "code"}


@pytest.mark.parametrize(
    ("tool", "args", "error_class", "status"),
    [
        ("generate", {"prompt": 1}, "InvalidArguments", 400),
        ("generate", {"prompt": "x", "model": "nope/none"}, "PermissionDenied", 403),  # model not allowed
        ("usage_report", {}, "UnknownTool", 403),  # hidden from this key
        ("vanish", {}, "UnknownTool", 404),
    ],
)
async def test_failed_calls_are_booked_as_errors(
    env: Env, tool: str, args: dict[str, Any], error_class: str, status: int
) -> None:
    async with connect(env, env.limited) as client:
        result = await client.call_tool(tool, args)
    assert result.is_error
    (row,) = [r for r in await rows(env) if r["endpoint"].startswith("mcp:")]
    assert row["endpoint"] == f"mcp:ai/{tool}"
    assert (row["outcome"], row["error_class"], row["status"]) == ("error", error_class, status)


async def test_read_only_tools_are_booked_too(env: Env) -> None:
    async with connect(env, env.admin) as client:
        await client.call_tool("list_models", {})
        await client.call_tool("provider_health", {})
    async with connect(env, env.user) as client:
        await client.call_tool("provider_health", {})  # admin keys only: refused, and booked as such
    booked = [(r["endpoint"], r["cache"], r["outcome"], r["status"]) for r in await rows(env)]
    assert booked == [
        ("mcp:ai/list_models", "bypass", "ok", 200),
        ("mcp:ai/provider_health", "bypass", "ok", 200),
        ("mcp:ai/provider_health", "bypass", "error", 403),
    ]
