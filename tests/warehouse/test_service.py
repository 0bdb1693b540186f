"""WAREHOUSE in the process container: the default demo file, the clear error without it, and loads
that bump the response cache's ``warehouse.<table>`` tags."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sophia.cache.service import CACHE
from sophia.container import Services
from sophia.errors import ConfigError
from sophia.settings import load_settings
from sophia.warehouse.service import WAREHOUSE, record_load, warehouse_url


async def test_without_a_warehouse_the_error_says_to_run_demo_data() -> None:
    services = Services(load_settings())
    try:
        with pytest.raises(ConfigError, match="run `sophia demo-data`"):
            await services.get(WAREHOUSE)
    finally:
        await services.close()


def test_an_explicit_url_wins() -> None:
    settings = load_settings(warehouse={"url": "postgresql://reader@db/wh"})
    assert warehouse_url(settings) == "postgresql://reader@db/wh"


class RecordingCache:
    def __init__(self) -> None:
        self.tags: list[str] = []

    async def bump(self, tag: str) -> int:
        self.tags.append(tag)
        return 0


async def test_the_demo_file_is_the_default_and_loads_bump_cache_tags(tpch_duckdb: Path) -> None:
    settings = load_settings()
    shutil.copy(tpch_duckdb, settings.data_dir / "warehouse.duckdb")
    services = Services(settings)
    cache = RecordingCache()
    services.provide(CACHE, cache)  # type: ignore[arg-type]
    try:
        warehouse = await services.get(WAREHOUSE)
        assert warehouse.dialect == "duckdb"
        assert (await warehouse.query("SELECT count(*) FROM nation")).rows == [[25]]
        assert await warehouse.loaded(["nation", "region"]) == {"nation": 1, "region": 1}
        assert cache.tags == ["warehouse.nation", "warehouse.region"]
        rows = await (await services.open()).db.fetchall(
            "SELECT table_name, version FROM sophia_warehouse_versions"
        )
        assert sorted((r["table_name"], r["version"]) for r in rows) == [("nation", 1), ("region", 1)]
    finally:
        await services.close()


async def test_with_the_cache_off_a_load_only_bumps_versions(tpch_duckdb: Path) -> None:
    settings = load_settings(cache={"enabled": False})
    shutil.copy(tpch_duckdb, settings.data_dir / "warehouse.duckdb")
    services = Services(settings)
    try:
        warehouse = await services.get(WAREHOUSE)
        assert await warehouse.loaded(["nation"]) == {"nation": 1}
        assert services.running(CACHE) is None
    finally:
        await services.close()


async def test_record_load_needs_no_warehouse_and_is_seen_by_a_serving_process(tpch_duckdb: Path) -> None:
    settings = load_settings(cache={"enabled": False}, warehouse={"confirm_interval": 0})
    shutil.copy(tpch_duckdb, settings.data_dir / "warehouse.duckdb")
    serving, loader = Services(settings), Services(settings)
    try:
        warehouse = await serving.get(WAREHOUSE)
        sql = "SELECT count(*) FROM nation"
        await warehouse.query(sql)
        assert (await warehouse.query(sql)).cache == "hit"
        assert await record_load(loader, ["NATION"]) == {"nation": 1}
        assert loader.running(WAREHOUSE) is None
        assert (await warehouse.query(sql)).cache == "miss"
    finally:
        await loader.close()
        await serving.close()


async def test_catalog_reads_depend_on_every_load(tpch_duckdb: Path) -> None:
    settings = load_settings(cache={"enabled": False}, warehouse={"confirm_interval": 0})
    shutil.copy(tpch_duckdb, settings.data_dir / "warehouse.duckdb")
    services = Services(settings)
    try:
        warehouse = await services.get(WAREHOUSE)
        for sql in ("SHOW TABLES", "SELECT table_name FROM information_schema.tables"):
            await warehouse.query(sql)
            assert (await warehouse.query(sql)).cache == "hit"
            await warehouse.loaded(["some_new_table"])
            assert (await warehouse.query(sql)).cache == "miss"
    finally:
        await services.close()
