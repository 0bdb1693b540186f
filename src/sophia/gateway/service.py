"""The gateway as a service of the process container: ``await services.get(GATEWAY)``.

Importing this module is cheap (the engine, the providers and the cache load when the service
starts), so an MCP server can name the gateway without paying for it until a tool needs a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sophia.container import Service, Services

if TYPE_CHECKING:
    from sophia.cache.cache import ResponseCache
    from sophia.gateway.engine import Gateway


async def _start(services: Services) -> Gateway:
    from sophia.cache.service import CACHE
    from sophia.gateway.engine import Gateway

    accounts = await services.open()
    cache: ResponseCache | None = None
    if services.settings.cache.enabled:
        cache = await services.get(CACHE)  # lent: the container closes it after the gateway
    from sophia.observe.service import TRACER

    tracer = await services.get(TRACER)  # lent: None when observe.tracing is off
    gateway = Gateway(services.settings, accounts, cache, tracer=tracer)
    await gateway.start()
    return gateway


async def _stop(gateway: Gateway) -> None:
    await gateway.close()


#: the process's model gateway (its accounts and cache are the container's)
GATEWAY: Service[Gateway] = Service("gateway", _start, _stop)
