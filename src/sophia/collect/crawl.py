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
import json
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sophia.collect.robots import UNREACHABLE, Robots
from sophia.collect.sitemaps import parse_sitemap
from sophia.collect.urls import normalize, origin
from sophia.errors import InvalidRequest, SophiaError
from sophia.settings import CollectSettings

if TYPE_CHECKING:
    from sophia.collect.collector import Collector

log = logging.getLogger("sophia.collect.crawl")

PREFIX = "sophia:crawl:"
ROBOTS_TTL = 86_400
MAX_RETRIES = 3
MAX_RETRY_AFTER = 600.0
STATS = ("fetched", "unchanged", "duplicates", "robots", "failed", "retried", "offsite", "over_limit")


@dataclass(frozen=True)
class CrawlSpec:
    """What to crawl: ``start_url`` and what it may reach."""

    start_url: str
    max_pages: int = 200
    max_depth: int = 3
    same_origin: bool = True
    delay: float = 1.0
    source: str = "web"
    sitemaps: bool = True
    respect_robots: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_url", normalize(self.start_url))
        if self.max_pages < 1 or self.max_depth < 0 or self.delay < 0:
            raise InvalidRequest("max_pages must be at least 1, max_depth and delay at least 0")

    def admits(self, url: str) -> bool:
        return not self.same_origin or origin(url) == origin(self.start_url)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> CrawlSpec:
        return cls(**json.loads(text))


@dataclass
class Progress:
    """A crawl as its workers left it: ``status`` is running, done or cancelled."""

    crawl_id: str
    status: str
    start_url: str
    seen: int
    pending: int
    stats: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    started_at: float = 0.0
    updated_at: float = 0.0

    @property
    def finished(self) -> bool:
        """Done, or cancelled with no job left running."""
        return self.status == "done" or (self.status == "cancelled" and self.pending == 0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- state ----------------------------------------------------------------------------------------


class CrawlState(ABC):
    """Where a crawl's frontier, counters and the per-host politeness live."""

    @abstractmethod
    async def create(self, crawl_id: str, spec: CrawlSpec) -> None: ...
    @abstractmethod
    async def spec(self, crawl_id: str) -> CrawlSpec | None: ...
    @abstractmethod
    async def status(self, crawl_id: str) -> str | None: ...
    @abstractmethod
    async def set_status(self, crawl_id: str, status: str) -> None: ...
    @abstractmethod
    async def claim(self, crawl_id: str, urls: list[str], max_pages: int) -> list[str]:
        """The URLs of ``urls`` new to the crawl, added to ``seen`` (and ``pending``) while under ``max_pages``."""

    @abstractmethod
    async def mark_fetched(self, crawl_id: str, url: str) -> None: ...
    @abstractmethod
    async def was_fetched(self, crawl_id: str, url: str) -> bool: ...
    @abstractmethod
    async def finish(self, crawl_id: str, url: str) -> int:
        """Mark ``url`` done: the jobs still pending, or -1 when it was done already (a re-run)."""

    @abstractmethod
    async def is_done(self, crawl_id: str, url: str) -> bool: ...
    @abstractmethod
    async def count(self, crawl_id: str, stat: str, n: int = 1) -> None: ...
    @abstractmethod
    async def error(self, crawl_id: str, message: str) -> None: ...
    @abstractmethod
    async def progress(self, crawl_id: str) -> Progress | None: ...
    @abstractmethod
    async def host_slot(self, host: str, spacing: float, hold: float = 0.0) -> float:
        """Reserve the host's next request slot: seconds to wait before it (``hold`` pushes it later)."""

    @abstractmethod
    async def host_enter(self, host: str, limit: int, lease: float, token: str) -> bool:
        """Take one of the host's ``limit`` request places for at most ``lease`` seconds (a crashed
        worker's place frees itself)."""

    @abstractmethod
    async def host_leave(self, host: str, token: str) -> None: ...
    @abstractmethod
    async def robots(self, host: str) -> tuple[int, str] | None: ...
    @abstractmethod
    async def keep_robots(self, host: str, status: int, text: str) -> None: ...


_CLAIM = """
local added = {}
for i, url in ipairs(ARGV) do
  if i > 1 then
    if redis.call('SISMEMBER', KEYS[1], url) == 0 then
      if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[1]) then
        redis.call('SADD', KEYS[1], url)
        redis.call('INCR', KEYS[2])
        table.insert(added, url)
      else
        redis.call('HINCRBY', KEYS[3], 'over_limit', 1)
      end
    end
  end
end
redis.call('HSET', KEYS[4], 'updated_at', ARGV[#ARGV + 1] or '0')
return added
"""

_FINISH = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  local left = redis.call('DECR', KEYS[2])
  redis.call('HSET', KEYS[3], 'updated_at', ARGV[2])
  if left <= 0 and redis.call('GET', KEYS[4]) == 'running' then
    redis.call('SET', KEYS[4], 'done')
  end
  return left
end
return -1
"""

_SLOT = """
local now = tonumber(ARGV[1])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(nxt, now + tonumber(ARGV[3]))
redis.call('SET', KEYS[1], tostring(slot + tonumber(ARGV[2])), 'EX', 3600)
return tostring(slot - now)
"""

_ENTER = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 60)
return 1
"""


class RedisState(CrawlState):
    """The state in Redis: shared by every worker; Lua scripts make each step atomic."""

    def __init__(self, redis: Any, *, ttl: int = 7 * 86_400) -> None:
        self.redis = redis
        self.ttl = ttl
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._slot = redis.register_script(_SLOT)
        self._enter = redis.register_script(_ENTER)

    @staticmethod
    def _k(crawl_id: str, name: str) -> str:
        return f"{PREFIX}{crawl_id}:{name}"

    async def create(self, crawl_id: str, spec: CrawlSpec) -> None:
        now = str(time.time())
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._k(crawl_id, "spec"), spec.to_json(), ex=self.ttl)
            pipe.set(self._k(crawl_id, "status"), "running", ex=self.ttl)
            pipe.set(self._k(crawl_id, "pending"), 0, ex=self.ttl)
            pipe.hset(self._k(crawl_id, "meta"), mapping={"started_at": now, "updated_at": now})
            pipe.expire(self._k(crawl_id, "meta"), self.ttl)
            await pipe.execute()

    async def spec(self, crawl_id: str) -> CrawlSpec | None:
        raw = await self.redis.get(self._k(crawl_id, "spec"))
        return None if raw is None else CrawlSpec.from_json(raw)

    async def status(self, crawl_id: str) -> str | None:
        raw = await self.redis.get(self._k(crawl_id, "status"))
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)

    async def set_status(self, crawl_id: str, status: str) -> None:
        await self.redis.set(self._k(crawl_id, "status"), status, ex=self.ttl)

    async def claim(self, crawl_id: str, urls: list[str], max_pages: int) -> list[str]:
        if not urls:
            return []
        keys = [self._k(crawl_id, n) for n in ("seen", "pending", "stats", "meta")]
        added = await self._claim(keys=keys, args=[max_pages, *urls])
        for name in ("seen", "stats"):
            await self.redis.expire(self._k(crawl_id, name), self.ttl)
        return [u.decode() if isinstance(u, bytes) else str(u) for u in added]

    async def mark_fetched(self, crawl_id: str, url: str) -> None:
        await self.redis.sadd(self._k(crawl_id, "fetched"), url)
        await self.redis.expire(self._k(crawl_id, "fetched"), self.ttl)

    async def was_fetched(self, crawl_id: str, url: str) -> bool:
        return bool(await self.redis.sismember(self._k(crawl_id, "fetched"), url))

    async def finish(self, crawl_id: str, url: str) -> int:
        keys = [self._k(crawl_id, n) for n in ("done", "pending", "meta", "status")]
        left = int(await self._finish(keys=keys, args=[url, str(time.time())]))
        await self.redis.expire(self._k(crawl_id, "done"), self.ttl)
        return left

    async def is_done(self, crawl_id: str, url: str) -> bool:
        return bool(await self.redis.sismember(self._k(crawl_id, "done"), url))

    async def count(self, crawl_id: str, stat: str, n: int = 1) -> None:
        await self.redis.hincrby(self._k(crawl_id, "stats"), stat, n)

    async def error(self, crawl_id: str, message: str) -> None:
        key = self._k(crawl_id, "errors")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, message[:500])
            pipe.ltrim(key, -50, -1)
            pipe.expire(key, self.ttl)
            await pipe.execute()

    async def progress(self, crawl_id: str) -> Progress | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in ("spec", "status", "pending"):
                pipe.get(self._k(crawl_id, name))
            pipe.scard(self._k(crawl_id, "seen"))
            pipe.hgetall(self._k(crawl_id, "stats"))
            pipe.hgetall(self._k(crawl_id, "meta"))
            pipe.lrange(self._k(crawl_id, "errors"), -10, -1)
            spec, status, pending, seen, stats, meta, errors = await pipe.execute()
        if spec is None:
            return None

        def text(v: Any) -> str:
            return v.decode() if isinstance(v, bytes) else str(v)

        counts = {text(k): int(v) for k, v in (stats or {}).items()}
        meta = {text(k): float(v) for k, v in (meta or {}).items()}
        return Progress(
            crawl_id=crawl_id,
            status=text(status) if status is not None else "done",
            start_url=CrawlSpec.from_json(spec).start_url,
            seen=int(seen),
            pending=max(0, int(pending or 0)),
            stats={s: counts.get(s, 0) for s in STATS},
            errors=[text(e) for e in errors or []],
            started_at=meta.get("started_at", 0.0),
            updated_at=meta.get("updated_at", 0.0),
        )

    async def host_slot(self, host: str, spacing: float, hold: float = 0.0) -> float:
        wait = await self._slot(keys=[f"{PREFIX}host:{host}:next"], args=[time.time(), spacing, hold])
        return max(0.0, float(wait))

    async def host_enter(self, host: str, limit: int, lease: float, token: str) -> bool:
        args = [time.time(), limit, lease, token]
        return bool(int(await self._enter(keys=[f"{PREFIX}host:{host}:busy"], args=args)))

    async def host_leave(self, host: str, token: str) -> None:
        await self.redis.zrem(f"{PREFIX}host:{host}:busy", token)

    async def robots(self, host: str) -> tuple[int, str] | None:
        raw = await self.redis.get(f"{PREFIX}robots:{host}")
        if raw is None:
            return None
        status, text = json.loads(raw)
        return int(status), str(text)

    async def keep_robots(self, host: str, status: int, text: str) -> None:
        await self.redis.set(f"{PREFIX}robots:{host}", json.dumps([status, text]), ex=ROBOTS_TTL)


class MemoryState(CrawlState):
    """The state in this process (no Redis): the same steps, gone when the process ends."""

    def __init__(self) -> None:
        self.crawls: dict[str, dict[str, Any]] = {}
        self.hosts_next: dict[str, float] = {}
        self.hosts_busy: dict[str, dict[str, float]] = {}
        self.robots_cache: dict[str, tuple[float, int, str]] = {}

    def _c(self, crawl_id: str) -> dict[str, Any]:
        return self.crawls[crawl_id]

    async def create(self, crawl_id: str, spec: CrawlSpec) -> None:
        now = time.time()
        self.crawls[crawl_id] = {
            "spec": spec, "status": "running", "pending": 0, "seen": set(), "fetched": set(), "done": set(),
            "stats": dict.fromkeys(STATS, 0), "errors": [], "started_at": now, "updated_at": now,
        }  # fmt: skip

    async def spec(self, crawl_id: str) -> CrawlSpec | None:
        crawl = self.crawls.get(crawl_id)
        return None if crawl is None else crawl["spec"]

    async def status(self, crawl_id: str) -> str | None:
        crawl = self.crawls.get(crawl_id)
        return None if crawl is None else crawl["status"]

    async def set_status(self, crawl_id: str, status: str) -> None:
        self._c(crawl_id)["status"] = status

    async def claim(self, crawl_id: str, urls: list[str], max_pages: int) -> list[str]:
        crawl, added = self._c(crawl_id), []
        for url in urls:
            if url in crawl["seen"]:
                continue
            if len(crawl["seen"]) >= max_pages:
                crawl["stats"]["over_limit"] += 1
                continue
            crawl["seen"].add(url)
            crawl["pending"] += 1
            added.append(url)
        crawl["updated_at"] = time.time()
        return added

    async def mark_fetched(self, crawl_id: str, url: str) -> None:
        self._c(crawl_id)["fetched"].add(url)

    async def was_fetched(self, crawl_id: str, url: str) -> bool:
        return url in self._c(crawl_id)["fetched"]

    async def finish(self, crawl_id: str, url: str) -> int:
        crawl = self._c(crawl_id)
        if url in crawl["done"]:
            return -1
        crawl["done"].add(url)
        crawl["pending"] -= 1
        crawl["updated_at"] = time.time()
        if crawl["pending"] <= 0 and crawl["status"] == "running":
            crawl["status"] = "done"
        return int(crawl["pending"])

    async def is_done(self, crawl_id: str, url: str) -> bool:
        return url in self._c(crawl_id)["done"]

    async def count(self, crawl_id: str, stat: str, n: int = 1) -> None:
        stats = self._c(crawl_id)["stats"]
        stats[stat] = stats.get(stat, 0) + n

    async def error(self, crawl_id: str, message: str) -> None:
        errors = self._c(crawl_id)["errors"]
        errors.append(message[:500])
        del errors[:-50]

    async def progress(self, crawl_id: str) -> Progress | None:
        crawl = self.crawls.get(crawl_id)
        if crawl is None:
            return None
        return Progress(
            crawl_id=crawl_id,
            status=crawl["status"],
            start_url=crawl["spec"].start_url,
            seen=len(crawl["seen"]),
            pending=max(0, crawl["pending"]),
            stats=dict(crawl["stats"]),
            errors=list(crawl["errors"][-10:]),
            started_at=crawl["started_at"],
            updated_at=crawl["updated_at"],
        )

    async def host_slot(self, host: str, spacing: float, hold: float = 0.0) -> float:
        now = time.time()
        slot = max(self.hosts_next.get(host, 0.0), now + hold)
        self.hosts_next[host] = slot + spacing
        return max(0.0, slot - now)

    async def host_enter(self, host: str, limit: int, lease: float, token: str) -> bool:
        now = time.time()
        places = {t: until for t, until in self.hosts_busy.get(host, {}).items() if until > now}
        self.hosts_busy[host] = places
        if len(places) >= limit:
            return False
        places[token] = now + lease
        return True

    async def host_leave(self, host: str, token: str) -> None:
        self.hosts_busy.get(host, {}).pop(token, None)

    async def robots(self, host: str) -> tuple[int, str] | None:
        kept = self.robots_cache.get(host)
        if kept is None or time.time() - kept[0] > ROBOTS_TTL:
            return None
        return kept[1], kept[2]

    async def keep_robots(self, host: str, status: int, text: str) -> None:
        self.robots_cache[host] = (time.time(), status, text)


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
