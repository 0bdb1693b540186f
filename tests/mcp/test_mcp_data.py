"""The Data Intelligence server (8092) through an in-memory MCP client, against a real local web server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp_support import MODES, text
from pytest_httpserver import HTTPServer

from collect.saas_fakes import KEY, FakeApify, FakePhantomBuster, FakeTavily, FakeTwingly, FakeZenRows
from collect.site import Site
from fakes.upstream import FakeUpstream
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


FEEDS = Path(__file__).parent.parent / "collect" / "feeds"


@dataclass
class Data:
    services: Services
    key: str
    server: HTTPServer


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sophia.warehouse.demo import build_duckdb

    path = tmp_path_factory.mktemp("data") / "demo.duckdb"
    build_duckdb(path, scale=0.02, seed=0)
    return path


@pytest.fixture
async def data(
    tmp_path: Path, httpserver: HTTPServer, upstream: FakeUpstream, demo: Path
) -> AsyncIterator[Data]:
    settings = load_settings(
        home=str(tmp_path / "home"),
        collect={
            "allow": [f"localhost:{httpserver.port}", f"127.0.0.1:{httpserver.port}"],
            "delay": 0.0,
            "page_near_duplicate": 0.995,
        },
        warehouse={"url": f"duckdb:///{demo}"},
        providers={"local": {"enabled": False}, "vllm": {"base_url": f"{upstream.url}/vllm/v1"}},
        aliases={"sophia/fast": ["vllm/fast"]},
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
    assert set(tools) == {
        "fetch_page", "search_collected", "crawl_site", "job_status", "cancel_crawl", "search_web", "news",
        "business_research", "find_leads",
    }  # fmt: skip
    for name in ("fetch_page", "crawl_site", "search_web", "news", "business_research"):
        assert tools[name].annotations.open_world_hint is True, name
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


async def test_crawl_site_reports_progress_and_its_job_can_be_read_and_cancelled(data: Data) -> None:
    site = Site(data.server)
    server = build_server(get_registry().get("data"), data.services, secret=data.key)
    notes: list[str] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        notes.append(message or "")

    async with Client(server) as client:
        result = await client.call_tool(
            "crawl_site", {"url": site.url("/"), "max_pages": 30, "wait_s": 60}, progress_callback=progress
        )
        assert not result.is_error, text(result)
        crawl = result.structured_content
        assert crawl["status"] == "done" and crawl["pending"] == 0 and crawl["stats"]["robots"] == 1
        assert crawl["stats"]["fetched"] >= 9 and any("pages" in n for n in notes)
        status = await client.call_tool("job_status", {"job_id": crawl["job_id"]})
        assert status.structured_content["seen"] == crawl["seen"]
        found = await client.call_tool("search_collected", {"query": "Section B page", "k": 3})
        assert any(h["url"] == site.url("/b") for h in found.structured_content["hits"])

        slow = await client.call_tool(
            "crawl_site", {"url": Site(data.server, slow=0.3).url("/"), "max_pages": 30, "wait_s": 0}
        )
        job = slow.structured_content["job_id"]
        cancelled = await client.call_tool("cancel_crawl", {"job_id": job})
        assert cancelled.structured_content["status"] == "cancelled"
        missing = await client.call_tool("job_status", {"job_id": "nope"})
        assert missing.is_error and "no crawl" in text(missing)


async def test_news_polls_a_feed_once_and_finds_its_articles(data: Data) -> None:
    data.server.expect_request("/feed.xml").respond_with_data(
        (FEEDS / "rss2.xml").read_bytes(), content_type="application/rss+xml"
    )
    url = data.server.url_for("/feed.xml")
    first = (await call(data, "news", {"feeds": [url]})).structured_content
    polled = next(iter(first["polled"].values()))
    assert polled.split()[0] != "0" and first["articles"]
    again = (await call(data, "news", {"feeds": [url]})).structured_content
    assert next(iter(again["polled"].values())).startswith("0 new")  # no duplicate across polls
    title = first["articles"][0]["title"]
    found = (await call(data, "news", {"query": title})).structured_content
    assert found["articles"] and found["articles"][0]["title"] == title


async def test_search_web_says_when_it_searched_only_the_local_index(data: Data) -> None:
    local = (await call(data, "search_web", {"query": "anything"})).structured_content
    assert local["backend"] == "local index" and "tavily" in local["note"]


@asynccontextmanager
async def with_service(
    tmp_path: Path, fake_kind: Any, service: str, **options: Any
) -> AsyncIterator[tuple[Services, Callable[[str, dict[str, Any]], Awaitable[Any]]]]:
    """The Data server with one SaaS service configured against its loopback fake: (services, call_tool)."""
    fake = await fake_kind().start()
    services: Services | None = None
    try:
        settings = load_settings(
            home=str(tmp_path / "home"),
            collect={service: {"api_key": KEY, "base_url": fake.url, **options}},
            cache={"enabled": False},
        )
        services = Services(settings)
        accounts = await services.open()
        key, _ = await accounts.keys.create(name="analyst", team="research")

        async def call_tool(tool: str, args: dict[str, Any]) -> Any:
            server = build_server(get_registry().get("data"), services, secret=key)
            async with Client(server) as client:
                return await client.call_tool(tool, args)

        yield services, call_tool
    finally:
        if services is not None:
            await services.close()
        await fake.close()


async def test_search_web_asks_tavily_when_configured(tmp_path: Path) -> None:
    async with with_service(tmp_path, FakeTavily, "tavily") as (_, call_tool):
        result = await call_tool("search_web", {"query": "acme", "k": 3})
    out = result.structured_content
    assert (
        out["backend"] == "tavily" and len(out["hits"]) == 3 and out["hits"][0]["url"].startswith("https://")
    )
    assert KEY not in text(result)


async def test_business_research_keeps_only_cited_sentences(data: Data) -> None:
    data.server.expect_request("/news/yardi").respond_with_data(HTML, content_type="text/html")
    result = await call(
        data,
        "business_research",
        {
            "question": "What did Yardi open for AI leasing assistants?",
            "urls": [data.server.url_for("/news/yardi")],
        },
    )
    assert not result.is_error, text(result)
    out = result.structured_content
    assert (
        out["sources"] and out["fetched"] == [data.server.url_for("/news/yardi")] and out["model_calls"] == 1
    )
    from sophia.mcp.data.research import _SENTENCE

    for sentence in _SENTENCE.split(out["summary"]):
        cited = [int(n) for n in __import__("re").findall(r"\[(\d+)\]", sentence)]
        assert cited and all(1 <= n <= len(out["sources"]) for n in cited), sentence


def test_cited_summary_drops_sentences_without_a_valid_source() -> None:
    from sophia.mcp.data.research import cited_summary

    text_in = "Yardi opened a marketplace [1]. Everyone loves it. Partners saw faster replies [2][1]. Prices fell [7]."
    summary, dropped = cited_summary(text_in, 2)
    assert summary == "Yardi opened a marketplace [1]. Partners saw faster replies [2][1]."
    assert dropped == 2


async def test_find_leads_joins_warehouse_accounts_and_collected_evidence(data: Data) -> None:
    page = HTML.replace(
        "Analysts expect", "Greystar Real Estate Partners and Lincoln Property Company said analysts expect"
    )
    data.server.expect_request("/news/leads").respond_with_data(page, content_type="text/html")
    await call(data, "fetch_page", {"url": data.server.url_for("/news/leads")})
    out = (await call(data, "find_leads", {"region": "West", "min_units": 1000, "k": 20})).structured_content
    from_warehouse = [lead for lead in out["leads"] if lead.get("units") is not None]
    assert from_warehouse and all(
        lead["region"] == "West" and lead["units"] >= 1000 for lead in from_warehouse
    )
    named = {lead["company"]: lead for lead in out["leads"] if lead.get("evidence")}
    assert any("Greystar" in name for name in named), list(named)
    evidence = next(lead for name, lead in named.items() if "Greystar" in name)["evidence"][0]
    assert evidence["url"] == data.server.url_for("/news/leads") and "Greystar" in evidence["quote"]


async def test_fetch_page_renders_through_zenrows_when_configured(tmp_path: Path) -> None:
    from sophia.collect.service import COLLECTOR

    async with with_service(tmp_path, FakeZenRows, "zenrows") as (services, call_tool):
        result = await call_tool("fetch_page", {"url": "https://shop.example.com/item/1", "render_js": True})
        out = result.structured_content
        assert not result.is_error, text(result)
        assert out["via"] == "zenrows" and out["status"] == 200 and "note" not in out
        stored = await (await services.get(COLLECTOR)).store.get("https://shop.example.com/item/1")
        assert stored is not None and b"9.99" in stored.raw  # the script-rendered price
        assert KEY not in text(result)


async def test_fetch_page_says_when_it_could_not_render(data: Data) -> None:
    data.server.expect_request("/js").respond_with_data(HTML, content_type="text/html")
    out = (
        await call(data, "fetch_page", {"url": data.server.url_for("/js"), "render_js": True})
    ).structured_content
    assert out["via"] == "direct" and "zenrows" in out["note"]


async def test_news_search_asks_twingly_when_configured(tmp_path: Path) -> None:
    async with with_service(tmp_path, FakeTwingly, "twingly") as (_, call_tool):
        result = await call_tool("news", {"query": "Acme office", "k": 3})
    out = result.structured_content
    assert not result.is_error, text(result)
    assert out["backend"] == "twingly" and len(out["articles"]) == 3
    assert out["articles"][0]["url"].startswith("https://blog.example.se/")


async def test_search_web_runs_an_apify_search_actor_when_configured(tmp_path: Path) -> None:
    options = {"options": {"search_actor": "apify/web-scraper"}}
    async with with_service(tmp_path, FakeApify, "apify", **options) as (_, call_tool):
        result = await call_tool("search_web", {"query": "acme", "k": 4})
    out = result.structured_content
    assert not result.is_error, text(result)
    assert out["backend"] == "apify:apify/web-scraper" and len(out["hits"]) == 4
    assert all(h["url"].startswith("https://example.com/") for h in out["hits"])


async def test_find_leads_asks_a_phantombuster_agent_when_one_is_set(tmp_path: Path, demo: Path) -> None:
    options = {"options": {"leads_agent": "4421897"}}
    async with with_service(tmp_path, FakePhantomBuster, "phantombuster", **options) as (_, call_tool):
        result = await call_tool("find_leads", {"industry": "student housing", "k": 5})
    out = result.structured_content
    assert not result.is_error, text(result)
    acme = next(lead for lead in out["leads"] if lead["company"] == "Acme")
    assert len(acme["evidence"]) == 3 and acme["evidence"][0]["url"].startswith(
        "https://www.linkedin.com/in/"
    )


def test_search_rows_read_both_shapes_of_search_actor_output() -> None:
    from sophia.mcp.data.research import search_rows

    nested = [{"organicResults": [{"title": "A", "url": "https://a.example/", "description": "about a"}]}]
    flat = [{"title": "B", "link": "https://b.example/", "snippet": "about b"}, {"title": "no url"}]
    assert [(h.title, h.url, h.quote) for h in search_rows(nested + flat)] == [
        ("A", "https://a.example/", "about a"),
        ("B", "https://b.example/", "about b"),
    ]
