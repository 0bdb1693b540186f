"""Streamable HTTP on a real loopback port: Host/Origin checks, bearer keys, metadata, both protocol eras;
the OAuth discovery documents in process (httpx.ASGITransport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata
from mcp_support import Env, text

from fakes.process import free_port
from mcp import Client
from sophia.mcp.http import build_http_app, http_server

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


# -- discovery: what an OAuth-minded client (the MCP Inspector, the SDKs) fetches after a 401 ----------

ORIGIN = "http://127.0.0.1:8091"


@pytest.fixture
async def asgi(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    """The MCP HTTP app in process (no lifespan: these requests never reach the session manager)."""
    app = build_http_app(env.settings, "ai", services=env.services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as http:
        yield http


async def test_the_protected_resource_metadata_names_an_authorization_server(asgi: httpx.AsyncClient) -> None:
    # The probe: the document lacked `authorization_servers`, which RFC 9728 clients and the MCP spec need.
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        got = await asgi.get(path)
        assert got.status_code == 200
        metadata = ProtectedResourceMetadata.model_validate_json(got.content)  # the SDK's own model
        assert [str(s).rstrip("/") for s in metadata.authorization_servers] == [ORIGIN]
        assert got.json()["authorization_servers"] == [ORIGIN] and got.json()["resource"] == f"{ORIGIN}/mcp"


async def test_the_authorization_server_metadata_offers_no_oauth_flow(asgi: httpx.AsyncClient) -> None:
    got = await asgi.get("/.well-known/oauth-authorization-server")
    assert got.status_code == 200
    doc = got.json()
    OAuthMetadata.model_validate(doc)  # parses as RFC 8414 metadata for the SDK clients
    assert doc["issuer"] == ORIGIN  # RFC 8414 §3.3: the issuer the resource metadata named
    assert doc["response_types_supported"] == doc["grant_types_supported"] == []
    refusals = {
        "authorization_endpoint": "unsupported_response_type",
        "token_endpoint": "unsupported_grant_type",
        "registration_endpoint": "invalid_client_metadata",
    }
    for field, error in refusals.items():
        assert doc[field].startswith(f"{ORIGIN}/oauth/")
        answer = await asgi.post(doc[field].removeprefix(ORIGIN), json={"redirect_uris": ["http://x/cb"]})
        assert answer.status_code == 400 and answer.json()["error"] == error
        assert "API key was missing or refused" in answer.json()["error_description"]
    assert (await asgi.post("/.well-known/oauth-authorization-server")).status_code == 405


async def test_an_oauth_client_given_a_wrong_key_is_told_the_key_was_refused(env: Env) -> None:
    """The SDK's OAuth client follows discovery after the 401 and ends at registration, as the Inspector
    does: what it reports is that the key was refused (before: `Registration failed: 404 Not found`)."""
    import httpx2
    from mcp.client.auth import OAuthClientProvider, OAuthRegistrationError
    from mcp.shared.auth import OAuthClientMetadata

    class Memory:
        async def get_tokens(self) -> None:
            return None

        async def set_tokens(self, tokens: object) -> None: ...

        async def get_client_info(self) -> None:
            return None

        async def set_client_info(self, info: object) -> None: ...

    app = build_http_app(env.settings, "ai", services=env.services)
    oauth = OAuthClientProvider(
        f"{ORIGIN}/mcp",
        OAuthClientMetadata(redirect_uris=["http://127.0.0.1:9/callback"]),
        Memory(),
    )
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), auth=oauth) as http:
        with pytest.raises(OAuthRegistrationError) as failed:
            await http.post(
                f"{ORIGIN}/mcp", json=INIT, headers={**ACCEPT, "Authorization": "Bearer sk-sophia-wrong"}
            )
    assert "400" in str(failed.value) and "API key was missing or refused" in str(failed.value)


async def test_an_mcp_body_over_the_limit_is_refused_and_a_normal_one_served(env: Env, base: str) -> None:
    """The SDK reads a POST body whole: the server bounds it first (after the key), as the gateway does."""
    limit = env.settings.gateway.max_body_bytes
    auth = {**ACCEPT, "Authorization": f"Bearer {env.user}"}
    async with httpx.AsyncClient(timeout=30) as http:
        big = await http.post(f"{base}/mcp", content=b"{" + b" " * limit + b"}", headers=auth)
        stranger = await http.post(f"{base}/mcp", content=b"{" + b" " * limit + b"}", headers=ACCEPT)
        fine = await http.post(f"{base}/mcp", json=INIT, headers=auth)
    assert big.status_code == 413 and "limit" in big.text
    assert stranger.status_code == 401  # the key first: a stranger's body is never read
    assert fine.status_code == 200
