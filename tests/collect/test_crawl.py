"""Crawls against the local test site: in-process, on arq over the real Redis, with two workers, and
through a kill -9 of the worker mid-crawl."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer

from collect.site import Site
from sophia.collect.crawl import CrawlSpec
from sophia.collect.service import COLLECTOR, CRAWLER, make_worker, open_crawler, run_until_idle, stop_worker
from sophia.container import Services
from sophia.settings import load_settings

REDIS = "redis://127.0.0.1:6379/0"
ALL_PAGES = {"/", "/a", "/b", "/private/open", "/dup", "/busy", "/orphan", "/a/1", "/a/2", "/a/3", "/b/1"}


def redis_up() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not redis_up(), reason="Redis is not running on 127.0.0.1:6379")


def conf(tmp_path: Path, server: HTTPServer, **collect: object) -> dict[str, object]:
    return {
        "home": str(tmp_path / "home"),
        "cache": {"enabled": False},
        "collect": {
            "allow": [f"localhost:{server.port}", f"127.0.0.1:{server.port}"],
            "page_near_duplicate": 0.995,  # the site's pages share a vocabulary: only exact copies are copies here
            "delay": 0.0,
            **collect,
        },
    }


@pytest.fixture
async def local(tmp_path: Path, httpserver: HTTPServer) -> AsyncIterator[Services]:
    services = Services(load_settings(**conf(tmp_path, httpserver)))  # type: ignore[arg-type]
    await services.open()
    yield services
    await services.close()


def spec(site: Site, **kw: object) -> CrawlSpec:
    return CrawlSpec(site.url("/"), **{"max_pages": 50, "max_depth": 3, "delay": 0.0, **kw})  # type: ignore[arg-type]


def check_coverage(site: Site, stats: dict[str, int]) -> None:
    fetched = site.fetched()
    assert set(fetched) == ALL_PAGES | {"/missing"}  # never /private/secret (robots), never offsite
    assert all(n == 1 for path, n in fetched.items() if path != "/busy"), fetched
    assert fetched["/busy"] == 2  # a 429 with Retry-After, then the page
    assert stats["fetched"] == len(ALL_PAGES) - 1 and stats["duplicates"] == 1  # /dup is /a/1
    assert stats["robots"] == 1 and stats["failed"] == 1 and stats["retried"] == 1 and stats["offsite"] >= 1


async def test_an_in_process_crawl_covers_the_site_politely(local: Services, httpserver: HTTPServer) -> None:
    site = Site(httpserver)
    service = await local.get(CRAWLER)
    assert not service.shared
    crawl_id = await service.crawler.start(spec(site))
    seen: list[int] = []

    async def note(progress: object) -> None:
        seen.append(progress.seen)  # type: ignore[attr-defined]

    done = await service.crawler.wait(crawl_id, timeout=60, on_progress=note)
    assert done.status == "done" and done.pending == 0 and len(seen) >= 2
    check_coverage(site, done.stats)
    hits = await (await local.get(COLLECTOR)).search("Orphan page", k=3, mode="text")
    assert any(h.citation.url == site.url("/orphan") for h in hits)  # the sitemap's page was indexed


async def test_limits_hold_and_a_cancelled_crawl_stops(local: Services, httpserver: HTTPServer) -> None:
    site = Site(httpserver)
    service = await local.get(CRAWLER)
    limited = await service.crawler.wait(
        await service.crawler.start(spec(site, max_pages=4, sitemaps=False)), 60
    )
    assert limited.seen == 4 and limited.stats["over_limit"] > 0
    shallow_site = Site(httpserver)
    shallow = await service.crawler.wait(
        await service.crawler.start(spec(shallow_site, max_depth=0, sitemaps=False)), 60
    )
    assert shallow.seen == 1 and limited.status == shallow.status == "done"

    slow = await service.crawler.start(spec(site, delay=0.5, sitemaps=False))
    await asyncio.sleep(0.3)
    cancelled = await service.crawler.cancel(slow)
    assert cancelled.status == "cancelled"
    final = await service.crawler.wait(slow, 30)
    assert final.status == "cancelled" and final.pending == 0 and final.stats["fetched"] < len(ALL_PAGES)


async def test_robots_5xx_disallows_and_4xx_allows(local: Services, httpserver: HTTPServer) -> None:
    site = Site(httpserver)
    service = await local.get(CRAWLER)
    site.robots = ""
    httpserver.clear_all_handlers()  # a robots.txt that answers 503
    httpserver.expect_request("/robots.txt").respond_with_data("down", status=503)
    httpserver.expect_request("/").respond_with_data(site.pages["/"], content_type="text/html")
    blocked = await service.crawler.wait(await service.crawler.start(spec(site, sitemaps=False)), 30)
    assert blocked.stats["robots"] == 1 and blocked.stats["fetched"] == 0


@needs_redis
async def test_two_arq_workers_share_one_crawl_on_redis(tmp_path: Path, httpserver: HTTPServer) -> None:
    site = Site(httpserver, slow=0.02)
    queue = f"sophia:test:{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        **conf(tmp_path, httpserver, queue_url=REDIS, queue_name=queue, run_worker=False)
    )  # type: ignore[arg-type]
    services = Services(settings)
    await services.open()
    try:
        service = await services.get(CRAWLER)
        assert service.shared and service.worker is None
        crawl_id = await service.crawler.start(spec(site))
        extra = await open_crawler(services, worker=False)
        workers = [make_worker(s.crawler, s.redis, settings) for s in (service, extra)]
        await asyncio.wait_for(asyncio.gather(*(run_until_idle(w) for w in workers)), 90)
        done = await service.crawler.progress(crawl_id)
        assert done.status == "done" and done.pending == 0
        check_coverage(site, done.stats)
        assert all(w.jobs_complete > 0 for w in workers), [w.jobs_complete for w in workers]
        for w in workers:
            await stop_worker(w)
        await extra.close()
    finally:
        await services.close()


@needs_redis
def test_a_worker_killed_mid_crawl_resumes_without_refetching_or_losing_pages(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    site = Site(httpserver, slow=0.25)
    queue = f"sophia:test:{uuid.uuid4().hex[:8]}"
    config = conf(
        tmp_path, httpserver, queue_url=REDIS, queue_name=queue, job_timeout=6.0, timeout=2.0, workers=2
    )
    path = tmp_path / "sophia.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "SOPHIA_CONFIG": str(path)}

    async def start() -> str:
        services = Services(load_settings(str(path)))
        await services.open()
        try:
            service = await services.get(CRAWLER)
            return await service.crawler.start(spec(site))
        finally:
            await services.close()

    crawl_id = asyncio.run(start())
    command = [sys.executable, "-m", "sophia", "collect", "worker"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(site.fetched()) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = site.fetched()
    assert 4 <= sum(before.values()) < len(ALL_PAGES)  # killed mid-crawl

    second = subprocess.run([*command, "--burst"], env=env, timeout=120, capture_output=True)
    assert second.returncode == 0, second.stderr.decode()[-2000:]

    async def final() -> object:
        services = Services(load_settings(str(path)))
        await services.open()
        try:
            service = await services.get(CRAWLER)
            return await service.crawler.progress(crawl_id)
        finally:
            await services.close()

    progress = asyncio.run(final())
    after = site.fetched()
    assert progress.status == "done" and progress.pending == 0  # type: ignore[attr-defined]
    assert set(after) == ALL_PAGES | {"/missing"}, (progress.errors, progress.stats, before, after)  # type: ignore[attr-defined]
    twice = {p for p, n in after.items() if n > 1 and p != "/busy"}
    # only a request cut by the kill may be made again: never a page whose response was kept
    assert len(twice) <= 2, after
    stats = progress.stats  # type: ignore[attr-defined]
    # a page whose response was kept just before the kill but not yet marked is fetched again: unchanged
    assert stats["fetched"] + stats["duplicates"] + stats["unchanged"] == len(ALL_PAGES), stats
    assert stats["unchanged"] <= len(twice)
