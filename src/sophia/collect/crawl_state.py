"""A crawl's state beside its queue: the spec, the frontier, the counters and per-host politeness.

``RedisState`` keeps it in Redis (``sophia:crawl:<id>:…``), every step one Lua script, so any number of
workers on any number of machines share one crawl and a killed worker loses nothing; ``MemoryState``
keeps the same steps in this process (no Redis). What each key means: ``sophia.collect.crawl``.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from sophia.collect.urls import normalize, origin
from sophia.errors import InvalidRequest

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
