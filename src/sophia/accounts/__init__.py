"""Who is calling and what it cost: virtual keys, the usage ledger, rate limits and budgets.

This room sits below every room that serves requests (the gateway, the MCP servers, the cache's
admin, the CLI), so none of them starts the model gateway to check a key or book a call. It
depends only on ``sophia.errors`` and ``sophia.storage``; settings reach it as plain arguments
(``sophia.container`` translates them).

::

    accounts = await Accounts.open("sqlite:///sophia.db", redis_url=None)
    key = await accounts.authenticate("Bearer sk-sophia-…")    # KeyRecord (or AuthenticationError)
    await accounts.admit(key, "sophia/fast")                  # model allowed, limits and budget
    ...
    await accounts.commit(key, tokens=120, cost_usd=0.0004)   # tokens per minute, spend
    accounts.record(UsageRecord(...))                         # one ledger row, written in batches
    await accounts.close()

Modules: ``keys`` (store + hot-path cache), ``ledger`` (usage rows, reports), ``limits``
(``Limiter``, the in-process limiter and the period helpers), ``limits_redis`` (the shared one),
``local`` (the first-run admin key).
"""

from __future__ import annotations

from dataclasses import dataclass
from time import time

from sophia.accounts.keys import KeyCache, KeyRecord, KeyStore
from sophia.accounts.ledger import Ledger, UsageRecord, new_request_id
from sophia.accounts.limits import Limiter, MemoryLimiter, SpendLookup
from sophia.errors import PermissionDenied
from sophia.storage import Database, open_database

__all__ = ["Accounts", "KeyRecord", "UsageRecord", "new_request_id", "open_limiter"]


async def open_limiter(redis_url: str | None, spend_lookup: SpendLookup) -> Limiter:
    """A ``RedisLimiter`` when ``redis_url`` is given (checked to answer), else a ``MemoryLimiter``."""
    if not redis_url:
        return MemoryLimiter(spend_lookup)
    from sophia.accounts.limits_redis import RedisLimiter

    limiter = RedisLimiter(redis_url, spend_lookup)
    try:
        await limiter.ping()
    except BaseException:
        await limiter.close()
        raise
    return limiter


@dataclass(eq=False)
class Accounts:
    """Keys, ledger and limiter over one database (owned: ``close`` closes it)."""

    db: Database
    keys: KeyStore
    key_cache: KeyCache
    ledger: Ledger
    limiter: Limiter
    require_keys: bool = True

    @classmethod
    async def open(
        cls,
        database_url: str,
        *,
        redis_url: str | None = None,
        require_keys: bool = True,
        key_cache_ttl: float = 5.0,
        ledger_batch_size: int = 256,
        ledger_flush_interval: float = 0.5,
    ) -> Accounts:
        """Open the database, apply the schemas and start the ledger's background writer."""
        db = await open_database(database_url)
        ledger: Ledger | None = None
        try:
            keys = await KeyStore.open(db)
            ledger = await Ledger.open(db, ledger_batch_size, ledger_flush_interval)
            limiter = await open_limiter(redis_url, ledger.spend)
        except BaseException:
            if ledger is not None:
                await ledger.close()
            await db.close()
            raise
        ledger.start()
        return cls(db, keys, KeyCache(keys, key_cache_ttl), ledger, limiter, require_keys)

    async def authenticate(self, authorization: str | None) -> KeyRecord | None:
        """The key behind an ``Authorization`` header (or a bare token); None only when keys are not
        required and none was sent; ``AuthenticationError`` otherwise."""
        if not authorization and not self.require_keys:
            return None
        return await self.key_cache.authenticate(authorization)

    async def admit(self, key: KeyRecord | None, model: str | None = None, now: float | None = None) -> None:
        """Let a call through or raise: the model must be allowed to the key, its rate limits and
        budgets must have room (``PermissionDenied``, ``RateLimited``, ``BudgetExceeded``)."""
        if key is None:
            return
        if model is not None and not key.allows_model(model):
            raise PermissionDenied(f"this API key may not use the model {model!r}", code="model_not_allowed")
        await self.limiter.check(key, time() if now is None else now)

    async def commit(
        self, key: KeyRecord | None, tokens: int, cost_usd: float, now: float | None = None
    ) -> None:
        """Count a finished call's tokens and cost against the key's limits and budgets."""
        if key is not None:
            await self.limiter.commit(key, tokens, cost_usd, time() if now is None else now)

    def record(self, rec: UsageRecord) -> None:
        """Book one ledger row (buffered; never blocks, never raises)."""
        self.ledger.record(rec)

    def forget_keys(self) -> None:
        """This process sees a revocation or a change at once; other processes within the key cache's ttl."""
        self.key_cache.clear()

    async def close(self) -> None:
        """Stop the limiter, write what the ledger holds, close the database."""
        await self.limiter.close()
        await self.ledger.close()
        await self.keys.close()
        await self.db.close()
