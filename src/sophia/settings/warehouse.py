"""The warehouse's section (``warehouse:``, ``SOPHIA_WAREHOUSE__…``): which engine, its limits, the metrics."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class WarehouseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None,
        description="The warehouse: duckdb:///path/file.duckdb, postgresql://…, snowflake://…; "
        "None: the demo warehouse in the data folder (built by `sophia demo-data`). For PostgreSQL, "
        "connect as a role that can only read (`create_readonly_role` in sophia.warehouse.backends.postgres).",
    )
    row_limit: int = Field(200, ge=1, description="Rows per page when a query names no limit.")
    max_rows: int = Field(
        10_000, ge=1, description="Hard cap on the rows of one page, whatever the caller asks."
    )
    statement_timeout: float = Field(
        30.0, gt=0, description="Seconds one statement may run before the engine cancels it."
    )
    pool_size: int = Field(4, ge=1, le=64, description="PostgreSQL: connections in the warehouse's pool.")
    cache_entries: int = Field(1_000, ge=0, description="Query results kept in memory (0: no result cache).")
    cache_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="Memory budget of the result cache, in bytes."
    )
    confirm_interval: float = Field(
        1.0,
        ge=0,
        description="Seconds the data versions read from Sophia's database are trusted before a cached "
        "result is served again (0: re-read them before every hit). A load in another process is "
        "seen within this interval.",
    )
    metrics: list[Path] = Field(
        default_factory=list,
        description="dbt semantic-model YAML files or folders (semantic_models: and metrics:); "
        "empty: the definitions shipped for the demo warehouse.",
    )
