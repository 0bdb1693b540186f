"""The shared store: entries and vectors in plain Redis, each instance's index kept in step by a stream.

Plain Redis (no search module) cannot search vectors, so every instance keeps its own in-memory
index and Redis keeps the truth. Keys, under the prefix (default ``sophia:cache:``):

* ``e:<id>`` HASH: ``meta`` (JSON: namespace, exact key, text, model, tenant, tag versions, times),
  ``vector`` (384 float32), ``body``, ``model_id``, ``pt``, ``ct``, ``cost``; expires with its TTL;
* ``x:<exact key>`` STRING -> id (the entry an exact key currently names), same expiry;
* ``ids`` ZSET id -> expiry time (``+inf`` for none): count, sweep, and the start-up load;
* ``tag:<tag>``, ``model:<model>``, ``tenant:<tenant>`` SETs of ids, for bumps and purges;
* ``versions`` HASH tag -> data version;
* ``events`` STREAM of ``put`` (with meta and vector) and ``del`` (ids) events, capped;
* ``obs`` STREAM of observation rows (the cache's learning state), one entry per row, capped at
  ``OBSERVATIONS_MAXLEN``; a reader's cursor is the last entry id it read.

On start an instance notes the stream's last id, loads every live entry, then follows the stream
from that id (replaying a put it already loaded is harmless). Its own events are skipped. A hit
is confirmed by reading the entry's hash, so a purge that has not reached an instance's index
yet costs that instance a miss, never a stale answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections.abc import Iterable, Sequence
from time import time
from typing import Any

import numpy as np
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from sophia.cache.entries import Entry, EntryTable, Payload
from sophia.cache.observations import Observation
from sophia.cache.store import CacheStore
from sophia.errors import StorageError
from sophia.storage.db import redact_url

log = logging.getLogger(__name__)

STREAM_MAXLEN = 200_000
#: observation rows the ``obs`` stream keeps (all aliases together; Redis trims approximately)
OBSERVATIONS_MAXLEN = 100_000
_BLOCK_MS = 1000


def _meta(entry: Entry) -> bytes:
    return orjson.dumps(
        {
            "ns": entry.namespace,
            "exact": entry.exact,
            "text": entry.text,
            "model": entry.model,
            "tenant": entry.tenant,
            "tags": entry.tags,
            "created": entry.created,
            "expires": entry.expires,
            "semantic": entry.semantic,
        }
    )


def _entry(entry_id: str, meta: bytes) -> Entry:
    m = orjson.loads(meta)
    return Entry(
        entry_id,
        m["ns"],
        m["exact"],
        m["text"],
        m["model"],
        m["tenant"],
        {str(k): int(v) for k, v in m["tags"].items()},
        float(m["created"]),
        m["expires"],
        bool(m["semantic"]),
    )


class RedisStore(CacheStore):
    def __init__(self, url: str, prefix: str = "sophia:cache:") -> None:
        self.url = url
        self.prefix = prefix
        self.origin = secrets.token_hex(6)
        self._redis: Redis | None = None
        self._follower: asyncio.Task[None] | None = None
        self._table: EntryTable | None = None
        self._closing = False

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def redis(self) -> Redis:
        assert self._redis is not None, "RedisStore.start() was not awaited"
        return self._redis

    async def _do(self, what: str, work: Any) -> Any:
        try:
            return await work
        except (RedisError, OSError) as exc:
            raise StorageError(f"Redis cache store at {redact_url(self.url)}: {what} failed: {exc}") from exc

    async def start(self, table: EntryTable, *, follow: bool = True) -> None:
        self._redis = Redis.from_url(self.url)
        self._table = table
        if not follow:
            return
        last = await self._do("read the stream", self.redis.xrevrange(self._k("events"), count=1))
        position = last[0][0] if last else b"0-0"
        now = time()
        ids = await self._do("load", self.redis.zrangebyscore(self._k("ids"), now, "+inf"))
        for start in range(0, len(ids), 1000):
            pipe = self.redis.pipeline(transaction=False)
            chunk = [i.decode() for i in ids[start : start + 1000]]
            for entry_id in chunk:
                pipe.hmget(self._k("e", entry_id), ["meta", "vector"])
            for entry_id, (meta, vector) in zip(chunk, await self._do("load", pipe.execute()), strict=True):
                if meta is not None:
                    table.add(_entry(entry_id, meta), _vector(vector))
        self._follower = asyncio.create_task(self._follow(position), name="sophia-cache-redis-stream")

    async def _follow(self, position: bytes) -> None:
        stream = self._k("events")
        while not self._closing:
            try:
                batches: Any = await self.redis.xread({stream: position}, count=500, block=_BLOCK_MS)
            except (RedisError, OSError) as exc:
                if self._closing:  # redis-py may turn the cancellation of a blocked read into an error
                    return
                log.warning("cache stream read failed (retrying in 1 s): %s", exc)
                await asyncio.sleep(1.0)
                continue
            for _, events in batches or ():
                for event_id, fields in events:
                    position = event_id
                    if fields.get(b"origin", b"").decode() != self.origin:
                        self._apply(fields)

    def _apply(self, fields: dict[bytes, bytes]) -> None:
        assert self._table is not None
        op = fields.get(b"op")
        if op == b"put":
            entry = _entry(fields[b"id"].decode(), fields[b"meta"])
            self._table.add(entry, _vector(fields.get(b"vector")))
        elif op == b"del":
            self._table.remove_many(fields[b"ids"].decode().split(",") if fields[b"ids"] else [])
        elif op == b"bump":
            self._table.bumped(fields[b"tag"].decode())

    def _event(self, pipe: Any, **fields: bytes | str) -> None:
        pipe.xadd(
            self._k("events"), {"origin": self.origin, **fields}, maxlen=STREAM_MAXLEN, approximate=True
        )

    async def put(self, entry: Entry, vector: np.ndarray | None, payload: Payload) -> None:
        r = self.redis
        exact_key = self._k("x", entry.exact)
        old = await self._do("put", r.set(exact_key, entry.id, get=True))
        meta = _meta(entry)
        vec = b"" if vector is None else np.asarray(vector, dtype=np.float32).tobytes()
        ttl_ms = None if entry.expires is None else max(int((entry.expires - time()) * 1000), 1)
        pipe = r.pipeline(transaction=True)
        key = self._k("e", entry.id)
        pipe.hset(
            key,
            mapping={
                "meta": meta,
                "vector": vec,
                "body": payload.body,
                "model_id": payload.model_id,
                "pt": payload.prompt_tokens,
                "ct": payload.completion_tokens,
                "cost": repr(payload.cost_usd),
            },
        )
        if ttl_ms is not None:
            pipe.pexpire(key, ttl_ms)
            pipe.pexpire(exact_key, ttl_ms)
        pipe.zadd(self._k("ids"), {entry.id: math.inf if entry.expires is None else entry.expires})
        for tag in entry.tags:
            pipe.sadd(self._k("tag", tag), entry.id)
        pipe.sadd(self._k("model", entry.model), entry.id)
        pipe.sadd(self._k("tenant", entry.tenant), entry.id)
        if old is not None and old.decode() != entry.id:
            pipe.delete(self._k("e", old.decode()))
            pipe.zrem(self._k("ids"), old)
            self._event(pipe, op="del", ids=old.decode())
        self._event(pipe, op="put", id=entry.id, meta=meta, vector=vec)
        await self._do("put", pipe.execute())

    async def fetch(self, entry: Entry) -> Payload | None:
        body, model_id, pt, ct, cost = await self._do(
            "fetch", self.redis.hmget(self._k("e", entry.id), ["body", "model_id", "pt", "ct", "cost"])
        )
        if body is None:
            return None
        return Payload(body, model_id.decode(), int(pt), int(ct), float(cost))

    async def delete(self, entry_ids: Iterable[str]) -> int:
        ids = list(entry_ids)
        if not ids:
            return 0
        deleted = 0
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(*[self._k("e", i) for i in chunk])
            pipe.zrem(self._k("ids"), *chunk)
            self._event(pipe, op="del", ids=",".join(chunk))
            deleted += int((await self._do("delete", pipe.execute()))[0])
        return deleted

    async def select(self, *, tag: str | None, model: str | None, tenant: str | None) -> set[str]:
        sets = [
            self._k(kind, value)
            for kind, value in (("tag", tag), ("model", model), ("tenant", tenant))
            if value
        ]
        if sets:
            found = await self._do("select", self.redis.sinter(sets))
        else:
            found = await self._do("select", self.redis.zrange(self._k("ids"), 0, -1))
        return {i.decode() for i in found}

    async def versions(self, tags: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(tags))
        if not wanted:
            return {}
        values = await self._do("versions", self.redis.hmget(self._k("versions"), wanted))
        return {t: int(v) if v is not None else 0 for t, v in zip(wanted, values, strict=True)}

    async def bump(self, tag: str) -> int:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(self._k("versions"), tag, 1)
        self._event(pipe, op="bump", tag=tag)
        version, _ = await self._do("bump", pipe.execute())
        return int(version)

    async def count(self) -> int:
        return int(await self._do("count", self.redis.zcount(self._k("ids"), time(), "+inf")))

    async def sweep(self, now: float) -> None:
        await self._do("sweep", self.redis.zremrangebyscore(self._k("ids"), "-inf", now))

    # -- observations (the cache's learning state) ------------------------------------------------

    async def add_observations(self, rows: Sequence[Observation]) -> None:
        if not rows:
            return
        pipe = self.redis.pipeline(transaction=False)
        for row in rows:
            pipe.xadd(self._k("obs"), _obs_fields(row), maxlen=OBSERVATIONS_MAXLEN, approximate=True)
        await self._do("add observations", pipe.execute())

    async def observations(self, after: str = "", limit: int = 5000) -> tuple[list[Observation], str]:
        """Entries after the cursor (a stream entry id, exclusive), oldest first."""
        if limit <= 0:
            return [], after
        start = f"({after}" if after else "-"
        entries = await self._do(
            "read observations", self.redis.xrange(self._k("obs"), min=start, max="+", count=limit)
        )
        if not entries:
            return [], after
        rows = [Observation.from_dict({k.decode(): v for k, v in fields.items()}) for _, fields in entries]
        return rows, entries[-1][0].decode()

    async def trim_observations(self, keep: int) -> int:
        """Nothing: a stream cannot be trimmed per alias. ``OBSERVATIONS_MAXLEN`` bounds it instead
        (across aliases), on every append."""
        return 0

    async def close(self) -> None:
        self._closing = True
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def _obs_fields(row: Observation) -> dict[FieldT, EncodableT]:
    """A row as stream fields: text, with floats as ``repr`` (exact when read back)."""
    return {k: repr(v) if isinstance(v, float) else str(v) for k, v in row.as_dict().items()}


def _vector(raw: bytes | None) -> np.ndarray | None:
    return np.frombuffer(raw, dtype=np.float32).copy() if raw else None
