"""A tool call is a trace: the tool's span is the parent of the gateway calls it makes."""

from __future__ import annotations

from mcp_support import Env, connect

from sophia.observe.service import TRACER


async def test_a_tool_call_and_its_model_call_share_one_trace(env: Env) -> None:
    async with connect(env, env.user) as client:
        result = await client.call_tool("generate", {"prompt": "hi", "model": "vllm/priced"})
        assert not result.is_error
    tracer = await env.services.get(TRACER)
    assert tracer is not None and env.gateway.tracer is tracer  # one tracer per process, lent to the gateway
    await env.gateway.accounts.ledger.flush()
    assert await tracer.flush()
    rows = await env.gateway.accounts.db.fetchall("SELECT endpoint, trace_id, cost_nanos FROM sophia_usage")
    by_endpoint = {row["endpoint"]: row for row in rows}
    assert by_endpoint["chat"]["trace_id"] == by_endpoint["mcp:ai/generate"]["trace_id"]
    assert tracer.store is not None
    spans = await tracer.store.trace(by_endpoint["chat"]["trace_id"])
    (tool,) = [s for s in spans if s.name == "execute_tool generate"]
    (call,) = [s for s in spans if s.name == "chat vllm/priced" and s.kind == "server"]
    assert tool.parent_id is None and call.parent_id == tool.span_id
    assert tool.attributes["openinference.span.kind"] == "TOOL" and tool.attributes["tool.name"] == "generate"
    assert (
        tool.attributes["gen_ai.operation.name"] == "execute_tool"
        and tool.attributes["sophia.mcp.server"] == "ai"
    )
    assert call.attributes["sophia.cost.nanodollars"] == by_endpoint["chat"]["cost_nanos"] > 0
