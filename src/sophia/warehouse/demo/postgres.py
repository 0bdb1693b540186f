"""``load_postgres``: the demo warehouse copied from its DuckDB file into a PostgreSQL schema.

DuckDB exports each table as CSV (ordered by its key), PostgreSQL reads it with COPY, then ANALYZE,
all in one transaction: the demo tables of the schema are dropped and made again, so loading twice
gives the same tables, and a failed load leaves the previous ones in place.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

import duckdb

from sophia.errors import InvalidRequest, StorageError
from sophia.storage.db import redact_url
from sophia.warehouse.demo.build import ORDER_BY, TABLES, schema_statements

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _export(duckdb_path: Path, folder: Path) -> None:
    if not duckdb_path.is_file():
        raise InvalidRequest(f"no demo warehouse at {duckdb_path}: build it first (sophia demo-data)")
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        for table in TABLES:
            target = str(folder / f"{table}.csv").replace("'", "''")
            con.execute(
                f"COPY (SELECT * FROM {table} ORDER BY {ORDER_BY[table]}) TO '{target}' (HEADER, DELIMITER ',')"
            )


async def load_postgres_async(duckdb_path: Path, dsn: str, *, schema: str = "public") -> dict[str, int]:
    """Copy every demo table of ``duckdb_path`` into ``schema`` of the database at ``dsn``."""
    import asyncpg

    if not _IDENTIFIER.match(schema):
        raise InvalidRequest(f"not a plain schema name: {schema!r}", param="schema")
    with tempfile.TemporaryDirectory(prefix="sophia-demo-") as folder:
        await asyncio.to_thread(_export, Path(duckdb_path), Path(folder))
        try:
            conn = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StorageError(f"cannot connect to {redact_url(dsn)}: {type(exc).__name__}: {exc}") from None
        try:
            async with conn.transaction():
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                await conn.execute(f'SET LOCAL search_path TO "{schema}"')
                for table in reversed(TABLES):
                    await conn.execute(f'DROP TABLE IF EXISTS "{schema}".{table} CASCADE')
                for statement in schema_statements():
                    await conn.execute(statement)
                for table in TABLES:
                    path = Path(folder) / f"{table}.csv"
                    await conn.copy_to_table(
                        table, source=path, schema_name=schema, format="csv", header=True
                    )
                    await conn.execute(f'ANALYZE "{schema}".{table}')
                counts = {t: int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".{t}')) for t in TABLES}
        except asyncpg.PostgresError as exc:
            raise StorageError(f"loading the demo warehouse into {redact_url(dsn)} failed: {exc}") from None
        finally:
            await conn.close()
    return counts


def load_postgres(duckdb_path: Path, dsn: str, *, schema: str = "public") -> dict[str, int]:
    """``load_postgres_async`` for synchronous callers (not from inside a running event loop)."""
    return asyncio.run(load_postgres_async(duckdb_path, dsn, schema=schema))
