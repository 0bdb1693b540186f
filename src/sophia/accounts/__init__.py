"""Who is calling and what it cost: virtual keys, the usage ledger, rate limits and budgets.

This room sits below every room that serves requests (the gateway, the MCP servers, the cache's
admin, the CLI), so none of them starts the model gateway to check a key or book a call. It
depends only on ``sophia.errors`` and ``sophia.storage``; settings reach it as plain arguments
(``sophia.container`` translates them).

::

    accounts = await Accounts.open("sqlite:///sophia.db", redis_url=None)
    key = await accounts.authenticate("Bearer sk-sophia-…")    # KeyRecord (or AuthenticationError)
    await accounts.admit(key, "sophia/fast")                  # model allowed, rate limits
    hold = await accounts.reserve(key, 0.002)                 # the call's worst case, against budgets
    ...
    await accounts.commit(key, tokens=120, cost_usd=0.0004, hold=hold)  # tokens per minute, spend
    accounts.record(UsageRecord(...))                         # one ledger row, written in batches
    await accounts.close()

Modules: ``keys`` (store + hot-path cache), ``ledger`` (usage rows, reports), ``limits``
(``Limiter``, the in-process rate limiter and the period helpers), ``budgets`` (budgets in the
database, shared by every process on it), ``limits_redis`` (rates and budgets in Redis), ``local``
(the first-run admin key).
"""

from __future__ import annotations

from dataclasses import dataclass
from time import time

from sophia.accounts.keys import KeyCache, KeyRecord, KeyStore
from sophia.accounts.ledger import Ledger, UsageRecord, new_request_id
from sophia.accounts.limits import Hold, Limiter, MemoryLimiter, SpendLookup
from sophia.errors import PermissionDenied
from sophia.storage import Database, open_database

__all__ = ["Accounts", "Hold", "KeyRecord", "UsageRecord", "new_request_id", "open_limiter"]


async def open_limiter(
    redis_url: str | None, spend_lookup: SpendLookup, db: Database | None = None
) -> Limiter:
    """A ``RedisLimiter`` when ``redis_url`` is given (checked to answer), else a ``MemoryLimiter`` with
    its budgets in ``db``."""
    if not redis_url:
        from sophia.accounts.budgets import DatabaseBudgets

        if db is None:
            raise ValueError("a limiter without Redis keeps its budgets in the database: pass db")
        return MemoryLimiter(await DatabaseBudgets.open(db, spend_lookup))
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
            limiter = await open_limiter(redis_url, ledger.spend, db)
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
        """Let a call through or raise: the model must be allowed to the key and its rate limits must
        have room (``PermissionDenied``, ``RateLimited``). Budgets are checked by ``reserve``."""
        if key is None:
            return
        if model is not None and not key.allows_model(model):
            raise PermissionDenied(f"this API key may not use the model {model!r}", code="model_not_allowed")
        await self.limiter.check(key, time() if now is None else now)

    async def reserve(self, key: KeyRecord | None, usd: float, now: float | None = None) -> Hold | None:
        """Hold a call's worst-case cost against the key's budgets, atomically across processes, or raise
        ``BudgetExceeded`` when what the key spent plus what its calls in flight hold has reached a
        budget. None for a key without budgets. Every hold must reach ``commit`` (or expire)."""
        if key is None or not key.budgeted:
            return None
        return await self.limiter.reserve(key, usd, time() if now is None else now)

    async def commit(
        self,
        key: KeyRecord | None,
        tokens: int,
        cost_usd: float,
        now: float | None = None,
        hold: Hold | None = None,
    ) -> None:
        """Count a finished call's tokens and cost against the key's limits and budgets; release its hold."""
        if key is not None and (key.limited or hold is not None):
            await self.limiter.commit(key, tokens, cost_usd, time() if now is None else now, hold)

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
