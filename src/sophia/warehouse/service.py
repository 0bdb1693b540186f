"""The warehouse as a service of the process container: ``await services.get(WAREHOUSE)``.

The backend comes from ``warehouse.url`` (default: the demo warehouse
``duckdb:///<data_dir>/warehouse.duckdb``, built by ``sophia demo-data``); data versions live in
the accounts' database, shared with every other process of the installation. A load bumps the
response cache's ``warehouse.<table>`` tags too, when the cache is on, so gateway answers computed
from the old data are not served again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sophia.container import Service, Services
from sophia.errors import ConfigError

if TYPE_CHECKING:
    from sophia.settings import Settings
    from sophia.warehouse.warehouse import Warehouse

log = logging.getLogger(__name__)

DEMO_FILE = "warehouse.duckdb"


def warehouse_url(settings: Settings) -> str:
    """``warehouse.url``, or the demo warehouse's file (ConfigError telling how to build it if missing)."""
    if settings.warehouse.url:
        return settings.warehouse.url
    path = settings.data_dir / DEMO_FILE
    if not path.is_file():
        raise ConfigError(
            f"no warehouse is configured and the demo warehouse {path} does not exist: run "
            "`sophia demo-data` to build it, or set warehouse.url (SOPHIA_WAREHOUSE__URL)"
        )
    return f"duckdb:///{path}"


def cache_tag(table: str) -> str:
    """The response cache's tag for answers computed from ``table``."""
    return f"warehouse.{table}"


async def record_load(services: Services, tables: list[str]) -> dict[str, int]:
    """A load changed ``tables`` (``sophia warehouse loaded TABLE``, ``sophia demo-data``): bump their
    data versions in Sophia's database and the response cache's tags; new versions by table.

    Needs no warehouse connection, so a loader process can call it without opening the engine;
    every process serving the warehouse sees the new versions within ``warehouse.confirm_interval``.
    """
    from sophia.warehouse.versions import DataVersions

    accounts = await services.open()
    bumped = await DataVersions(accounts.db).bump(tables)
    await _bump_cache_tags(services, sorted(bumped))
    return bumped


async def _bump_cache_tags(services: Services, tables: list[str]) -> None:
    if not services.settings.cache.enabled or not tables:
        return
    from sophia.cache.service import CACHE

    cache = await services.get(CACHE)
    for table in tables:
        dropped = await cache.bump(cache_tag(table))
        log.debug("warehouse load of %s dropped %d cached answers", table, dropped)


async def _start(services: Services) -> Warehouse:
    from sophia.warehouse.backends.registry import open_backend
    from sophia.warehouse.versions import DataVersions
    from sophia.warehouse.warehouse import Warehouse

    settings = services.settings
    backend = open_backend(warehouse_url(settings), settings.warehouse)
    accounts = await services.open()
    versions = DataVersions(accounts.db, confirm_interval=settings.warehouse.confirm_interval)

    async def bump_cache_tags(tables: list[str]) -> None:
        await _bump_cache_tags(services, tables)

    return Warehouse(backend, settings.warehouse, versions=versions, on_loaded=bump_cache_tags)


async def _stop(warehouse: Warehouse) -> None:
    await warehouse.close()


#: the process's warehouse
WAREHOUSE: Service[Warehouse] = Service("warehouse", _start, _stop)
