"""Tool definitions follow the rules every Sophia MCP server shares, and registering breaks loudly otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from mcp_support import Env, connect
from pydantic import Field

from sophia.accounts.ledger import GROUPS, GroupBy
from sophia.errors import ConfigError
from sophia.mcp.context import ToolContext
from sophia.mcp.registry import ToolRegistry, get_registry
from sophia.mcp.tools import Confirmable, Input, Output, ToolGroup, ToolSet, compact_schema

#: the issue's budget for one server's tools/list
LIST_BUDGET_TOKENS = 3_000


def count_tokens(text: str) -> int:
    """Tokens of ``text`` for a real BPE tokenizer: the bundled SmolLM2's (a GPT-style BPE, its vocabulary
    only, read from the GGUF file), which counts about 3.5 characters per token of this JSON."""
    import llama_cpp

    from sophia.providers.adapters._llama import chat_model_path
    from sophia.settings import LocalSettings

    vocab = llama_cpp.Llama(model_path=str(chat_model_path(LocalSettings())), vocab_only=True, verbose=False)
    return len(vocab.tokenize(text.encode(), add_bos=False))


def walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


@pytest.mark.parametrize("server", get_registry().names())
async def test_every_tool_is_fully_described_and_the_list_is_small(env: Env, server: str) -> None:
    async with connect(env, env.admin, group=get_registry().get(server)) as client:
        tools = (await client.list_tools()).tools
    wire = json.dumps(
        [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools], separators=(",", ":")
    )
    tokens = count_tokens(wire)
    assert tokens < LIST_BUDGET_TOKENS, f"tools/list of {server} is {tokens} tokens ({len(wire)} characters)"
    for tool in tools:
        assert tool.title and tool.description and len(tool.description) < 400
        assert tool.input_schema["type"] == "object" and tool.output_schema is not None
        assert tool.output_schema["type"] == "object"
        a = tool.annotations
        assert a is not None
        hints = (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)
        assert all(isinstance(h, bool) for h in hints), tool.name
        assert not (a.read_only_hint and a.destructive_hint)
        for node in walk([tool.input_schema, tool.output_schema]):
            assert "$ref" not in node and "$defs" not in node
            assert {"type": "null"} not in node.get("anyOf", [])


def test_report_groups_match_the_ledger() -> None:
    assert set(get_args(GroupBy)) == set(GROUPS)


class In(Input):
    x: int = Field(description="A number.")


class Out(Output):
    y: int


async def double(ctx: ToolContext, args: In) -> Out:
    """Double it."""
    return Out(y=2 * args.x)


def test_registration_checks_the_rules() -> None:
    group = ToolGroup("t", port=0, title="T")
    flags: dict[str, Any] = {"read_only": True, "destructive": False, "idempotent": True, "open_world": False}
    group.add(double, title="Double", **flags)
    with pytest.raises(ValueError, match="twice"):
        group.add(double, title="Double", **flags)
    with pytest.raises(TypeError, match="missing"):
        group.tool(title="No annotations")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="read-only tool cannot be destructive"):
        group.add(
            double, title="x", name="bad", read_only=True, destructive=True, idempotent=True, open_world=False
        )
    with pytest.raises(TypeError, match="Confirmable"):
        group.add(
            double,
            title="x",
            name="wipe",
            read_only=False,
            destructive=True,
            idempotent=True,
            open_world=False,
        )
    with pytest.raises(ValueError, match="lower-case"):
        group.add(double, title="x", name="Bad-Name", **flags)

    async def undocumented(ctx: ToolContext, args: Confirmable) -> Out:
        return Out(y=0)

    with pytest.raises(ValueError, match="docstring"):
        group.add(undocumented, title="x", **flags)


async def _read(ctx: ToolContext) -> str:
    return "{}"


def test_a_resource_names_the_tools_it_belongs_to() -> None:
    """The key filter covers resources through the tools they belong to, so every resource names some."""
    parts = ToolSet()
    with pytest.raises(ValueError, match="name the tools it belongs to"):
        parts.resource("sophia://t/x", name="x", title="X", description="x", tools=[])
    with pytest.raises(ValueError, match="name the tools it belongs to"):
        parts.resource("sophia://t/x", name="x", title="X", description="x", tools="double")
    parts.resource("sophia://t/y", name="y", title="Y", description="y", tools=["nope"])(_read)
    with pytest.raises(ValueError, match="belongs to unknown tool"):
        ToolGroup("t", port=0, title="T", sets=[parts])
    for resource in get_registry().get("ai").resources.values():
        assert resource.tools and set(resource.tools) <= set(get_registry().get("ai").tools)


def test_schemas_are_compact() -> None:
    class Nested(Input):
        inner: In
        maybe: str | None = None

    schema = compact_schema(Nested.model_json_schema())
    assert schema["properties"]["inner"]["properties"]["x"] == {"description": "A number.", "type": "integer"}
    assert schema["properties"]["maybe"] == {"type": "string"}
    assert "title" not in json.dumps(schema)


def test_the_registry_is_filled_through_the_plugin_hook() -> None:
    registry = get_registry()
    assert "ai" in registry.names() and registry.get("ai").port == 8091
    fresh = ToolRegistry()
    fresh.add("sophia.mcp.ai:group", name="ai")
    with pytest.raises(ConfigError, match="twice"):
        fresh.add("sophia.mcp.ai:group", name="ai")
    with pytest.raises(ConfigError, match="no MCP server 'bi'"):
        fresh.get("bi")
    fresh.add("sophia.mcp.ai:group", name="wrong")
    with pytest.raises(ConfigError, match="is not the MCP tool group"):
        fresh.get("wrong")


def test_serving_a_group_imports_nothing_heavy(tmp_path: Path) -> None:
    """A stdio server that lists its tools and answers a tool that needs no model (usage_report) checks
    the key and books the call through the accounts alone: no gateway engine, numpy, cache, router or
    provider adapter is imported (the service keys and the plugins' registration modules are)."""
    code = (
        "import asyncio, sys\n"
        "from mcp import Client\n"
        "from sophia.container import Services\n"
        "from sophia.mcp.registry import get_registry\n"
        "from sophia.mcp.server import build_server\n"
        "from sophia.settings import load_settings\n"
        "async def main():\n"
        "    services = Services(load_settings())\n"
        "    accounts = await services.open()\n"
        "    secret, _ = await accounts.keys.create(name='ide', team='t')\n"
        "    server = build_server(get_registry().get('ai'), services, secret=secret)\n"
        "    async with Client(server, mode='legacy') as client:\n"
        "        assert len((await client.list_tools()).tools) == 8\n"
        "        done = await client.call_tool('usage_report', {'since': '1h'})\n"
        "        assert not done.is_error, done\n"
        "    await accounts.ledger.flush()\n"
        "    rows = await accounts.ledger.report(0, None, ['endpoint'])\n"
        "    assert [r['endpoint'] for r in rows] == ['mcp:ai/usage_report'], rows\n"
        "    await services.close()\n"
        "asyncio.run(main())\n"
        "heavy = ('numpy', 'tokenizers', 'llama_cpp', 'safetensors', 'onnxruntime', 'sophia.cache.cache',"
        " 'sophia.cache.store_', 'sophia.router', 'sophia.gateway.engine', 'sophia.gateway.app', 'sophia.providers.catalog',"
        " 'sophia.providers.adapters', 'sophia.embedder.', 'sophia.httpclient', 'asyncpg', 'redis')\n"
        "print([m for m in sys.modules if m.startswith(heavy)])\n"
    )
    env = {**os.environ, "SOPHIA_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
