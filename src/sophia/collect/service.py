"""The collector and the crawler as services of the process container: ``await services.get(COLLECTOR)``.

One ``Collector`` per process: its page store (``collect.store_url``, SQLite in the data folder by
default), its safe fetcher (``collect.allow`` opens named internal sources) and the process's
knowledge room, where every collected page is indexed. ``CRAWLER`` adds crawls: on arq over Redis
(``collect.queue_url``, else ``storage.redis_url``) with a worker in this process when
``collect.run_worker`` is on, else in-process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sophia.container import Service, Services
from sophia.knowledge.service import KNOWLEDGE
from sophia.settings import Settings

log = logging.getLogger("sophia.collect")

if TYPE_CHECKING:
    from sophia.collect.collector import Collector
    from sophia.collect.crawl import Crawler


async def _start(services: Services) -> Collector:
    from sophia.collect.collector import Collector

    settings = services.settings
    knowledge = await services.get(KNOWLEDGE)
    return await Collector.open(settings.collect, settings.data_dir, knowledge)


async def _stop(collector: Collector) -> None:
    await collector.close()


#: the process's collector
COLLECTOR: Service[Collector] = Service("collector", _start, _stop)


class CrawlService:
    """The crawler, its queue and (``collect.run_worker``) this process's arq worker."""

    def __init__(self, crawler: Crawler, worker: Any = None, redis: Any = None) -> None:
        self.crawler = crawler
        self.worker = worker
        self.redis = redis
        self._task: asyncio.Task[None] | None = None

    @property
    def shared(self) -> bool:
        """True when crawls run on Redis (every worker shares them, they survive a restart)."""
        return self.redis is not None

    def start_worker(self) -> None:
        if self.worker is not None and self._task is None:
            self._task = asyncio.create_task(self.worker.async_run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.worker is not None:
            await stop_worker(self.worker)
        await self.crawler.queue.close()
        if self.redis is not None:
            await self.redis.aclose(close_connection_pool=True)


def queue_url(settings: Settings) -> str | None:
    return settings.collect.queue_url or settings.storage.redis_url


async def stop_worker(worker: Any) -> None:
    """Stop an arq worker made by ``make_worker`` without closing the Redis pool it shares with the crawler
    (arq's own ``Worker.close`` closes it): jobs in flight are cancelled and run again elsewhere."""
    tasks = [
        t
        for t in list(worker.tasks.values()) + list(getattr(worker, "job_tasks", {}).values())
        if not t.done()
    ]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await worker.pool.delete(worker.health_check_key)


async def run_until_idle(worker: Any, *, quiet: float = 1.0) -> None:
    """Run an arq worker until its queue has been empty, with no job running, for ``quiet`` seconds.

    arq's own burst mode stops at the first moment the queue is empty, even while a running job is
    about to queue the pages it found; a crawl would stop half-way.
    """
    task = asyncio.create_task(worker.async_run())
    idle_since: float | None = None
    loop = asyncio.get_running_loop()
    try:
        while not task.done():
            await asyncio.sleep(0.1)
            busy = any(not t.done() for t in worker.tasks.values())
            if busy or await worker.pool.zcard(worker.queue_name):
                idle_since = None
            elif idle_since is None:
                idle_since = loop.time()
            elif loop.time() - idle_since >= quiet:
                break
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


def make_worker(crawler: Crawler, pool: Any, settings: Settings) -> Any:
    """An arq worker that runs crawl page jobs with ``crawler``."""
    from arq import func
    from arq.worker import Worker

    async def crawl_page(ctx: dict[str, Any], crawl_id: str, url: str, depth: int, attempt: int = 0) -> None:
        await crawler.process(crawl_id, url, depth, attempt)

    collect = settings.collect
    return Worker(
        functions=[func(crawl_page, name="crawl_page", timeout=collect.job_timeout, max_tries=5)],
        redis_pool=pool,
        queue_name=collect.queue_name,
        max_jobs=collect.workers,
        keep_result=7 * 86_400,  # a finished page's job id stays known: it is not queued again
        handle_signals=False,
        poll_delay=0.05,
    )


async def open_crawler(services: Services, *, worker: bool) -> CrawlService:
    from sophia.collect.crawl import ArqQueue, Crawler, LocalQueue, MemoryState, RedisState

    settings = services.settings
    collector = await services.get(COLLECTOR)
    url = queue_url(settings)
    if url is None:
        return CrawlService(
            Crawler(collector, MemoryState(), LocalQueue(settings.collect.workers), settings.collect)
        )
    from arq.connections import ArqRedis
    from redis.asyncio import ConnectionPool

    pool = ArqRedis(connection_pool=ConnectionPool.from_url(url))
    crawler = Crawler(
        collector, RedisState(pool), ArqQueue(pool, settings.collect.queue_name), settings.collect
    )
    service = CrawlService(crawler, make_worker(crawler, pool, settings) if worker else None, pool)
    return service


async def _start_crawler(services: Services) -> CrawlService:
    service = await open_crawler(services, worker=services.settings.collect.run_worker)
    service.start_worker()
    return service


async def _stop_crawler(service: CrawlService) -> None:
    await service.close()


#: the process's crawler (and, with Redis and ``collect.run_worker``, a crawl worker)
CRAWLER: Service[CrawlService] = Service("crawler", _start_crawler, _stop_crawler)


class FeedSchedule:
    """Polls the feeds that are due (``collect.feeds`` and any added since) every ``every`` seconds."""

    def __init__(self, collector: Collector, every: float) -> None:
        self.collector = collector
        self.every = every
        self.polls = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.collector.poll_feeds()
                self.polls += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("polling the feeds failed")
            await asyncio.sleep(self.every)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _start_feeds(services: Services) -> FeedSchedule:
    settings = services.settings.collect
    return FeedSchedule(await services.get(COLLECTOR), every=min(60.0, settings.feed_interval))


async def _stop_feeds(schedule: FeedSchedule) -> None:
    await schedule.close()


#: the news schedule a served Data server runs (feeds are polled when due, with backoff)
FEED_SCHEDULE: Service[FeedSchedule] = Service("feed-schedule", _start_feeds, _stop_feeds)
