"""The collector end to end: a real local web server, the safe fetcher, the page store, the knowledge room."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sophia.collect.collector import Collector, document_id
from sophia.collect.urls import normalize
from sophia.errors import SophiaError
from sophia.knowledge.knowledge import Knowledge
from sophia.settings import CollectSettings, KnowledgeSettings

ARTICLE = """<!doctype html><html lang="en"><head><title>{title}</title>
<meta name="author" content="Dana Jones"><meta property="article:published_time" content="2026-05-04">
</head><body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
<article><h1>{title}</h1>
<p>{body}</p>
<p>Property managers across the Sun Belt reported that leasing teams answered more after-hours
inquiries once an assistant handled tour scheduling, and several operators said renewals improved.</p>
<p>Read the <a href="/reports/q2?utm_source=feed">second-quarter report</a> for the numbers.</p>
</article><footer>Copyright Example Media</footer></body></html>"""


def page(title: str, body: str) -> str:
    return ARTICLE.format(title=title, body=body)


@pytest.fixture
async def collector(tmp_path: Path, httpserver: HTTPServer) -> AsyncIterator[Collector]:
    settings = CollectSettings(allow=[f"127.0.0.1:{httpserver.port}", f"localhost:{httpserver.port}"])
    kb = await Knowledge.open(KnowledgeSettings(), tmp_path / "kb")
    collector = await Collector.open(settings, tmp_path, kb)
    yield collector
    await collector.close()
    await kb.close()


async def test_a_page_is_fetched_extracted_stored_and_cited(
    collector: Collector, httpserver: HTTPServer
) -> None:
    body = "Greystar expanded its AI leasing pilot to forty communities in Texas this spring."
    httpserver.expect_request("/news/ai-leasing").respond_with_data(
        page("AI leasing pilots grow", body), content_type="text/html; charset=utf-8"
    )
    url = httpserver.url_for("/news/ai-leasing")
    result = await collector.fetch_page(url)
    assert result.status == 200 and result.changed and result.indexed and result.duplicate_of is None
    assert result.title == "AI leasing pilots grow" and "forty communities" in result.text
    assert "Copyright" not in result.text  # boilerplate stays out of the main text
    assert normalize(httpserver.url_for("/reports/q2")) in result.links  # tracking parameters dropped
    hits = await collector.search("AI leasing pilot in Texas", k=3)
    assert hits and hits[0].document_id == document_id(normalize(url))
    citation = hits[0].citation
    assert citation.url == normalize(url) and citation.char_start is not None
    assert await collector.knowledge.resolve(citation) == citation.quote  # type: ignore[union-attr]
    assert citation.quote in result.text
    stored = await collector.store.get(normalize(url))
    assert (
        stored is not None and b"forty communities" in stored.raw and stored.text_hash == result.content_hash
    )


async def test_an_unchanged_page_is_a_no_op_with_a_conditional_get(
    collector: Collector, httpserver: HTTPServer
) -> None:
    seen: list[dict[str, str]] = []
    html = page("Rent growth slows", "Rent growth slowed to two percent in the Midwest markets.")

    def handler(request: Request) -> Response:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(html, content_type="text/html", headers={"ETag": '"v1"'})

    httpserver.expect_request("/rent").respond_with_handler(handler)
    url = httpserver.url_for("/rent")
    first = await collector.fetch_page(url)
    second = await collector.fetch_page(url)
    assert first.changed and first.indexed
    assert second.not_modified and not second.changed and second.text == first.text
    assert "if-none-match" not in seen[0] and seen[1]["if-none-match"] == '"v1"'
    stored = await collector.store.get(normalize(url))
    assert stored is not None and stored.fetches == 2


async def test_a_changed_page_is_indexed_again_and_a_copy_is_not(
    collector: Collector, httpserver: HTTPServer
) -> None:
    versions = iter(
        [
            page("Occupancy report", "Occupancy reached ninety-five percent across the portfolio."),
            page("Occupancy report", "Occupancy fell to ninety-one percent after the spring move-outs."),
        ]
    )
    httpserver.expect_request("/occupancy").respond_with_handler(
        lambda _: Response(next(versions), content_type="text/html")
    )
    url = httpserver.url_for("/occupancy")
    await collector.fetch_page(url)
    changed = await collector.fetch_page(url)
    assert changed.changed and changed.indexed and "ninety-one" in changed.text
    hits = await collector.search("occupancy percent", k=5, mode="text")
    assert [h.document_id for h in hits] == [document_id(normalize(url))]
    assert "ninety-one" in hits[0].citation.quote

    httpserver.expect_request("/mirror/occupancy").respond_with_data(
        page("Occupancy report", "Occupancy fell to ninety-one percent after the spring move-outs."),
        content_type="text/html",
    )
    copy = await collector.fetch_page(httpserver.url_for("/mirror/occupancy"))
    assert copy.duplicate_of == normalize(url) and not copy.indexed
    assert len(await collector.search("occupancy percent", k=5, mode="text")) == 1


async def test_a_near_copy_is_collapsed_and_a_different_story_is_not(
    collector: Collector, httpserver: HTTPServer
) -> None:
    story = (
        "RealPage announced a revenue management update for mid-size operators, adding occupancy "
        "forecasts and renewal pricing suggestions, with a rollout planned for the third quarter."
    )
    httpserver.expect_request("/a").respond_with_data(
        page("RealPage update", story), content_type="text/html"
    )
    httpserver.expect_request("/b").respond_with_data(
        page("RealPage update", story.replace("announced", "has announced")), content_type="text/html"
    )
    httpserver.expect_request("/c").respond_with_data(
        page("Entrata payments", "Entrata opened a payments office in Utah and hired two hundred engineers."),
        content_type="text/html",
    )
    first = await collector.fetch_page(httpserver.url_for("/a"))
    near = await collector.fetch_page(httpserver.url_for("/b"))
    other = await collector.fetch_page(httpserver.url_for("/c"))
    assert first.indexed and near.duplicate_of == normalize(httpserver.url_for("/a")) and not near.indexed
    assert other.indexed and other.duplicate_of is None


async def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path, httpserver: HTTPServer) -> None:
    """Only the allowed port is open: a redirect from it to another loopback port is refused."""
    settings = CollectSettings(allow=[f"127.0.0.1:{httpserver.port}"])
    collector = await Collector.open(settings, tmp_path, None)
    httpserver.expect_request("/go").respond_with_data(
        "", status=302, headers={"Location": "http://127.0.0.1:9/admin"}
    )
    with pytest.raises(SophiaError) as refused:
        await collector.fetch_page(httpserver.url_for("/go"))
    assert refused.value.code == "address_refused"
    assert await collector.store.get(normalize(httpserver.url_for("/go"))) is None  # nothing kept
    await collector.close()


async def test_urls_that_are_not_http_are_refused_before_any_fetch(collector: Collector) -> None:
    for url in (
        "file:///etc/passwd",
        "ftp://example.com/x",
        "http://user:pw@example.com/",
        "javascript:alert(1)",
    ):
        with pytest.raises(SophiaError):
            await collector.fetch_page(url)
    assert (await collector.stats())["pages"] == 0
