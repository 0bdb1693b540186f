"""Crawls: a site's pages fetched politely by any number of workers, resumable after a crash.

A crawl is a start URL and limits (``CrawlSpec``). Each page is one job, ``crawl_page(crawl_id,
url, depth)``, on a maintained task queue: **arq over Redis** (``collect.queue_url``, else the
gateway's ``redis_url``), so every worker on every machine (``sophia collect worker``, and the one
``sophia run`` starts) shares one crawl. Without Redis the same jobs run in-process (``LocalQueue``):
the same code, but a crash loses that crawl.

The crawl's state lives beside the queue (``CrawlState``; Redis keys ``sophia:crawl:<id>:…``):

* ``seen`` — every URL ever queued; a URL enters once, so no page is queued twice, and no more
  than ``max_pages`` ever enter;
* ``fetched`` — URLs whose response was stored; a job re-run after a crash (arq re-runs a job whose
  worker died once its in-progress mark expires) finds its page there and does not fetch it again;
* ``done`` — URLs whose job finished; marking one done and counting down ``pending`` is one atomic
  step, so the crawl ends exactly when its last job does, crash or not;
* ``stats`` — fetched, unchanged, duplicates, robots (skipped), failed, retried, offsite, over_limit.

Politeness is per host across all workers: robots.txt (RFC 9309, cached a day; ``Crawl-delay``
raises the spacing), at most ``host_concurrency`` requests in flight, requests spaced by
``delay``, and a 429/503 with ``Retry-After`` puts the page back on the queue after that long and
holds the whole host for it. Sitemaps (robots.txt's, else ``/sitemap.xml``) seed the queue.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sophia.collect.crawl_state import (
    MAX_RETRIES,
    MAX_RETRY_AFTER,
    STATS,
    CrawlSpec,
    CrawlState,
    MemoryState,
    Progress,
    RedisState,
)
from sophia.collect.robots import UNREACHABLE, Robots
from sophia.collect.sitemaps import parse_sitemap
from sophia.collect.urls import normalize, origin
from sophia.errors import InvalidRequest, SophiaError
from sophia.settings import CollectSettings

if TYPE_CHECKING:
    from sophia.collect.collector import Collector

__all__ = [
    "STATS", "ArqQueue", "CrawlSpec", "CrawlState", "Crawler", "LocalQueue", "MemoryState", "Progress",
    "Queue", "RedisState", "job_id",
]  # fmt: skip

log = logging.getLogger("sophia.collect.crawl")


# -- queues ---------------------------------------------------------------------------------------


class Queue(ABC):
    """Where page jobs wait for a worker."""

    @abstractmethod
    async def enqueue(
        self, crawl_id: str, url: str, depth: int, *, attempt: int = 0, defer: float = 0.0, tag: str = ""
    ) -> None: ...

    async def close(self) -> None:  # only the in-process queue holds anything
        return None


def job_id(crawl_id: str, url: str, attempt: int, tag: str = "") -> str:
    """One job per (crawl, page, attempt): arq refuses a second job with an id it still knows."""
    return f"sophia-crawl:{crawl_id}:{hashlib.sha1(url.encode()).hexdigest()}:{attempt}{tag}"


class ArqQueue(Queue):
    """Page jobs on arq (Redis): any worker on any machine takes them (``sophia collect worker``)."""

    def __init__(self, pool: Any, queue_name: str) -> None:
        self.pool = pool
        self.queue_name = queue_name

    async def enqueue(
        self, crawl_id: str, url: str, depth: int, *, attempt: int = 0, defer: float = 0.0, tag: str = ""
    ) -> None:
        await self.pool.enqueue_job(
            "crawl_page",
            crawl_id,
            url,
            depth,
            attempt,
            _job_id=job_id(crawl_id, url, attempt, tag),
            _queue_name=self.queue_name,
            _defer_by=defer or None,
        )


class LocalQueue(Queue):
    """Page jobs run by this process (no Redis): ``workers`` at a time."""

    def __init__(self, workers: int) -> None:
        self.run: Callable[[str, str, int, int], Awaitable[None]] | None = None
        self._sem = asyncio.Semaphore(workers)
        self._tasks: set[asyncio.Task[None]] = set()

    async def enqueue(
        self, crawl_id: str, url: str, depth: int, *, attempt: int = 0, defer: float = 0.0, tag: str = ""
    ) -> None:
        assert self.run is not None, "LocalQueue.run is set by the Crawler"
        run = self.run

        async def job() -> None:
            if defer:
                await asyncio.sleep(defer)
            async with self._sem:
                try:
                    await run(crawl_id, url, depth, attempt)
                except Exception:  # a job's failure is counted by the crawler; never kill the loop
                    log.exception("crawl job failed: %s", url)

        task = asyncio.create_task(job())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# -- the crawler ----------------------------------------------------------------------------------


class Crawler:
    """Starts crawls, runs their page jobs (as a worker) and reports their progress."""

    def __init__(
        self, collector: Collector, state: CrawlState, queue: Queue, settings: CollectSettings
    ) -> None:
        self.collector = collector
        self.state = state
        self.queue = queue
        self.settings = settings
        if isinstance(queue, LocalQueue):
            queue.run = self.process

    async def start(self, spec: CrawlSpec) -> str:
        crawl_id = uuid.uuid4().hex[:16]
        await self.state.create(crawl_id, spec)
        await self.state.claim(crawl_id, [spec.start_url], spec.max_pages)
        await self.queue.enqueue(crawl_id, spec.start_url, 0)
        return crawl_id

    async def cancel(self, crawl_id: str) -> Progress:
        progress = await self.state.progress(crawl_id)
        if progress is None:
            raise InvalidRequest(f"no crawl {crawl_id!r}", code="not_found", param="job_id")
        if progress.status == "running":
            await self.state.set_status(crawl_id, "cancelled")
        return await self.progress(crawl_id)

    async def progress(self, crawl_id: str) -> Progress:
        progress = await self.state.progress(crawl_id)
        if progress is None:
            raise InvalidRequest(f"no crawl {crawl_id!r}", code="not_found", param="job_id")
        return progress

    async def wait(
        self,
        crawl_id: str,
        timeout: float,  # noqa: ASYNC109 - the crawl goes on after the wait; only the waiting stops
        on_progress: Callable[[Progress], Awaitable[None]] | None = None,
        *,
        every: float = 0.5,
    ) -> Progress:
        """Progress until the crawl finishes or ``timeout`` passes (it goes on either way)."""
        deadline = time.monotonic() + timeout
        last: tuple[int, int] | None = None
        while True:
            progress = await self.progress(crawl_id)
            mark = (progress.seen, progress.pending)
            if on_progress is not None and mark != last:
                await on_progress(progress)
                last = mark
            if progress.finished or time.monotonic() >= deadline:
                return progress
            await asyncio.sleep(min(every, max(0.0, deadline - time.monotonic())))

    # -- one page ---------------------------------------------------------------------------------

    async def process(self, crawl_id: str, url: str, depth: int, attempt: int = 0) -> None:
        """One page job. Safe to run again after a crash: a stored page is not fetched twice."""
        spec = await self.state.spec(crawl_id)
        if spec is None or await self.state.is_done(crawl_id, url):
            return
        if await self.state.status(crawl_id) == "cancelled":
            await self.state.finish(crawl_id, url)
            return
        try:
            # inside the queue's own job timeout, so that a page that takes too long still finishes
            async with asyncio.timeout(max(1.0, self.settings.job_timeout * 0.9)):
                links = await self._page(crawl_id, spec, url, depth, attempt)
        except _Requeued:
            return
        except Exception as exc:  # noqa: BLE001 - counted and reported; the crawl goes on
            await self.state.count(crawl_id, "failed")
            reason = (
                exc.message
                if isinstance(exc, SophiaError)
                else "took longer than the job timeout"
                if isinstance(exc, TimeoutError)
                else type(exc).__name__
            )
            await self.state.error(crawl_id, f"{url}: {reason}")
            links = []
        if depth == 0 and spec.sitemaps:
            links = [*links, *await self._sitemap_urls(crawl_id, spec)]
        if links and depth < spec.max_depth and await self.state.status(crawl_id) == "running":
            await self._enqueue(crawl_id, spec, links, depth + 1)
        await self.state.finish(crawl_id, url)

    async def _page(self, crawl_id: str, spec: CrawlSpec, url: str, depth: int, attempt: int) -> list[str]:
        if await self.state.was_fetched(crawl_id, url):  # a re-run: the response was kept before the crash
            stored = await self.collector.store.get(url)
            return list(stored.extracted.get("links") or []) if stored else []
        host = origin(url)
        robots = await self._robots(host) if spec.respect_robots else None
        if robots is not None and not robots.allowed(url, self.settings.robots_agent):
            await self.state.count(crawl_id, "robots")
            return []
        spacing = max(spec.delay, (robots.crawl_delay(self.settings.robots_agent) or 0.0) if robots else 0.0)
        token = uuid.uuid4().hex
        patience = (
            self.settings.job_timeout / 3
        )  # longer waits go back on the queue: no job times out waiting
        if not await self._enter(host, token, patience):
            await self.queue.enqueue(crawl_id, url, depth, attempt=attempt, defer=1.0, tag=f"w{token[:8]}")
            raise _Requeued
        try:
            wait = await self.state.host_slot(host, spacing)
            if wait > patience:
                await self.queue.enqueue(
                    crawl_id, url, depth, attempt=attempt, defer=wait, tag=f"w{token[:8]}"
                )
                raise _Requeued
            if wait:
                await asyncio.sleep(wait)
                if await self.state.status(crawl_id) == "cancelled":
                    return []
            page = await self.collector.fetch_page(url, source=spec.source, metadata={"crawl": crawl_id})
        finally:
            await self.state.host_leave(host, token)
        if page.status in (429, 503) and attempt < MAX_RETRIES:
            retry_after = min(
                MAX_RETRY_AFTER, page.retry_after if page.retry_after is not None else 2.0**attempt
            )
            await self.state.host_slot(host, spacing, hold=retry_after)
            await self.state.count(crawl_id, "retried")
            await self.queue.enqueue(crawl_id, url, depth, attempt=attempt + 1, defer=retry_after)
            raise _Requeued
        await self.state.mark_fetched(crawl_id, url)
        if page.status >= 400:
            await self.state.count(crawl_id, "failed")
            await self.state.error(crawl_id, f"{url}: HTTP {page.status}")
            return []
        stat = "duplicates" if page.duplicate_of else "fetched" if page.changed else "unchanged"
        await self.state.count(crawl_id, stat)
        return page.links

    async def _enter(self, host: str, token: str, patience: float) -> bool:
        """A request place at ``host`` within ``patience`` seconds, or False."""
        delay, deadline = 0.01, time.monotonic() + patience
        lease = self.settings.timeout + 1.0  # no request outlives the fetch timeout
        while not await self.state.host_enter(host, self.settings.host_concurrency, lease, token):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(0.5, delay * 2)
        return True

    async def _enqueue(self, crawl_id: str, spec: CrawlSpec, links: list[str], depth: int) -> None:
        admitted = []
        for link in links:
            try:
                url = normalize(link)
            except InvalidRequest:
                continue
            if spec.admits(url):
                admitted.append(url)
            else:
                await self.state.count(crawl_id, "offsite")
        for url in await self.state.claim(crawl_id, list(dict.fromkeys(admitted)), spec.max_pages):
            await self.queue.enqueue(crawl_id, url, depth)

    async def _robots(self, host: str) -> Robots:
        kept = await self.state.robots(host)
        if kept is None:
            try:
                result = await self.collector.fetcher.fetch(f"{host}/robots.txt")
                kept = (result.status, result.content.decode("utf-8", "replace"))
            except SophiaError:
                kept = (UNREACHABLE, "")
            await self.state.keep_robots(host, *kept)
        return Robots.parse(kept[1], status=kept[0])

    async def _sitemap_urls(self, crawl_id: str, spec: CrawlSpec) -> list[str]:
        """The start host's sitemap URLs (robots.txt's Sitemap lines, else /sitemap.xml), one index level deep."""
        host = origin(spec.start_url)
        robots = await self._robots(host)
        todo = list(robots.sitemaps) or [f"{host}/sitemap.xml"]
        urls: list[str] = []
        for depth in range(2):
            children: list[str] = []
            for sitemap_url in todo[:10]:
                try:
                    result = await self.collector.fetcher.fetch(sitemap_url)
                except SophiaError as exc:
                    await self.state.error(crawl_id, f"{sitemap_url}: {exc.message}")
                    continue
                if result.status != 200:
                    continue
                parsed = parse_sitemap(result.content, result.url)
                urls.extend(u.loc for u in parsed.urls)
                children.extend(parsed.sitemaps)
            todo = children if depth == 0 else []
        return urls[: spec.max_pages]


class _Requeued(Exception):
    """The page went back on the queue (429/503 with Retry-After): the job ends without finishing it."""
