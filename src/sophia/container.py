"""The process container: the accounts first, every other service started on first use, closed in reverse.

One ``Services`` per process. It knows nothing of the rooms above it: a room that offers a service
declares it as a typed ``Service`` key beside its own code (``sophia.gateway.service.GATEWAY``,
``sophia.cache.service.CACHE``; later the warehouse, knowledge, collectors), and callers ask for it::

    services = Services(settings)
    key = await services.authenticate("Bearer sk-sophia-…")   # opens the accounts only
    gateway = await services.get(GATEWAY)                    # started here, once, on first use
    ...
    await services.close()                                    # services in reverse order, accounts last

So an MCP server whose tools never call a model checks keys and books ledger rows without starting
the model gateway, and two servers in one process share one gateway, one cache and one ledger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sophia.accounts import Accounts, KeyRecord

if TYPE_CHECKING:
    from sophia.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Service(Generic[T]):
    """A service a room offers: its name, how to start it (given the container) and how to stop it."""

    name: str
    start: Callable[[Services], Awaitable[T]]
    stop: Callable[[T], Awaitable[None]] | None = None

    def __repr__(self) -> str:
        return f"Service({self.name!r})"


async def open_accounts(settings: Settings) -> Accounts:
    """The accounts as the settings describe them (database, Redis counters, key cache, ledger batches)."""
    storage = settings.storage
    return await Accounts.open(
        settings.database_url,
        redis_url=storage.redis_url,
        require_keys=settings.gateway.require_keys,
        key_cache_ttl=storage.key_cache_ttl,
        ledger_batch_size=storage.ledger_batch_size,
        ledger_flush_interval=storage.ledger_flush_interval,
    )


class Services:
    """The services of one process. ``get`` starts a service once, however many callers ask at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._accounts: Accounts | None = None
        self._running: dict[Service[Any], Any] = {}
        self._order: list[Service[Any]] = []  # start order; closed in reverse
        self._locks: dict[str, asyncio.Lock] = {}
        self._closed = False

    # -- accounts -------------------------------------------------------------------------------

    async def open(self) -> Accounts:
        """The accounts (keys, ledger, limits), opened on first use."""
        if self._accounts is not None:
            return self._accounts
        async with self._lock("accounts"):
            if self._accounts is None:
                self._check_open()
                self._accounts = await open_accounts(self.settings)
        return self._accounts

    @property
    def accounts(self) -> Accounts | None:
        """The accounts if they are open now (never opens them)."""
        return self._accounts

    async def authenticate(self, authorization: str | None) -> KeyRecord | None:
        """The key behind an Authorization header (see ``Accounts.authenticate``)."""
        return await (await self.open()).authenticate(authorization)

    # -- services -------------------------------------------------------------------------------

    async def get(self, service: Service[T]) -> T:
        """The running ``service``, started here on first use (after the accounts)."""
        if service in self._running:
            value: T = self._running[service]
            return value
        await self.open()
        async with self._lock(service.name):
            if service not in self._running:
                self._check_open()
                self._running[service] = await service.start(self)
                self._order.append(service)
                log.debug("started %s", service.name)
        value = self._running[service]
        return value

    def running(self, service: Service[T]) -> T | None:
        """``service`` if it is running now, else None (never starts it)."""
        value: T | None = self._running.get(service)
        return value

    def provide(self, service: Service[T], value: T, *, close: bool = False) -> None:
        """Use ``value`` (started elsewhere) as ``service``; ``close``: stop it with the container."""
        if service in self._running:
            raise RuntimeError(f"{service.name} is already running in this container")
        self._running[service] = value
        if close:
            self._order.append(service)

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this process's services are closed")

    async def close(self) -> None:
        """Stop the started services in reverse order, then close the accounts; idempotent."""
        if self._closed:
            return
        self._closed = True
        while self._order:
            service = self._order.pop()
            value = self._running.pop(service)
            if service.stop is not None:
                try:
                    await service.stop(value)
                except Exception:
                    log.exception("stopping %s failed", service.name)
        self._running.clear()
        if self._accounts is not None:
            accounts, self._accounts = self._accounts, None
            await accounts.close()
