"""End to end: `sophia mcp serve ai` as a real process, driven by the SDK client, the MCP Inspector and mcp-remote."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp_support import sophia_cli, start_http_server, text

from fakes.process import free_port, write_config
from fakes.upstream import FakeUpstream
from mcp import Client, StdioServerParameters
from sophia.accounts.keys import KeyStore
from sophia.settings import load_settings

pytestmark = pytest.mark.slow

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
MCP_REMOTE = "mcp-remote@0.15.1"
NPX = shutil.which("npx")
needs_npx = pytest.mark.skipif(
    NPX is None, reason="npx (Node.js) is not installed: the npm clients cannot run"
)

#: the AI server's tools, in the order tools/list gives them
AI_TOOLS = [
    "generate", "embed", "list_models", "usage_report", "provider_health", "cache_stats", "cache_purge", "route_explain"
]  # fmt: skip


@dataclass
class Served:
    config: Path
    url: str
    key: str
    narrow: str


def config_for(home: Path, upstream_url: str | None) -> dict[str, Any]:
    providers: dict[str, Any] = {"local": {"enabled": False}}
    if upstream_url:
        providers["vllm"] = {"base_url": f"{upstream_url}/vllm/v1"}
    return {
        "home": str(home),
        "providers": providers,
        "aliases": {"sophia/fast": ["vllm/fast"], "sophia/smart": ["vllm/smart"]},
    }


def make_keys(config: Path) -> tuple[str, str]:
    async def go() -> tuple[str, str]:
        store = await KeyStore.open(load_settings(config).database_url)
        try:
            key, _ = await store.create(name="e2e", team="qa")
            narrow, _ = await store.create(name="narrow", allowed_tools=["ai/list_models"])
            return key, narrow
        finally:
            await store.close()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`sophia mcp serve ai --port N` for the whole module (its gateway has no upstream: no model calls)."""
    home = tmp_path_factory.mktemp("mcp-e2e")
    config = write_config(home / "sophia.yaml", config_for(home / "home", None))
    key, narrow = make_keys(config)
    port = free_port()
    proc = start_http_server("ai", config, port)
    url = f"http://127.0.0.1:{port}/mcp"
    yield Served(config, url, key, narrow)
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode in (0, -signal.SIGTERM)


# -- the SDK's own client ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_stdio_server_answers_the_sdk_client(tmp_path: Path, upstream: FakeUpstream, mode: str) -> None:
    config = write_config(tmp_path / "sophia.yaml", config_for(tmp_path / "home", upstream.url))
    key, _ = await asyncio.to_thread(make_keys, config)
    command, *args = sophia_cli("mcp", "serve", "ai", "--stdio", "--config", str(config))
    params = StdioServerParameters(command=command, args=args, env={**os.environ, "SOPHIA_API_KEY": key})
    async with Client(params, mode=mode) as client:
        era = client.protocol_version
        tools = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("generate", {"prompt": "via stdio", "priority": "cost"})
    assert era == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert tools == AI_TOOLS
    assert result.structured_content["answer"] == "echo: via stdio", text(result)
    assert result.structured_content["model"] == "vllm/fast"


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_http_server_answers_the_sdk_client(served: Served, mode: str) -> None:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {served.narrow}"}) as http,
        Client(streamable_http_client(served.url, http_client=http), mode=mode) as client,
    ):
        era = client.protocol_version
        tools = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("list_models", {})
    assert era == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert tools == ["list_models"]
    assert [a["id"] for a in result.structured_content["aliases"]] == []  # no model enabled here


# -- MCP Inspector CLI and mcp-remote (npm) -------------------------------------------------------------


def inspector(*args: str) -> subprocess.CompletedProcess[str]:
    assert NPX is not None
    cmd = [NPX, "-y", INSPECTOR, "--cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


@needs_npx
def test_inspector_lists_tools_with_a_bearer_header(served: Served) -> None:
    done = inspector(
        served.url,
        "--transport",
        "http",
        "--method",
        "tools/list",
        "--header",
        f"Authorization: Bearer {served.key}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert [t["name"] for t in json.loads(done.stdout)["tools"]] == AI_TOOLS


@needs_npx
@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_inspector_calls_a_tool(served: Served, era: str) -> None:
    done = inspector(
        served.url, "--transport", "http", "--protocol-era", era, "--method", "tools/call",
        "--tool-name", "list_models", "--tool-arg", "capability=embeddings",
        "--header", f"Authorization: Bearer {served.key}", "--format", "json", "-q",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)["result"]
    assert result["isError"] is False and result["structuredContent"] == {"models": [], "aliases": []}


@needs_npx
def test_inspector_strict_schema_lint_passes(served: Served) -> None:
    done = inspector(
        served.url, "--method", "tools/list", "--strict", "--header", f"Authorization: Bearer {served.key}"
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


@needs_npx
def test_inspector_exits_3_on_a_wrong_key(served: Served) -> None:
    done = inspector(
        served.url, "--method", "tools/list", "--header", "Authorization: Bearer wrong",
        "--stored-auth-only", "--format", "json", "-q",
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr[-2000:]
    assert "auth_required" in done.stdout + done.stderr


@needs_npx
async def test_mcp_remote_bridges_to_the_http_server(served: Served, tmp_path: Path) -> None:
    assert NPX is not None
    params = StdioServerParameters(
        command=NPX,
        args=["-y", MCP_REMOTE, served.url, "--header", f"Authorization:Bearer {served.key}"],
        env={**os.environ, "MCP_REMOTE_CONFIG_DIR": str(tmp_path / "mcp-remote")},
    )
    async with Client(params, mode="legacy", read_timeout_seconds=120) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        usage = await client.call_tool("usage_report", {})
    assert tools == AI_TOOLS
    assert not usage.is_error and usage.structured_content["scope"] == "team qa"


def test_stdio_refuses_port_options() -> None:
    done = subprocess.run(
        sophia_cli("mcp", "serve", "ai", "--stdio", "--port", "1"),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2 and "--stdio takes no --port" in done.stderr
    assert sys.executable  # the CLI ran through this interpreter
