"""News feeds: RSS 2.0, Atom and RSS 1.0 read through a real loopback server, each article kept once across
polls, syndicated copies pointing at their story, malformed feeds read as far as they go, and a schedule
that backs off on failures and honours Retry-After."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sophia.collect.addresses import AddressPolicy
from sophia.collect.entities import Entities, extract_entities
from sophia.collect.fetch import FetchFailed, SafeFetcher
from sophia.collect.news import (
    FeedError,
    FeedPoller,
    FeedStore,
    article_id,
    parse_feed,
    unpack_vector,
)
from sophia.embedder import get_encoder
from sophia.settings.collect import CollectSettings
from sophia.storage.testing import database_url

FEEDS = Path(__file__).parent / "feeds"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
T0 = 1_717_500_000.0  # 2024-06-04, the fixtures' week


# -- a loopback feed server, a plain fetcher for it, a settable clock ---------------------------------


@dataclass
class Route:
    body: bytes
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class FeedSite:
    """Serves feeds whose body, validators and status a test changes between polls; answers 304 to a
    matching If-None-Match or If-Modified-Since like a real server."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.routes: dict[str, Route] = {}

    def serve(self, path: str, body: bytes, **route: object) -> str:
        if path not in self.routes:
            self.server.expect_request(path).respond_with_handler(partial(self._answer, path))
        self.routes[path] = Route(body, **route)  # type: ignore[arg-type]
        return self.server.url_for(path)

    def requests(self, path: str) -> list[Request]:
        return [request for request, _ in self.server.log if request.path == path]

    def _answer(self, path: str, request: Request) -> Response:
        route = self.routes[path]
        headers = dict(route.headers)
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if route.status == 200 and (
            (route.etag and request.headers.get("If-None-Match") == route.etag)
            or (route.last_modified and request.headers.get("If-Modified-Since") == route.last_modified)
        ):
            return Response(status=304, headers=headers)
        return Response(route.body, status=route.status, headers=headers, content_type="application/rss+xml")


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int
    not_modified: bool
    content: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    retry_after: float | None


class LoopbackFetcher:
    """Conditional GETs with httpx (the SSRF-safe fetcher refuses loopback unless allowed)."""

    def __init__(self) -> None:
        self.client = httpx.AsyncClient(timeout=5.0, trust_env=False, follow_redirects=True)

    async def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            response = await self.client.get(url, headers=headers)
        except httpx.TransportError as exc:  # as the real fetcher does
            raise FetchFailed(f"cannot fetch {url}: {exc}") from None
        retry = response.headers.get("retry-after")
        return Fetched(
            url=str(response.url),
            status=response.status_code,
            not_modified=response.status_code == 304,
            content=response.content,
            content_type=(response.headers.get("content-type") or "").split(";")[0] or None,
            etag=response.headers.get("etag") or (etag if response.status_code == 304 else None),
            last_modified=response.headers.get("last-modified"),
            retry_after=float(retry) if retry and retry.isdigit() else None,
        )


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def site(web_server: HTTPServer) -> FeedSite:
    return FeedSite(web_server)


@pytest.fixture
async def fetcher() -> AsyncIterator[LoopbackFetcher]:
    f = LoopbackFetcher()
    yield f
    await f.client.aclose()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FeedStore]:
    s = await FeedStore.open(f"sqlite:///{tmp_path / 'news.db'}")
    yield s
    await s.close()


@pytest.fixture(params=BACKENDS)
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FeedStore]:
    async with database_url(request.param, tmp_path) as url:
        s = await FeedStore.open(url)
        yield s
        await s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_poller(fetcher: LoopbackFetcher, clock: Clock) -> Callable[..., FeedPoller]:
    def make(store: FeedStore, **options: object) -> FeedPoller:
        return FeedPoller(fetcher, store, encoder=get_encoder(), clock=clock, interval=900, **options)  # type: ignore[arg-type]

    return make


def rss(*items: dict[str, str], title: str = "Test feed") -> bytes:
    """An RSS 2.0 body; each item may have guid, link, title, description."""
    parts = []
    for item in items:
        fields = "".join(
            f"<{tag}>{escape(item[key])}</{tag}>"
            for key, tag in (
                ("title", "title"),
                ("link", "link"),
                ("guid", "guid"),
                ("description", "description"),
            )
            if key in item
        )
        parts.append(f"<item>{fields}</item>")
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"{''.join(parts)}</channel></rss>"
    ).encode()


def item(n: int, **extra: str) -> dict[str, str]:
    return {
        "guid": f"item-{n}",
        "link": f"https://news.example/a/{n}",
        "title": f"Apartment market note number {n}",
        "description": f"Occupancy figure {n} for the week.",
    } | extra


# -- parsing the three formats ----------------------------------------------------------------------


def test_rss2_items_become_articles_with_canonical_links_and_plain_text() -> None:
    feed = parse_feed((FEEDS / "rss2.xml").read_bytes(), "https://multifamily.example/feed.xml")
    assert feed.title == "Multifamily Wire"
    first, second, third = feed.entries
    assert first.url == "https://multifamily.example/news/greystar-austin"  # no utm_*, no fragment
    assert first.published == "2024-06-04T14:30:00+00:00"
    assert first.authors == ["Priya Shah"]
    assert first.language == "en-us"
    assert first.summary.startswith("Greystar Real Estate Partners acquired") and "<p>" not in first.summary
    assert "&" in second.summary and "&amp;" not in second.summary
    assert third.url == "https://multifamily.example/news/eqr-guidance"  # relative link resolved on the feed
    assert first.id == article_id(
        "https://multifamily.example/feed.xml", guid="mfw-1001", url=None, title="", published=None
    )


def test_atom_entries_keep_every_author_and_their_language() -> None:
    feed = parse_feed((FEEDS / "atom.xml").read_bytes(), "https://pmdaily.example/atom")
    assert feed.title == "Property Management Daily"
    camden, homes = feed.entries
    assert camden.authors == ["Laura Kim", "Diego Ramos"]
    assert camden.published == "2024-06-05T07:45:00+00:00"
    assert camden.language == "en"
    assert homes.language == "es"
    assert homes.published == "2024-06-04T16:00:00+00:00"  # no <published>: <updated> stands in
    assert homes.summary == "Invitation Homes sold 500 homes to Pretium Partners LLC."  # from <content>
    # a tag: URI is unique by construction, so it identifies the article in any feed
    assert camden.id == article_id(
        "https://elsewhere.example/",
        guid="tag:pmdaily.example,2024:entry-77",
        url=None,
        title="",
        published=None,
    )


def test_rss1_rdf_items_parse_with_dublin_core_dates_and_creators() -> None:
    feed = parse_feed((FEEDS / "rdf.xml").read_bytes(), "https://housingnotes.example/rss")
    assert feed.title == "Housing Notes"
    assert [a.url for a in feed.entries] == [
        "https://housingnotes.example/notes/avalonbay-q1",
        "https://housingnotes.example/notes/kairos-expansion",
    ]
    assert feed.entries[0].published == "2024-04-25T21:05:00+00:00"
    assert feed.entries[0].authors == ["Rahul Mehta"]
    assert feed.entries[1].language == "en"


def test_bare_guids_are_scoped_to_their_feed_and_uri_guids_are_not() -> None:
    a = article_id("https://a.example/feed", guid="1", url="https://a.example/x", title="", published=None)
    b = article_id("https://b.example/feed", guid="1", url="https://b.example/y", title="", published=None)
    assert a != b
    uri = "https://a.example/x"
    assert article_id("https://a.example/feed", guid=uri, url=None, title="", published=None) == article_id(
        "https://b.example/feed", guid=uri, url=None, title="", published=None
    )


def test_parse_feed_reads_only_the_bytes_it_is_given(site: FeedSite, tmp_path: Path) -> None:
    """feedparser given a string or bytes would open a URL or a file itself; the poller's parse never does."""
    secret = tmp_path / "secret.xml"
    secret.write_bytes(rss(item(1)))
    url = site.serve("/bait.xml", rss(item(2)))
    for body in (str(secret).encode(), url.encode()):
        with pytest.raises(FeedError) as caught:
            parse_feed(body, "https://news.example/feed")
        assert caught.value.code == "feed_unreadable"
    assert site.requests("/bait.xml") == []


# -- polling: conditional requests and duplicates ------------------------------------------------------


async def test_etag_is_sent_back_and_a_304_keeps_everything(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    url = site.serve("/feed.xml", (FEEDS / "rss2.xml").read_bytes(), etag='"v1"')
    poller = make_poller(store)
    first = await poller.poll(url)
    assert (first.status, first.not_modified, len(first.new)) == (200, False, 3)
    second = await poller.poll(url)
    assert (second.status, second.not_modified, second.new, second.duplicates) == (304, True, [], 0)
    assert site.requests("/feed.xml")[1].headers["If-None-Match"] == '"v1"'
    state = await store.feed(url)
    assert state is not None and state.etag == '"v1"' and state.title == "Multifamily Wire"
    assert len(await store.articles()) == 3


async def test_last_modified_is_sent_back_as_if_modified_since(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    stamp = "Tue, 04 Jun 2024 15:00:00 GMT"
    url = site.serve("/feed.xml", (FEEDS / "atom.xml").read_bytes(), last_modified=stamp)
    poller = make_poller(store)
    assert len((await poller.poll(url)).new) == 2
    again = await poller.poll(url)
    assert again.not_modified and again.new == []
    sent = site.requests("/feed.xml")[1].headers
    assert sent["If-Modified-Since"] == stamp and "If-None-Match" not in sent


async def test_no_duplicates_over_three_polls_as_the_feed_reorders_and_grows(
    site: FeedSite, any_store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    poller = make_poller(any_store)
    url = site.serve("/feed.xml", rss(item(1), item(2), item(3)))
    assert [a.title for a in (await poller.poll(url)).new] == [item(n)["title"] for n in (1, 2, 3)]
    site.serve("/feed.xml", rss(item(4), item(3), item(1), item(2)))
    second = await poller.poll(url)
    assert [a.title for a in second.new] == [item(4)["title"]]
    assert second.duplicates == 3
    site.serve("/feed.xml", rss(item(2), item(5), item(4), item(1), item(6), item(3)))
    third = await poller.poll(url)
    assert sorted(a.title for a in third.new) == [item(5)["title"], item(6)["title"]]
    assert third.duplicates == 4
    kept = await any_store.articles(feed_url=url)
    assert len(kept) == 6 == len({a.id for a in kept}) == len({a.url for a in kept})


async def test_guidless_items_are_deduplicated_by_their_link(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    poller = make_poller(store)
    bare = [{k: v for k, v in item(n).items() if k != "guid"} for n in (1, 2)]
    url = site.serve("/feed.xml", rss(*bare))
    assert len((await poller.poll(url)).new) == 2
    retitled = [dict(bare[0], title="Apartment market note number 1 (updated)"), bare[1]]
    site.serve("/feed.xml", rss(*retitled))
    again = await poller.poll(url)
    assert again.new == [] and again.duplicates == 2


async def test_tracking_parameters_and_fragments_do_not_make_a_new_article(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    poller = make_poller(store)
    tagged = {"link": "https://news.example/a/1?id=7&utm_source=rss&utm_campaign=june#top", "title": "One"}
    url = site.serve("/feed.xml", rss(tagged))
    (article,) = (await poller.poll(url)).new
    assert article.url == "https://news.example/a/1?id=7"
    site.serve(
        "/feed.xml", rss(dict(tagged, link="https://NEWS.example/a/1?utm_medium=email&id=7&fbclid=abc"))
    )
    assert (await poller.poll(url)).duplicates == 1
    assert len(await store.articles()) == 1


async def test_a_changed_guid_on_a_known_link_is_still_a_duplicate(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    poller = make_poller(store)
    url = site.serve("/feed.xml", rss(item(1)))
    await poller.poll(url)
    site.serve("/feed.xml", rss(item(1, guid="item-1-republished"), item(1)))
    again = await poller.poll(url)
    assert again.new == [] and again.duplicates == 2


async def test_a_bare_guid_names_one_article_per_site(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    """feedparser reads a bare guid ("1") relative to the feed's URL: two sites' "1" are two articles,
    while two feeds of one site (its categories) share their numbering, and so the article."""
    poller = make_poller(store)
    one = site.serve("/one.xml", rss(item(1, guid="1", title="Rent control vote delayed in Portland")))
    site.serve("/two.xml", rss(item(2, guid="1", title="Student housing REIT opens campus tower")))
    other_site = one.replace("127.0.0.1", "localhost").replace("one.xml", "two.xml")
    same_site = one.replace("one.xml", "two.xml")
    assert len((await poller.poll(one)).new) == 1
    assert len((await poller.poll(other_site)).new) == 1
    assert (await poller.poll(same_site)).duplicates == 1


# -- syndicated copies -----------------------------------------------------------------------------------


async def test_a_syndicated_copy_joins_the_first_story_and_a_similar_story_does_not(
    site: FeedSite, any_store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    poller = make_poller(any_store)
    wire = site.serve("/wire.xml", (FEEDS / "rss2.xml").read_bytes())
    journal = site.serve("/journal.xml", (FEEDS / "syndicated.xml").read_bytes())
    original = (await poller.poll(wire)).new[0]
    assert original.title.startswith("Greystar buys 2,400-unit Austin")
    result = await poller.poll(journal)
    copy, denver = result.new
    assert result.syndicated == 1
    assert copy.story_id == original.id and copy.syndicated and copy.url != original.url
    assert denver.story_id == denver.id  # Denver, 1,100 units: the same words, another deal
    story = await any_store.articles(story_id=original.id)
    assert {a.id for a in story} == {original.id, copy.id}


async def test_a_fresh_poller_finds_the_story_from_stored_vectors(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller], clock: Clock
) -> None:
    wire = site.serve("/wire.xml", (FEEDS / "rss2.xml").read_bytes())
    journal = site.serve("/journal.xml", (FEEDS / "syndicated.xml").read_bytes())
    original = (await make_poller(store).poll(wire)).new[0]
    row = await store.db.fetchone("SELECT vector FROM sophia_articles WHERE id = ?", (original.id,))
    assert row is not None and unpack_vector(row["vector"]).shape == (384,)
    clock.now += 3600
    copy = (await make_poller(store).poll(journal)).new[0]  # another process, nothing in memory
    assert copy.story_id == original.id


async def test_copies_older_than_the_window_start_a_new_story(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller], clock: Clock
) -> None:
    poller = make_poller(store, window_days=2)
    wire = site.serve("/wire.xml", (FEEDS / "rss2.xml").read_bytes())
    journal = site.serve("/journal.xml", (FEEDS / "syndicated.xml").read_bytes())
    await poller.poll(wire)
    clock.now += 3 * 86400
    result = await poller.poll(journal)
    assert result.syndicated == 0 and all(a.story_id == a.id for a in result.new)


async def test_articles_of_one_feed_are_never_collapsed_into_each_other(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    text = "Greystar buys 2,400-unit Austin portfolio from Blackstone"
    url = site.serve("/feed.xml", rss(item(1, title=text), item(2, title=text)))
    result = await make_poller(store).poll(url)
    assert len(result.new) == 2 and result.syndicated == 0


async def test_articles_with_next_to_no_text_never_join_a_story(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    poller = make_poller(store)
    one = site.serve("/one.xml", rss({"link": "https://a.example/1", "title": "Update"}))
    two = site.serve("/two.xml", rss({"link": "https://b.example/2", "title": "Update"}))
    await poller.poll(one)
    result = await poller.poll(two)
    assert result.syndicated == 0 and result.new[0].story_id == result.new[0].id
    row = await store.db.fetchone(
        "SELECT vector FROM sophia_articles WHERE url = ?", ("https://b.example/2",)
    )
    assert row is not None and row["vector"] is None


# -- malformed and unreadable feeds ------------------------------------------------------------------------


async def test_a_malformed_feed_keeps_what_can_be_read(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller], caplog: pytest.LogCaptureFixture
) -> None:
    url = site.serve("/feed.xml", (FEEDS / "malformed.xml").read_bytes())
    with caplog.at_level(logging.WARNING, logger="sophia.collect.news"):
        result = await make_poller(store).poll(url)
    assert [a.url for a in result.new] == [
        "https://rentdigest.example/parkside",
        "https://rentdigest.example/bozzuto",
    ]
    assert "malformed" in caplog.text and "not well-formed" in caplog.text
    state = await store.feed(url)
    assert state is not None and state.failures == 0 and state.title == "Rent & Lease Digest"


async def test_a_body_with_no_feed_in_it_is_a_clear_error_and_a_failure(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    url = site.serve("/feed.xml", b"<html><body><h1>Our news page</h1></body></html>")
    with pytest.raises(FeedError) as caught:
        await make_poller(store).poll(url)
    assert caught.value.code == "feed_unreadable" and url in caught.value.message
    site.serve("/feed.xml", b"\x00\x01 not xml at all <<<")
    with pytest.raises(FeedError, match="not a feed that can be read"):
        await make_poller(store).poll(url)
    state = await store.feed(url)
    assert state is not None and state.failures == 2 and "not a feed" in (state.last_error or "")


# -- the schedule --------------------------------------------------------------------------------------------


async def test_failures_back_off_exponentially_and_a_success_resets_them(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller], clock: Clock
) -> None:
    poller = make_poller(store, max_backoff=6 * 3600)
    url = site.serve("/feed.xml", b"oops", status=500)
    await store.add_feeds([url], now=clock.now)
    waits = []
    for _ in range(5):
        with pytest.raises(FeedError) as caught:
            await poller.poll(url)
        assert caught.value.status == 500
        state = await store.feed(url)
        assert state is not None
        waits.append(state.next_poll - clock.now)
        assert await poller.due(state.next_poll - 1) == []
        assert await poller.due(state.next_poll) == [url]
        clock.now = state.next_poll
    assert waits == [1800, 3600, 7200, 14400, 21600]  # interval * 2**failures, capped
    site.serve("/feed.xml", rss(item(1)))
    assert len((await poller.poll(url)).new) == 1
    state = await store.feed(url)
    assert state is not None and (state.failures, state.last_status, state.last_error) == (0, 200, None)
    assert state.next_poll == clock.now + 900


async def test_retry_after_is_honoured_in_due(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller], clock: Clock
) -> None:
    poller = make_poller(store)
    url = site.serve("/feed.xml", b"busy", status=503, headers={"Retry-After": "7200"})
    with pytest.raises(FeedError):
        await poller.poll(url)
    assert await poller.due(clock.now + 1800) == []  # the backoff alone would allow this
    assert await poller.due(clock.now + 7199) == []
    assert await poller.due(clock.now + 7200) == [url]
    site.serve("/feed.xml", b"slow down", status=429, headers={"Retry-After": "60"})
    clock.now += 7200
    with pytest.raises(FeedError):
        await poller.poll(url)
    assert await poller.due(clock.now + 3599) == []  # second failure: 3600 s beats the 60 asked
    assert await poller.due(clock.now + 3600) == [url]


async def test_poll_due_polls_only_due_feeds_and_reports_each_failure(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller], clock: Clock
) -> None:
    poller = make_poller(store)
    good = site.serve("/good.xml", (FEEDS / "rss2.xml").read_bytes())
    bad = site.serve("/bad.xml", b"gone", status=410)
    later = site.serve("/later.xml", (FEEDS / "atom.xml").read_bytes())
    await store.add_feeds([good, bad], now=clock.now)
    await store.add_feeds([later], now=clock.now + 600)
    results = await poller.poll_due()
    assert set(results) == {good, bad}
    ok, failed = results[good], results[bad]
    assert not isinstance(ok, Exception) and len(ok.new) == 3
    assert isinstance(failed, FeedError) and failed.status == 410
    assert site.requests("/later.xml") == []
    clock.now += 900
    assert await poller.due() == [later, good]  # later was due at +600, good at +900


async def test_an_unreachable_feed_is_a_failure_too(
    store: FeedStore, make_poller: Callable[..., FeedPoller], clock: Clock
) -> None:
    url = "http://127.0.0.1:9/feed.xml"  # the discard port: nothing listens
    poller = make_poller(store)
    with pytest.raises(FetchFailed):
        await poller.poll(url)
    state = await store.feed(url)
    assert state is not None and state.failures == 1 and state.last_status is None
    assert state.next_poll == clock.now + 1800 and "cannot fetch" in (state.last_error or "")


# -- entities and storage ------------------------------------------------------------------------------------


async def test_entities_are_found_and_kept_with_each_article(
    site: FeedSite, store: FeedStore, make_poller: Callable[..., FeedPoller]
) -> None:
    url = site.serve("/feed.xml", (FEEDS / "rss2.xml").read_bytes())
    new = (await make_poller(store).poll(url)).new
    assert "Greystar Real Estate Partners" in new[0].entities.companies
    assert "Blackstone" in new[0].entities.companies
    assert new[1].entities == Entities(companies=["RealPage"], people=["Dana Jones"])
    kept = {a.id: a for a in await store.articles()}
    assert kept[new[1].id].entities == new[1].entities
    assert kept[new[0].id].authors == ["Priya Shah"]


async def test_two_pollers_racing_on_one_article_keep_one_row(any_store: FeedStore) -> None:
    article = parse_feed(rss(item(1)), "https://news.example/feed").entries[0]
    assert await any_store.insert([article], [None]) == [True]
    assert await any_store.insert([article], [None]) == [False]
    relinked = parse_feed(rss(item(1, guid="other")), "https://news.example/feed").entries[0]
    assert relinked.id != article.id
    assert await any_store.insert([relinked], [None]) == [False]  # the same canonical URL
    assert len(await any_store.articles()) == 1


async def test_settings_give_the_interval_and_the_threshold(
    store: FeedStore, fetcher: LoopbackFetcher
) -> None:
    settings = CollectSettings(feeds=["https://news.example/feed"], feed_interval=600, near_duplicate=0.95)
    poller = FeedPoller.from_settings(fetcher, store, settings, encoder=get_encoder())
    assert (poller.interval, poller.near_duplicate) == (600, 0.95)
    await store.add_feeds(settings.feeds, now=T0)
    await store.add_feeds(settings.feeds, now=T0 + 999)  # known feeds keep their schedule
    assert await poller.due(T0) == ["https://news.example/feed"]


async def test_the_real_fetcher_polls_a_feed_when_loopback_is_allowed(
    site: FeedSite, store: FeedStore, clock: Clock
) -> None:
    url = site.serve("/feed.xml", (FEEDS / "rdf.xml").read_bytes(), etag='"r1"')
    async with SafeFetcher(AddressPolicy(allow=["127.0.0.1"])) as safe:
        poller = FeedPoller(safe, store, encoder=get_encoder(), clock=clock)
        assert len((await poller.poll(url)).new) == 2
        assert (await poller.poll(url)).not_modified


# -- the entity extractor on its own -------------------------------------------------------------------------


def test_a_deal_names_buyer_and_seller_but_not_the_city() -> None:
    found = extract_entities(
        "Greystar acquired a 2,400-unit portfolio in Austin from Blackstone for $600 million."
    )
    assert found == Entities(companies=["Greystar", "Blackstone"], people=[])


def test_titles_mark_the_company_before_them_and_the_person_after() -> None:
    found = extract_entities("RealPage CEO Dana Jones said rent growth slowed in the Sun Belt.")
    assert found == Entities(companies=["RealPage"], people=["Dana Jones"])
    found = extract_entities("In March Greystar's president Bob Faith spoke at the NMHC meeting.")
    assert found == Entities(companies=["Greystar"], people=["Bob Faith"])


def test_people_without_a_listed_first_name_are_found_by_their_role() -> None:
    found = extract_entities("Toan Nguyen, CEO of Kairos Living, said the deal closes in March.")
    assert found == Entities(companies=["Kairos Living"], people=["Toan Nguyen"])
    found = extract_entities('"Concessions are rising," said Maria Lopez, chief economist at Yardi Matrix.')
    assert found == Entities(companies=["Yardi Matrix"], people=["Maria Lopez"])


def test_company_suffixes_need_a_distinctive_name_before_them() -> None:
    found = extract_entities(
        "Tricon Residential agreed to be acquired by Blackstone Real Estate Partners, while Real Estate "
        "Partners and Asset Management firms watched. Invitation Homes sold 500 homes to Pretium Partners LLC."
    )
    assert found.companies == [
        "Tricon Residential",
        "Blackstone Real Estate Partners",
        "Invitation Homes",
        "Pretium Partners LLC",
    ]
    assert found.people == []


def test_names_that_look_like_people_or_places_are_not_misread() -> None:
    found = extract_entities(
        "Morgan Stanley and Freddie Mac financed the purchase, Jones said. Marcus & Millichap brokered "
        "the sale of Parkside Apartments. Phoenix saw the largest drop in rents. The Federal Reserve held "
        "rates on Wednesday."
    )
    assert found == Entities(companies=["Morgan Stanley", "Freddie Mac", "Marcus & Millichap"], people=[])


def test_title_case_headlines_yield_only_unmistakable_names() -> None:
    assert extract_entities("Greystar Acquires 5,000 Units From Blackstone In Texas Deal") == Entities()
    found = extract_entities("EliseAI Raises $75 Million As Landlords Automate Leasing Offices")
    assert found == Entities(companies=["EliseAI"], people=[])


def test_each_name_is_listed_once_and_a_surname_alone_is_the_person() -> None:
    found = extract_entities(
        "Camden Property Trust named Laurie Baker chief operating officer. Baker announced a review. "
        "Dana J. Jones joined Bozzuto Group in 2019; Bozzuto Group hired Laurie Baker's deputy."
    )
    assert found.companies == ["Camden Property Trust", "Bozzuto Group"]
    assert found.people == ["Laurie Baker", "Dana J. Jones"]
