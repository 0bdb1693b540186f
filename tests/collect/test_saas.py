"""Contract tests of the SaaS clients against loopback fakes of Tavily, Apify, Twingly, ZenRows and
PhantomBuster (``saas_fakes``): the requests each client sends (paths, headers, query, body) are the
documented ones, answers parse into typed results, and every failure a service can give (a refused key,
429 with Retry-After, 5xx, a body that does not parse, no answer in time) becomes one clear Sophia error
that never carries the key."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

import pytest

from collect.saas_fakes import (
    KEY,
    FakeApify,
    FakePhantomBuster,
    FakeService,
    FakeTavily,
    FakeTwingly,
    FakeZenRows,
)
from sophia.collect.saas import (
    ApifyClient,
    PhantomBusterClient,
    SaaSClient,
    TavilyClient,
    TwinglyClient,
    ZenRowsClient,
    clients,
    configured,
)
from sophia.collect.saas.base import RetryPolicy, redact, retry_after_seconds
from sophia.errors import (
    ConfigError,
    InvalidRequest,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
    ProviderUnavailable,
)
from sophia.settings.collect import CollectSettings, SaaSService

F = TypeVar("F", bound=FakeService)
C = TypeVar("C", bound=SaaSClient)
FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05, max_wait=5.0)
KEY_SPELLINGS = (KEY, quote(KEY, safe=""), quote_plus(KEY), quote(KEY))


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[type[F]], Awaitable[F]]]:
    started: list[FakeService] = []

    async def start(kind: type[F]) -> F:
        fake = await kind().start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.close()


class Sleeps(list[float]):
    """A ``sleep`` that records what it was asked to wait instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(kind: type[C], fake: FakeService, *, key: str = KEY, timeout: float = 5.0, **options: Any) -> C:
    options.setdefault("retry", FAST)
    return kind(SaaSService(api_key=key, base_url=fake.url, timeout=timeout), **options)


def assert_no_key(text: str) -> None:
    for spelling in KEY_SPELLINGS:
        assert spelling not in text, f"the key leaked as {spelling!r}"


# --- Tavily --------------------------------------------------------------------------------------------


async def test_tavily_search_sends_the_documented_request(serve: Any) -> None:
    fake = await serve(FakeTavily)
    async with client(TavilyClient, fake) as tavily:
        results = await tavily.search("acme funding", max_results=4, time_range="month")
    [seen] = fake.seen
    assert (seen.method, seen.path) == ("POST", "/search")
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.headers["Content-Type"] == "application/json"
    body = seen.json()
    assert body["query"] == "acme funding" and body["max_results"] == 4
    assert body["topic"] == "general" and body["time_range"] == "month" and body["search_depth"] == "basic"
    assert "include_domains" not in body and "api_key" not in body  # the key travels in the header only
    assert [r.url for r in results] == [page["url"] for page in fake.pages[:4]]
    assert results[0].score > results[1].score and results[0].content == "Acme story 0"
    assert results[0].published is None


async def test_tavily_domain_filters_and_news_dates(serve: Any) -> None:
    fake = await serve(FakeTavily)
    async with client(TavilyClient, fake) as tavily:
        results = await tavily.search(
            "acme",
            max_results=10,
            topic="news",
            include_domains=["news.example.com"],
            exclude_domains=["x.com"],
        )
    body = fake.seen[0].json()
    assert body["include_domains"] == ["news.example.com"] and body["exclude_domains"] == ["x.com"]
    assert results and all(r.url.startswith("https://news.example.com/") for r in results)
    assert results[0].published == datetime(2025, 6, 30, 18, 5, 1, tzinfo=UTC)


async def test_tavily_validates_arguments_before_spending_a_credit(serve: Any) -> None:
    fake = await serve(FakeTavily)
    async with client(TavilyClient, fake) as tavily:
        with pytest.raises(InvalidRequest, match="max_results must be 1 to 20"):
            await tavily.search("acme", max_results=21)
        with pytest.raises(InvalidRequest, match="topic must be one of"):
            await tavily.search("acme", topic="gossip")  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest, match="needs a query"):
            await tavily.search("  ")
    assert fake.seen == []


async def test_a_refused_key_is_named_and_not_retried(serve: Any) -> None:
    fake = await serve(FakeTavily)
    async with client(TavilyClient, fake, key="tvly-wrong") as tavily:
        with pytest.raises(ProviderHTTPError) as caught:
            await tavily.search("acme")
    error = caught.value
    assert error.status == 401 and error.provider == "tavily" and not error.retryable
    assert "the Tavily key was refused" in error.message
    assert "Unauthorized: missing or invalid API key." in error.message
    assert "SOPHIA_COLLECT__TAVILY__API_KEY" in error.message
    assert len(fake.seen) == 1


async def test_429_waits_for_retry_after_then_succeeds(serve: Any) -> None:
    fake = await serve(FakeTavily)
    fake.inject(429, {"detail": {"error": "Rate limit exceeded."}}, headers={"Retry-After": "1"})
    async with client(TavilyClient, fake) as tavily:
        started = time.monotonic()
        results = await tavily.search("acme")
        waited = time.monotonic() - started
    assert len(results) == 5 and len(fake.seen) == 2
    assert 0.9 <= waited < 3.0


async def test_429_that_persists_ends_in_a_clear_rate_limit_error(serve: Any) -> None:
    fake = await serve(FakeTavily)
    fake.inject(429, {"detail": {"error": "Rate limit exceeded."}}, headers={"Retry-After": "0"}, times=5)
    sleeps = Sleeps()
    async with client(TavilyClient, fake, sleep=sleeps) as tavily:
        with pytest.raises(ProviderHTTPError) as caught:
            await tavily.search("acme")
    assert caught.value.status == 429 and caught.value.retryable and caught.value.retry_after == 0
    assert "Tavily is rate limiting Sophia (HTTP 429 after 3 attempts)" in caught.value.message
    assert len(fake.seen) == 3 and sleeps == [0.0, 0.0]


async def test_a_retry_after_beyond_the_limit_is_reported_not_slept(serve: Any) -> None:
    fake = await serve(FakeTavily)
    fake.inject(429, {"detail": {"error": "Rate limit exceeded."}}, headers={"Retry-After": "3600"})
    sleeps = Sleeps()
    async with client(TavilyClient, fake, sleep=sleeps) as tavily:
        with pytest.raises(ProviderHTTPError) as caught:
            await tavily.search("acme")
    assert caught.value.retry_after == 3600 and "asks to wait 3600 s" in caught.value.message
    assert len(fake.seen) == 1 and sleeps == []


async def test_a_500_is_retried_with_backoff_then_succeeds(serve: Any) -> None:
    fake = await serve(FakeTavily)
    fake.inject(500, {"detail": {"error": "Internal error"}})
    sleeps = Sleeps()
    async with client(TavilyClient, fake, sleep=sleeps) as tavily:
        results = await tavily.search("acme")
    assert len(results) == 5 and len(fake.seen) == 2 and sleeps == [0.01]


async def test_a_permanent_500_gives_up_after_the_bounded_attempts(serve: Any) -> None:
    fake = await serve(FakeTavily)
    fake.inject(500, {"detail": {"error": "Internal error"}}, times=10)
    sleeps = Sleeps()
    async with client(TavilyClient, fake, sleep=sleeps) as tavily:
        with pytest.raises(ProviderHTTPError) as caught:
            await tavily.search("acme")
    assert caught.value.status == 500 and caught.value.retryable
    assert caught.value.message == "Tavily failed with HTTP 500 after 3 attempts: Internal error"
    assert len(fake.seen) == 3 and sleeps == [0.01, 0.02]  # backoff doubles


async def test_a_body_that_is_not_json_is_a_clear_error(serve: Any) -> None:
    fake = await serve(FakeTavily)
    fake.inject(200, "<html>Bad gateway page</html>", headers={"Content-Type": "text/html"})
    async with client(TavilyClient, fake) as tavily:
        with pytest.raises(ProviderError) as caught:
            await tavily.search("acme")
    assert caught.value.code == "invalid_response" and not caught.value.retryable
    assert caught.value.message.startswith("Tavily answered /search with a body that is not JSON")
    assert "text/html" in caught.value.message


async def test_a_slow_answer_times_out_naming_the_service(serve: Any) -> None:
    fake = await serve(FakeTavily)
    fake.delay = 3.0
    async with client(TavilyClient, fake, timeout=0.3) as tavily:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout) as caught:
            await tavily.search("acme")
    assert time.monotonic() - started < 1.5
    assert caught.value.provider == "tavily" and "Tavily did not answer within 0.3 s" in caught.value.message
    assert len(fake.seen) == 1  # a timeout spent the caller's budget: not retried


async def test_a_service_that_cannot_be_reached_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    sleeps = Sleeps()
    setting = SaaSService(api_key=KEY, base_url=f"http://127.0.0.1:{port}", timeout=2)
    async with TavilyClient(setting, retry=FAST, sleep=sleeps) as tavily:
        with pytest.raises(ProviderUnavailable, match=r"cannot reach Tavily at 127\.0\.0\.1: ConnectError"):
            await tavily.search("acme")
    assert len(sleeps) == 2  # refused connections are retried (nothing was sent)


# --- the key stays secret ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fake_kind", "call"),
    [
        (TavilyClient, FakeTavily, lambda c: c.search("acme")),
        (TwinglyClient, FakeTwingly, lambda c: c.search("acme")),
        (ZenRowsClient, FakeZenRows, lambda c: c.fetch("https://shop.example.com/item/1")),
        (ApifyClient, FakeApify, lambda c: c.run_actor("apify/web-scraper")),
        (PhantomBusterClient, FakePhantomBuster, lambda c: c.launch("4421897")),
    ],
    ids=["tavily", "twingly", "zenrows", "apify", "phantombuster"],
)
async def test_an_error_echoing_the_request_never_shows_the_key(
    serve: Any, kind: type[SaaSClient], fake_kind: type[FakeService], call: Any
) -> None:
    fake = await serve(fake_kind)
    fake.inject(400, echo=True)
    async with client(kind, fake) as saas:
        with pytest.raises(ProviderHTTPError) as caught:
            await call(saas)
    seen = fake.seen[0]
    sent = str(seen.query) + str(seen.headers)
    assert any(spelling in sent for spelling in KEY_SPELLINGS)  # the fake did get the key, and echoed it
    assert_no_key(caught.value.message)
    assert "***" in caught.value.message and "refused the request (HTTP 400)" in caught.value.message


async def test_the_key_is_in_no_log_line_repr_or_exception(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    twingly = await serve(FakeTwingly)
    twingly.inject(503, '<error code="50301"><message>Service Unavailable</message></error>')
    async with client(TwinglyClient, twingly) as saas:
        await saas.search("acme")
        assert_no_key(repr(saas))
    slow = await serve(FakeZenRows)
    slow.delay = 2.0
    async with client(ZenRowsClient, slow, timeout=0.2) as saas:
        with pytest.raises(ProviderTimeout) as caught:
            await saas.fetch("https://shop.example.com/item/1")
    assert "HTTP Request: GET" in caplog.text and "attempt 2 of 3" in caplog.text  # the log was written
    assert_no_key(caplog.text)
    assert_no_key(repr(caught.value) + str(caught.value.__cause__) + str(caught.value.__context__))
    assert twingly.seen[0].query["apikey"] == KEY


def test_redaction_catches_every_spelling_of_the_key() -> None:
    spellings = [*KEY_SPELLINGS, quote(KEY, safe="").lower(), "sk-test-Zq9v!key%2f%2B=%26secret"]
    text = redact(" | ".join(spellings), KEY)
    assert text == " | ".join(["***"] * len(spellings))


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 6, 30, 12, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Mon, 30 Jun 2025 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Mon, 30 Jun 2025 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None) is None


# --- Apify ---------------------------------------------------------------------------------------------


async def test_apify_run_goes_from_running_to_succeeded(serve: Any) -> None:
    fake = await serve(FakeApify)
    async with client(ApifyClient, fake) as apify:
        run = await apify.run_actor(
            "apify/web-scraper", {"startUrls": [{"url": "https://acme.example"}]}, memory_mb=256
        )
        assert run.status == "RUNNING" and not run.finished
        later = await apify.get_run(run.id, wait_s=5)
    assert later.succeeded and later.dataset_id == run.dataset_id and later.actor_id == "moJRLRc85AitArpNN"
    assert later.finished_at is not None and "Finished!" in (later.status_message or "")
    start, poll = fake.seen
    assert (start.method, start.path) == ("POST", "/v2/acts/apify~web-scraper/runs")
    assert start.query == {"memory": "256"} and start.json() == {
        "startUrls": [{"url": "https://acme.example"}]
    }
    assert start.headers["Authorization"] == f"Bearer {KEY}"
    assert (poll.path, poll.query) == (f"/v2/actor-runs/{run.id}", {"waitForFinish": "5"})
    assert all("token" not in seen.query for seen in fake.seen)  # the header, never the URL


async def test_apify_run_actor_waits_server_side(serve: Any) -> None:
    fake = await serve(FakeApify)
    async with client(ApifyClient, fake) as apify:
        run = await apify.run_actor("apify~web-scraper", wait_s=10)
    assert run.succeeded and len(fake.seen) == 1 and fake.seen[0].query["waitForFinish"] == "10"


async def test_apify_dataset_is_paged_by_offset_and_limit(serve: Any) -> None:
    fake = await serve(FakeApify)
    fake.datasets["WkzbQMuFYuamGv3YF"] = fake.items
    async with client(ApifyClient, fake) as apify:
        items = [item async for item in apify.dataset_items("WkzbQMuFYuamGv3YF", page_size=10)]
    pages = [seen.query for seen in fake.seen if seen.path.endswith("/items")]
    assert [(p["offset"], p["limit"]) for p in pages] == [("0", "10"), ("10", "10"), ("20", "10")]
    assert all(p["format"] == "json" and p["clean"] == "true" for p in pages)
    assert [item["url"] for item in items] == [f"https://example.com/{i}" for i in range(25)]
    assert all("#debug" not in item for item in items)  # clean=1 drops hidden fields


async def test_apify_dataset_limit_stops_paging(serve: Any) -> None:
    fake = await serve(FakeApify)
    fake.datasets["janedoe~leads"] = fake.items
    async with client(ApifyClient, fake) as apify:
        items = [item async for item in apify.dataset_items("janedoe~leads", limit=12, page_size=10)]
    pages = [seen.query for seen in fake.seen if seen.path.endswith("/items")]
    assert len(items) == 12 and [(p["offset"], p["limit"]) for p in pages] == [("0", "10"), ("10", "2")]
    assert fake.seen[0].path == "/v2/datasets/janedoe~leads/items"


async def test_apify_run_and_collect(serve: Any) -> None:
    fake = await serve(FakeApify)
    async with client(ApifyClient, fake) as apify:
        items = await apify.run_and_collect("apify/web-scraper", {"maxPages": 5}, max_items=5, wait_s=5)
    assert [item["title"] for item in items] == [f"Page {i}" for i in range(5)]


async def test_apify_failed_run_says_why(serve: Any) -> None:
    fake = await serve(FakeApify)
    fake.final_status, fake.final_message = "FAILED", "The Actor process exited with code 1"
    async with client(ApifyClient, fake) as apify:
        with pytest.raises(ProviderError) as caught:
            await apify.run_and_collect("apify/web-scraper", wait_s=5)
    assert caught.value.code == "job_failed" and not caught.value.retryable
    assert "ended FAILED: The Actor process exited with code 1" in caught.value.message
    assert not any(seen.path.endswith("/items") for seen in fake.seen)


async def test_apify_run_past_its_deadline_times_out(serve: Any) -> None:
    fake = await serve(FakeApify)
    fake.run_seconds = 30
    async with client(ApifyClient, fake) as apify:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout, match=r"was still RUNNING after 0\.3 s"):
            await apify.run_and_collect("apify/web-scraper", wait_s=0.3)
    assert time.monotonic() - started < 2.0


async def test_apify_starting_a_run_is_not_retried_on_a_500_but_is_on_a_503(serve: Any) -> None:
    fake = await serve(FakeApify)
    fake.inject(500, {"error": {"type": "internal-error", "message": "Server error"}})
    async with client(ApifyClient, fake, sleep=Sleeps()) as apify:
        with pytest.raises(
            ProviderHTTPError, match="Apify failed with HTTP 500 after 1 attempt: Server error"
        ):
            await apify.run_actor("apify/web-scraper")
        assert len(fake.seen) == 1  # a retry could have started a second run
        fake.inject(503, {"error": {"type": "service-unavailable", "message": "Try again"}})
        run = await apify.run_actor("apify/web-scraper")
    assert run.status == "RUNNING" and len(fake.seen) == 3 and len(fake.runs) == 1


async def test_apify_refused_token_and_bad_memory(serve: Any) -> None:
    fake = await serve(FakeApify)
    async with client(ApifyClient, fake, key="apify_api_wrong") as apify:
        with pytest.raises(
            ProviderHTTPError,
            match=r"the Apify key was refused \(HTTP 401: Authentication token is not valid",
        ):
            await apify.run_actor("apify/web-scraper")
        with pytest.raises(InvalidRequest, match="power of 2"):
            await apify.run_actor("apify/web-scraper", memory_mb=300)
    assert len(fake.seen) == 1


# --- Twingly -------------------------------------------------------------------------------------------


async def test_twingly_search_builds_the_query_and_parses_the_xml(serve: Any) -> None:
    fake = await serve(FakeTwingly)
    since = datetime(2025, 6, 25, tzinfo=UTC)
    async with client(TwinglyClient, fake) as twingly:
        articles = await twingly.search("acme office", max_results=3, since=since)
    [seen] = fake.seen
    assert (seen.method, seen.path) == ("GET", "/blog/search/api/v3/search")
    assert seen.query == {
        "apikey": KEY,
        "q": "acme office page-size:3 start-date:2025-06-25 00:00:00",
        "format": "xml",
    }
    assert [a.url for a in articles] == [f"https://blog.example.se/acme-{i}" for i in range(3)]
    first, second = articles[0], articles[1]
    assert first.title == "Acme opens office 0" and first.text == "Acme AB opens a new office in city 0."
    assert first.published == datetime(2025, 6, 28, tzinfo=UTC) and all(
        a.published and a.published >= since for a in articles
    )
    assert (first.source, first.authors, first.language) == ("Example News", ["Jane Doe"], "en")
    assert (second.source, second.authors, second.language) == ("blog.example.se", [], "sv")


async def test_twingly_errors_come_from_its_xml(serve: Any) -> None:
    fake = await serve(FakeTwingly)
    async with client(TwinglyClient, fake, key="wrong-key") as twingly:
        with pytest.raises(ProviderHTTPError) as caught:
            await twingly.search("acme")
    assert caught.value.status == 401
    assert "the Twingly key was refused (HTTP 401: Unauthorized (code 40101))" in caught.value.message
    good = await serve(FakeTwingly)
    good.inject(200, "<twinglydata><post><url>https://x", headers={"Content-Type": "text/xml"})
    async with client(TwinglyClient, good) as twingly:
        with pytest.raises(ProviderError, match="Twingly answered a search with a body that is not XML"):
            await twingly.search("acme")


# --- ZenRows -------------------------------------------------------------------------------------------


async def test_zenrows_fetches_with_the_documented_parameters(serve: Any) -> None:
    fake = await serve(FakeZenRows)
    target = "https://shop.example.com/item/1"
    async with client(ZenRowsClient, fake) as zenrows:
        plain = await zenrows.fetch(target)
        rendered = await zenrows.fetch(target, js_render=True, premium_proxy=True)
    first, second = fake.seen
    assert (first.method, first.path, first.query) == ("GET", "/v1/", {"url": target, "apikey": KEY})
    assert second.query == {"url": target, "js_render": "true", "premium_proxy": "true", "apikey": KEY}
    assert plain.status == 200 and plain.url == target + "?ref=canonical"
    assert plain.content_type == "text/html; charset=utf-8" and b"<h1>Widget</h1>" in plain.content
    assert plain.headers["x-request-cost"] == "1" and "zr-final-url" not in plain.headers
    assert b"9.99" in rendered.content and rendered.headers["x-request-cost"] == "25"


async def test_zenrows_target_failure_and_refused_key(serve: Any) -> None:
    fake = await serve(FakeZenRows)
    async with client(ZenRowsClient, fake) as zenrows:
        with pytest.raises(ProviderHTTPError) as caught:
            await zenrows.fetch("https://gone.example.com/")
        with pytest.raises(InvalidRequest, match="http"):
            await zenrows.fetch("file:///etc/passwd")
    assert caught.value.status == 422 and not caught.value.retryable and len(fake.seen) == 1
    assert "ZenRows refused the request (HTTP 422): Could not get content (RESP001)" in caught.value.message
    async with client(ZenRowsClient, fake, key="bad") as zenrows:
        with pytest.raises(
            ProviderHTTPError, match=r"the ZenRows key was refused \(HTTP 401: Invalid API Key \(AUTH002\)"
        ):
            await zenrows.fetch("https://shop.example.com/item/1")


# --- PhantomBuster -------------------------------------------------------------------------------------


async def test_phantombuster_launch_then_poll_until_finished(serve: Any) -> None:
    fake = await serve(FakePhantomBuster)
    async with client(PhantomBusterClient, fake, poll_interval=0.01) as phantom:
        container = await phantom.launch("4421897", {"search": "acme cto"})
        rows = await phantom.result(container, wait_s=5)
    launch = fake.seen[0]
    assert (launch.method, launch.path) == ("POST", "/api/v2/agents/launch")
    assert launch.headers["X-Phantombuster-Key"] == KEY and "Authorization" not in launch.headers
    assert launch.json() == {"id": "4421897", "argument": {"search": "acme cto"}}
    polls = [seen for seen in fake.seen if seen.path == "/api/v2/containers/fetch"]
    assert len(polls) == 3 and all(
        seen.query == {"id": container} for seen in polls
    )  # starting, running, finished
    assert fake.paths()[-1] == "/api/v2/containers/fetch-result-object"
    assert [row["name"] for row in rows] == ["Lead 0", "Lead 1", "Lead 2"] and rows[0]["query"] == "acme cto"


async def test_phantombuster_crash_quotes_the_output(serve: Any) -> None:
    fake = await serve(FakePhantomBuster)
    async with client(PhantomBusterClient, fake, poll_interval=0.01) as phantom:
        with pytest.raises(ProviderError) as caught:
            await phantom.launch_and_collect("5550001", {"search": "acme"}, wait_s=5)
    assert caught.value.code == "job_failed"
    assert "ended crashed (exit code 1)" in caught.value.message
    assert "the session cookie has expired" in caught.value.message
    assert "/api/v2/containers/fetch-result-object" not in fake.paths()


async def test_phantombuster_deadline_and_unknown_agent(serve: Any) -> None:
    fake = await serve(FakePhantomBuster)
    fake.running_polls = 10_000
    async with client(PhantomBusterClient, fake, poll_interval=0.05) as phantom:
        container = await phantom.launch("4421897")
        started = time.monotonic()
        with pytest.raises(ProviderTimeout, match=f"container {container} was still running after 0.2 s"):
            await phantom.result(container, wait_s=0.2)
        assert time.monotonic() - started < 1.5
        with pytest.raises(
            ProviderHTTPError, match=r"PhantomBuster refused the request \(HTTP 404\): Agent not found"
        ):
            await phantom.launch("999")
    async with client(PhantomBusterClient, fake, key="nope") as phantom:
        with pytest.raises(ProviderHTTPError, match="the PhantomBuster key was refused"):
            await phantom.launch("4421897")


# --- the factory ---------------------------------------------------------------------------------------


async def test_clients_holds_only_the_configured_services() -> None:
    settings = CollectSettings(
        tavily=SaaSService(api_key="tvly-1"),
        zenrows=SaaSService(api_key="   "),
        phantombuster=SaaSService(api_key="pb-1", base_url="http://127.0.0.1:9/"),
    )
    assert configured(settings) == ["tavily", "phantombuster"]
    assert TavilyClient.configured(settings) and not ZenRowsClient.configured(settings)
    made = clients(settings)
    try:
        assert set(made) == {"tavily", "phantombuster"}
        assert (
            isinstance(made["tavily"], TavilyClient) and made["tavily"].base_url == "https://api.tavily.com"
        )
        assert made["phantombuster"].base_url == "http://127.0.0.1:9"
    finally:
        for saas in made.values():
            await saas.aclose()
    with pytest.raises(ConfigError, match="ZenRows is not configured: set SOPHIA_COLLECT__ZENROWS__API_KEY"):
        ZenRowsClient.from_settings(settings)
    assert clients(CollectSettings()) == {}
