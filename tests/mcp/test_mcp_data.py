"""The Data Intelligence server (8092) through an in-memory MCP client, against a real local web server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp_support import MODES, text
from pytest_httpserver import HTTPServer

from mcp import Client
from sophia.accounts import Accounts
from sophia.container import Services
from sophia.mcp.registry import get_registry
from sophia.mcp.server import build_server
from sophia.settings import load_settings

HTML = """<html><head><title>Yardi opens an AI leasing marketplace</title>
<meta name="author" content="Sam Rivera"></head><body><article><h1>Yardi opens an AI leasing marketplace</h1>
<p>Yardi said on Tuesday that third-party AI leasing assistants can now list in its marketplace,
with guest cards written straight into Voyager. Early partners reported faster responses to renters.</p>
<p>Analysts expect mid-size operators with large portfolios to adopt first.</p></article></body></html>"""


@dataclass
class Data:
    services: Services
    key: str
    server: HTTPServer


@pytest.fixture
async def data(tmp_path: Path, httpserver: HTTPServer) -> AsyncIterator[Data]:
    settings = load_settings(
        home=str(tmp_path / "home"),
        collect={"allow": [f"localhost:{httpserver.port}", f"127.0.0.1:{httpserver.port}"]},
        cache={"enabled": False},
    )
    services = Services(settings)
    accounts: Accounts = await services.open()
    key, _ = await accounts.keys.create(name="analyst", team="research")
    yield Data(services, key, httpserver)
    await services.close()


async def call(data: Data, tool: str, args: dict[str, Any], mode: str = "legacy") -> Any:
    server = build_server(get_registry().get("data"), data.services, secret=data.key)
    async with Client(server, mode=mode) as client:
        return await client.call_tool(tool, args)


@pytest.mark.parametrize("mode", MODES)
async def test_tools_are_listed_with_honest_annotations(data: Data, mode: str) -> None:
    server = build_server(get_registry().get("data"), data.services, secret=data.key)
    async with Client(server, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"fetch_page", "search_collected"} <= set(tools)
    assert tools["fetch_page"].annotations.open_world_hint is True
    assert tools["search_collected"].annotations.read_only_hint is True
    assert tools["search_collected"].annotations.open_world_hint is False


async def test_fetch_then_search_cites_the_url(data: Data) -> None:
    data.server.expect_request("/news/yardi").respond_with_data(HTML, content_type="text/html")
    url = data.server.url_for("/news/yardi")
    fetched = await call(data, "fetch_page", {"url": url})
    assert not fetched.is_error, text(fetched)
    page = fetched.structured_content
    assert (
        page["title"] == "Yardi opens an AI leasing marketplace"
        and page["indexed"]
        and page["author"] == "Sam Rivera"
    )
    assert "guest cards" in page["text"]
    found = await call(data, "search_collected", {"query": "AI leasing assistants marketplace guest cards"})
    hits = found.structured_content["hits"]
    assert found.structured_content["backend"] == "local index"
    assert hits and hits[0]["url"] == url and "guest cards" in hits[0]["quote"]
    assert hits[0]["char_start"] is not None and url in text(found)


async def test_a_private_address_is_refused_with_a_reason(data: Data) -> None:
    for url in ("http://169.254.169.254/latest/meta-data/", "http://0x7f000001:8080/", "file:///etc/passwd"):
        result = await call(data, "fetch_page", {"url": url})
        assert result.is_error, url
        message = text(result)
        assert "refused" in message.lower() or "only http" in message.lower(), message
        assert "Traceback" not in message


async def test_search_filters_by_domain(data: Data) -> None:
    data.server.expect_request("/a").respond_with_data(HTML, content_type="text/html")
    await call(data, "fetch_page", {"url": data.server.url_for("/a")})
    other = await call(data, "search_collected", {"query": "Yardi marketplace", "domain": "example.org"})
    assert other.structured_content["hits"] == []
    same = await call(data, "search_collected", {"query": "Yardi marketplace", "domain": "localhost"})
    assert len(same.structured_content["hits"]) == 1
