"""Cache stores: where entries live beyond one process, and how instances stay in step.

A store is the source of truth; each instance's ``EntryTable`` (entries and vectors in memory) is
a fast view of it. A hit is confirmed by the store (``fetch`` returns None for an entry that was
purged, expired or invalidated elsewhere) unless the store confirmed it within
``cache.confirm_interval`` seconds, so a stale view costs a miss, never a wrong answer beyond that
interval. Built-in stores register through the same registry as third-party ones:

* ``local``: SQLite or PostgreSQL (``sophia.storage``) + the in-process index, rebuilt on start; on
  PostgreSQL, instances keep their indexes in step through ``LISTEN``/``NOTIFY``;
* ``redis``: entries and vectors in Redis, every instance's index kept in step through a stream.

A third-party store is a ``CacheStore`` subclass registered from a plugin's
``register_cache_stores(registry)`` hook.

Stores also keep the cache's learning state: append-only observation rows
(``sophia.cache.observations``) that every instance reads, so instances learn from each other's
checks. The methods have defaults (keep nothing), so a store written before them keeps working.
"""

from __future__ import annotations

import logging
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from sophia.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from sophia.cache.entries import Entry, EntryTable, Payload
    from sophia.cache.observations import Observation
    from sophia.settings.cache import CacheSettings

log = logging.getLogger(__name__)

#: store classes that were already said to keep no observations (one log line per class)
_FORGETFUL: weakref.WeakSet[type] = weakref.WeakSet()


class CacheStore(ABC):
    """Durable (or shared) entries, tag versions and change propagation."""

    @abstractmethod
    async def start(self, table: EntryTable, *, follow: bool = True) -> None:
        """Fill ``table`` with every live entry, then keep it in step with other instances.

        ``follow=False`` only connects (one-off admin commands: purge, bump, stats): the table
        stays empty and nothing runs in the background.
        """

    @abstractmethod
    async def put(self, entry: Entry, vector: np.ndarray | None, payload: Payload) -> None:
        """Save an entry (replacing any with the same exact key) and tell the other instances."""

    async def put_many(self, writes: list[tuple[Entry, np.ndarray | None, Payload]]) -> None:
        """Save several entries (the cache writes in batches); stores that can should do it in one go."""
        for entry, vector, payload in writes:
            await self.put(entry, vector, payload)

    @abstractmethod
    async def fetch(self, entry: Entry) -> Payload | None:
        """The answer of a live entry, or None if it is gone from the store."""

    @abstractmethod
    async def delete(self, entry_ids: Iterable[str]) -> int:
        """Delete entries everywhere; returns how many existed."""

    @abstractmethod
    async def select(self, *, tag: str | None, model: str | None, tenant: str | None) -> set[str]:
        """Ids of the stored entries that match every given criterion."""

    @abstractmethod
    async def versions(self, tags: Iterable[str]) -> dict[str, int]:
        """Current data version of each tag (0 for a tag never bumped)."""

    @abstractmethod
    async def bump(self, tag: str) -> int:
        """Increase a tag's data version; returns the new version."""

    @abstractmethod
    async def count(self) -> int:
        """Entries in the store."""

    async def sweep(self, now: float) -> None:  # noqa: B027 - optional hook
        """Drop expired entries (stores whose backend expires them itself need not)."""

    async def add_observations(self, rows: Sequence[Observation]) -> None:
        """Append rows (base: keeps nothing; logs once, at INFO, that this store keeps no learning state)."""
        kind = type(self)
        if rows and kind not in _FORGETFUL:
            _FORGETFUL.add(kind)
            log.info(
                "cache store %s keeps no observations: the cache's risk model learns nothing shared",
                kind.__qualname__,
            )

    async def observations(self, after: str = "", limit: int = 5000) -> tuple[list[Observation], str]:
        """Rows appended after cursor ``after`` ("" = from the oldest kept), oldest first, at most
        ``limit``, and the cursor to pass next time (unchanged when there is nothing new).

        The cursor is opaque and belongs to the store that gave it. Base: ``([], after)``.
        """
        return [], after

    async def trim_observations(self, keep: int) -> int:
        """Keep the newest ``keep`` rows per alias; returns how many were dropped. Base: 0."""
        return 0

    @abstractmethod
    async def close(self) -> None: ...


#: builds a store from the settings and the two URLs the gateway knows
StoreFactory = Callable[["CacheSettings", str, "str | None"], CacheStore]


class CacheStoreRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, StoreFactory] = {}

    def register(self, name: str, factory: StoreFactory) -> None:
        known = self._factories.get(name)
        if known is not None and known is not factory:
            raise ConfigError(f"two cache stores are registered as {name!r}")
        self._factories[name] = factory

    def create(
        self, name: str, settings: CacheSettings, database_url: str, redis_url: str | None
    ) -> CacheStore:
        factory = self._factories.get(name)
        if factory is None:
            raise ConfigError(f"unknown cache store {name!r}; known: {', '.join(sorted(self._factories))}")
        return factory(settings, database_url, redis_url)


def default_registry() -> CacheStoreRegistry:
    """The built-in stores and those of installed plugins (``register_cache_stores`` hook)."""
    from sophia.plugins import call_hook

    registry = CacheStoreRegistry()
    call_hook("register_cache_stores", registry)
    return registry
