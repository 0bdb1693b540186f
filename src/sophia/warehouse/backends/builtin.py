"""The built-in warehouse backends, registered like any plugin's (``register_warehouse_backends`` hook)."""

from __future__ import annotations

from sophia.settings.warehouse import WarehouseSettings
from sophia.warehouse.backends.base import Backend
from sophia.warehouse.backends.registry import BackendRegistry


def _duckdb(url: str, settings: WarehouseSettings, *, guard: bool = True) -> Backend:
    from sophia.warehouse.backends.duckdb import DuckDBBackend

    return DuckDBBackend(url, settings, guard=guard)


def _postgres(url: str, settings: WarehouseSettings, *, guard: bool = True) -> Backend:
    from sophia.warehouse.backends.postgres import PostgresBackend

    return PostgresBackend(url, settings, guard=guard)


def _snowflake(url: str, settings: WarehouseSettings, *, guard: bool = True) -> Backend:
    from sophia.warehouse.backends.snowflake import SnowflakeBackend

    return SnowflakeBackend(url, settings, guard=guard)


def register_warehouse_backends(registry: BackendRegistry) -> None:
    registry.register("duckdb", _duckdb)
    registry.register("postgresql", _postgres)
    registry.register("postgres", _postgres)
    registry.register("snowflake", _snowflake)
