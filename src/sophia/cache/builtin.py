"""The built-in cache stores, registered like any plugin's (``register_cache_stores`` hook)."""

from __future__ import annotations

from sophia.cache.store import CacheStore, CacheStoreRegistry
from sophia.errors import ConfigError
from sophia.settings.cache import CacheSettings


def _local(settings: CacheSettings, database_url: str, redis_url: str | None) -> CacheStore:
    from sophia.cache.store_local import LocalStore

    return LocalStore(database_url)


def _redis(settings: CacheSettings, database_url: str, redis_url: str | None) -> CacheStore:
    if not redis_url:
        raise ConfigError("cache.store is 'redis' but no Redis URL is configured (storage.redis_url)")
    from sophia.cache.store_redis import RedisStore

    return RedisStore(redis_url, settings.redis_prefix)


def register_cache_stores(registry: CacheStoreRegistry) -> None:
    registry.register("local", _local)
    registry.register("redis", _redis)
