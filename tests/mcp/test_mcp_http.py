"""Streamable HTTP on a real loopback port: Host/Origin checks, bearer keys, metadata, both protocol eras."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp_support import Env, text

from fakes.process import free_port
from mcp import Client
from sophia.mcp.http import http_server

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.fixture
async def base(env: Env) -> AsyncIterator[str]:
    """The MCP server on a free port, in this event loop, sharing the test's gateway."""
    port = free_port()
    server = http_server(env.settings, "ai", port=port, services=env.services)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the MCP HTTP server did not start"
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_a_missing_or_wrong_key_gets_401_with_the_metadata_link(base: str) -> None:
    async with httpx.AsyncClient() as http:
        missing = await http.post(f"{base}/mcp", json=INIT, headers=ACCEPT)
        wrong = await http.post(
            f"{base}/mcp", json=INIT, headers={**ACCEPT, "Authorization": "Bearer sk-sophia-x"}
        )
        metadata_url = missing.headers["www-authenticate"].split('resource_metadata="')[1].rstrip('"')
        metadata = await http.get(metadata_url)
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert metadata_url == f"{base}/.well-known/oauth-protected-resource/mcp"
    assert metadata.status_code == 200
    assert metadata.json()["resource"] == f"{base}/mcp"
    assert metadata.json()["bearer_methods_supported"] == ["header"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example:8091"}, 421),
        ({"Host": "127.0.0.1.evil.example"}, 421),
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
    ],
)
async def test_foreign_host_or_origin_is_refused_before_auth(
    env: Env, base: str, headers: dict[str, str], status: int
) -> None:
    auth = {"Authorization": f"Bearer {env.user}"}
    async with httpx.AsyncClient() as http:
        refused = await http.post(f"{base}/mcp", json=INIT, headers={**ACCEPT, **auth, **headers})
        unauthenticated = await http.post(f"{base}/mcp", json=INIT, headers={**ACCEPT, **headers})
        local = await http.post(
            f"{base}/mcp", json=INIT, headers={**ACCEPT, **auth, "Origin": "http://localhost:3000"}
        )
    assert refused.status_code == unauthenticated.status_code == status
    assert local.status_code == 200


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28", "auto"])
async def test_the_sdk_client_lists_and_calls_in_both_eras(env: Env, base: str, mode: str) -> None:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {env.limited}"}) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client,
    ):
        era = client.protocol_version
        tools = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("generate", {"prompt": "over http", "priority": "cost"})
        hidden = await client.call_tool("usage_report", {})
    assert era == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert tools == ["generate", "list_models"]
    assert result.structured_content["answer"] == "echo: over http"
    assert hidden.is_error and "Unknown tool" in text(hidden)


async def test_a_session_belongs_to_the_key_that_opened_it(env: Env, base: str) -> None:
    async with httpx.AsyncClient() as http:
        opened = await http.post(
            f"{base}/mcp", json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {env.user}"}
        )
        session = opened.headers["mcp-session-id"]
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        other = await http.post(
            f"{base}/mcp",
            json=listing,
            headers={**ACCEPT, "Authorization": f"Bearer {env.admin}", "Mcp-Session-Id": session},
        )
    assert opened.status_code == 200
    assert other.status_code == 404  # as if the session did not exist


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_cancelled_call_stops_its_model_call_within_a_second(env: Env, base: str, mode: str) -> None:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {env.user}"}) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client,
    ):
        call = asyncio.create_task(client.call_tool("generate", {"prompt": "x", "model": "vllm/slow-30"}))
        while not env.upstream.requests:
            await asyncio.sleep(0.01)
        cancelled_at = asyncio.get_running_loop().time()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        while env.upstream.cancelled == 0 and asyncio.get_running_loop().time() - cancelled_at < 1.0:
            await asyncio.sleep(0.01)
        assert env.upstream.cancelled == 1, "the model call went on after the client cancelled"
