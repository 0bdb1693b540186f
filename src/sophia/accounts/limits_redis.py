"""``RedisLimiter``: rate limits and budgets shared by every gateway instance through one Redis.

Check-and-admit is ONE Lua script per request (EVALSHA: redis-py loads it once and reloads it after a
NOSCRIPT), so concurrent requests on many instances can never admit more than the limit. Reserving a
call's worst-case cost against its budgets is one more script, and commit (tokens, real cost, release
of the reservation) one more. Keys, under the prefix (default ``sophia:``; ``{<key id>}`` is a Cluster
hash tag so one key's counters share a slot):

* ``{key_…}:rpm`` ZSET of admitted request ids scored by epoch ms (exact sliding window, PEXPIRE 60 s);
* ``{key_…}:tpm`` HASH epoch second -> tokens committed in that second;
* ``{key_…}:spend:day:YYYYMMDD`` / ``{key_…}:spend:month:YYYYMM`` integer nano-dollars spent, expiring
  after the period;
* ``{key_…}:holds`` ZSET of reservations ``<id>:<nano-dollars>`` scored by their expiry (epoch ms).

This Redis may keep nothing on disk: when a spend counter is missing the script says so, and the limiter
seeds it from the usage ledger (``spend_lookup``) with ``SET NX`` before trying again. Commits only add
to counters that exist, because a missing counter will be seeded from the ledger, which has the cost.
"""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from sophia.accounts.keys import KeyRecord
from sophia.accounts.limits import (
    DAY,
    HOLD_SECONDS,
    NANOS,
    Hold,
    SpendLookup,
    day_start,
    month_end,
    month_start,
    nanos,
    over_budget,
    rpm_limited,
    tpm_limited,
)
from sophia.errors import StorageError
from sophia.storage.db import redact_url

# KEYS: rpm zset, tpm hash. ARGV: now (ms), rpm, tpm, request id; -1 = no limit.
# Returns {0, 0} admitted | {1, retry ms} rpm | {2, retry ms} tpm.
_CHECK = """
local now = tonumber(ARGV[1])
local rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3])
if tpm >= 0 then
  local flat = redis.call('HGETALL', KEYS[2])
  local live, total = {}, 0
  for i = 1, #flat, 2 do
    local second, tokens = tonumber(flat[i]), tonumber(flat[i + 1])
    if (second + 60) * 1000 <= now then
      redis.call('HDEL', KEYS[2], flat[i])
    else
      total = total + tokens
      live[#live + 1] = {second, tokens}
    end
  end
  if total >= tpm then
    table.sort(live, function(a, b) return a[1] < b[1] end)
    local retry = 60000
    for _, bucket in ipairs(live) do
      total = total - bucket[2]
      if total < tpm then
        retry = (bucket[1] + 60) * 1000 - now
        break
      end
    end
    return {2, retry}
  end
end
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    local retry = 60000
    if oldest[2] then retry = tonumber(oldest[2]) + 60000 - now end
    return {1, retry}
  end
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], 60000)
end
return {0, 0}
"""

# KEYS: day counter, month counter, holds zset.
# ARGV: now (ms), daily budget, monthly budget (nano-USD; -1 = none), hold member, hold expiry (ms).
# Returns {0, 0, 0} held | {3, spent, held} day | {4, spent, held} month | {5, bits, 0} counters to seed
# first (1 day, 2 month).
_RESERVE = """
local now = tonumber(ARGV[1])
local daily, monthly = tonumber(ARGV[2]), tonumber(ARGV[3])
local missing, day_spent, month_spent = 0, 0, 0
if daily >= 0 then
  local v = redis.call('GET', KEYS[1])
  if v then day_spent = tonumber(v) else missing = missing + 1 end
end
if monthly >= 0 then
  local v = redis.call('GET', KEYS[2])
  if v then month_spent = tonumber(v) else missing = missing + 2 end
end
if missing > 0 then return {5, missing, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local held = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  held = held + tonumber(string.match(member, ':(%d+)$'))
end
if daily >= 0 and day_spent + held >= daily then return {3, day_spent, held} end
if monthly >= 0 and month_spent + held >= monthly then return {4, month_spent, held} end
local expires = tonumber(ARGV[5])
redis.call('ZADD', KEYS[3], expires, ARGV[4])
redis.call('PEXPIRE', KEYS[3], expires - now + 60000)
return {0, 0, 0}
"""

# KEYS: tpm hash, day counter, month counter, holds zset.
# ARGV: epoch second, tokens, cost (nano-USD), hold member ('' for none).
_COMMIT = """
local tokens, cost = tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[4] ~= '' then redis.call('ZREM', KEYS[4], ARGV[4]) end
if tokens > 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], tokens)
  redis.call('PEXPIRE', KEYS[1], 61000)
end
if cost > 0 then
  for i = 2, 3 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], cost) end
  end
end
return 0
"""


def _limit(value: float | None, scale: float = 1.0) -> int:
    return -1 if value is None else round(value * scale)


class RedisLimiter:
    """Limits and budgets shared through Redis by any number of gateway processes."""

    def __init__(self, redis_url: str, spend_lookup: SpendLookup, *, prefix: str = "sophia:") -> None:
        self.spend_lookup = spend_lookup
        self.prefix = prefix
        self.where = redact_url(redis_url)
        self.redis = Redis.from_url(redis_url, socket_connect_timeout=2.0, socket_timeout=5.0)
        self._check = self.redis.register_script(_CHECK)
        self._reserve = self.redis.register_script(_RESERVE)
        self._commit = self.redis.register_script(_COMMIT)
        self._instance = secrets.token_hex(4)  # request ids in the rpm window are unique across instances
        self._sequence = itertools.count()

    async def _call(self, what: str, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise StorageError(f"Redis at {self.where} failed to {what}: {exc}") from exc

    async def ping(self) -> None:
        """Raise StorageError unless Redis answers."""
        await self._call("answer a ping", self.redis.ping())

    def _keys(self, key_id: str, now: float) -> list[str]:
        """rpm, tpm, day spend, month spend, holds."""
        base = f"{self.prefix}{{{key_id}}}:"
        t = datetime.fromtimestamp(now, UTC)
        return [
            f"{base}rpm",
            f"{base}tpm",
            f"{base}spend:day:{t:%Y%m%d}",
            f"{base}spend:month:{t:%Y%m}",
            f"{base}holds",
        ]

    async def check(self, key: KeyRecord, now: float) -> None:
        if key.rpm is None and key.tpm is None:
            return
        keys = self._keys(key.id, now)[:2]
        now_ms = int(now * 1000)
        args: list[int | str] = [
            now_ms,
            _limit(key.rpm),
            _limit(key.tpm),
            f"{now_ms}-{self._instance}-{next(self._sequence)}",
        ]
        code, value = await self._call("check a limit", self._check(keys=keys, args=args))
        if code == 1:
            raise rpm_limited(key.rpm or 0, value / 1000)
        if code == 2:
            raise tpm_limited(key.tpm or 0, value / 1000)

    async def reserve(self, key: KeyRecord, usd: float, now: float) -> Hold | None:
        if not key.budgeted:
            return None
        keys = self._keys(key.id, now)[2:]
        now_ms = int(now * 1000)
        hold = Hold(f"hold_{self._instance}_{next(self._sequence)}", key.id, max(nanos(usd), 0))
        args: list[int | str] = [
            now_ms,
            _limit(key.budget_daily_usd, NANOS),
            _limit(key.budget_monthly_usd, NANOS),
            f"{hold.id}:{hold.nanos}",
            now_ms + int(HOLD_SECONDS * 1000),
        ]
        for _ in range(3):
            code, value, held = await self._call("reserve budget", self._reserve(keys=keys, args=args))
            if code == 0:
                return hold
            if code == 5:
                await self._seed(key.id, keys, int(value), now)
                continue
            if code == 3:
                raise over_budget("daily", key.budget_daily_usd or 0.0, value / NANOS, held / NANOS)
            raise over_budget("monthly", key.budget_monthly_usd or 0.0, value / NANOS, held / NANOS)
        raise StorageError(f"Redis at {self.where} keeps losing the spend counters of key {key.id}")

    async def _seed(self, key_id: str, keys: list[str], missing: int, now: float) -> None:
        """Set missing spend counters from the ledger; NX: another instance may have just done it."""
        if missing & 1:
            start = day_start(now)
            spent = await self.spend_lookup(key_id, start)
            ttl = start + 2 * DAY - now  # the rest of the day, plus a day's grace
            await self._call(
                "seed a spend counter", self.redis.set(keys[0], nanos(spent), nx=True, px=int(ttl * 1000))
            )
        if missing & 2:
            spent = await self.spend_lookup(key_id, month_start(now))
            ttl = month_end(now) + DAY - now
            await self._call(
                "seed a spend counter", self.redis.set(keys[1], nanos(spent), nx=True, px=int(ttl * 1000))
            )

    async def commit(
        self, key: KeyRecord, tokens: int, cost_usd: float, now: float, hold: Hold | None = None
    ) -> None:
        tokens = int(tokens) if key.tpm is not None and tokens > 0 else 0
        cost = nanos(cost_usd) if cost_usd > 0 and key.budgeted else 0
        if not tokens and not cost and hold is None:
            return
        keys = self._keys(key.id, now)[1:]
        member = "" if hold is None else f"{hold.id}:{hold.nanos}"
        await self._call("commit usage", self._commit(keys=keys, args=[int(now), tokens, cost, member]))

    async def close(self) -> None:
        await self.redis.aclose()
