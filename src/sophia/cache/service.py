"""The response cache as a service of the process container: ``await services.get(CACHE)``.

One cache per process, shared by the gateway (lookups and stores) and the tools that manage it
(statistics, purges, reports), which therefore need not start the gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sophia.container import Service, Services
from sophia.errors import InvalidRequest

if TYPE_CHECKING:
    from sophia.cache.admin import Reports
    from sophia.cache.cache import ResponseCache


def cache_off() -> InvalidRequest:
    return InvalidRequest(
        "the response cache is off on this gateway (cache.enabled: false)", code="cache_off"
    )


async def _start(services: Services) -> ResponseCache:
    from sophia.cache.cache import ResponseCache

    settings = services.settings
    if not settings.cache.enabled:
        raise cache_off()
    return await ResponseCache.open(settings.cache, settings.database_url, settings.storage.redis_url)


async def _stop(cache: ResponseCache) -> None:
    await cache.close()


#: the process's response cache
CACHE: Service[ResponseCache] = Service("cache", _start, _stop)


async def _reports(services: Services) -> Reports:
    from sophia.cache.admin import Reports

    return Reports((await services.open()).db)


#: false-hit reports, in the process's database (the ``cache_reports`` table, created once)
CACHE_REPORTS: Service[Reports] = Service("cache-reports", _reports)
