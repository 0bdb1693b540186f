"""PostgreSQL: an asyncpg pool whose every query runs in a READ ONLY transaction under a timeout.

The connection layer of the read-only promise, three ways: the session default
``default_transaction_read_only=on``; each query in an explicit ``BEGIN READ ONLY`` transaction (so
a ``SET`` of the default cannot lift it); and a role that holds only USAGE and SELECT (see
``create_readonly_role``: ``warehouse.url`` should connect as it), which also keeps superuser-only
functions (``pg_read_file``, server-side ``lo_export``, ``COPY … TO PROGRAM``) out of reach.
``statement_timeout`` bounds every statement (``pg_sleep`` included) and
``idle_in_transaction_session_timeout`` any transaction left open. asyncpg resets a connection when
it returns to the pool and then runs ``DISCARD ALL`` (settings, prepared statements, LISTENs,
advisory locks, temporary objects), so nothing one statement left in its session outlives it. Statements go through the extended protocol,
which takes exactly one statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg

from sophia.errors import ConfigError, InvalidRequest, StorageError
from sophia.settings.warehouse import WarehouseSettings
from sophia.storage.db import redact_url
from sophia.warehouse.backends.base import Backend, Column

_SCHEMES = ("postgresql://", "postgres://")


class PostgresBackend(Backend):
    dialect = "postgres"

    def __init__(self, url: str, settings: WarehouseSettings, *, guard: bool = True) -> None:
        super().__init__(url, settings, guard=guard)
        if not url.startswith(_SCHEMES):
            raise ConfigError("a PostgreSQL warehouse URL looks like postgresql://role@host:5432/db")
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    def _server_settings(self) -> dict[str, str]:
        timeout_ms = str(int(self.settings.statement_timeout * 1000))
        return {
            "default_transaction_read_only": "on",
            "statement_timeout": timeout_ms,
            "idle_in_transaction_session_timeout": str(int(self.settings.statement_timeout * 2000)),
            "application_name": "sophia-warehouse",
        }

    async def _pool_ready(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self.url,
                        min_size=1,
                        max_size=self.settings.pool_size,
                        server_settings=self._server_settings(),
                        command_timeout=self.settings.statement_timeout + 5,
                        statement_cache_size=0,  # ad-hoc statements; DISCARD ALL drops prepared ones
                        reset=_discard_session,
                    )
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    raise StorageError(
                        f"cannot connect to the PostgreSQL warehouse {redact_url(self.url)}: {type(exc).__name__}"
                    ) from None
        assert self._pool is not None
        return self._pool

    async def _run(self, sql: str, max_rows: int) -> tuple[list[Column], list[Sequence[Any]]]:
        pool = await self._pool_ready()
        try:
            async with pool.acquire() as conn, conn.transaction(readonly=True):
                statement = await conn.prepare(sql)
                columns = [Column(a.name, a.type.name.upper()) for a in statement.get_attributes()]
                if not columns:
                    await statement.fetch()
                    return [], []
                rows = await (await statement.cursor()).fetch(max_rows) if max_rows else []
                return columns, [tuple(r) for r in rows]
        except asyncpg.QueryCanceledError as exc:
            raise InvalidRequest(f"the statement was cancelled: {exc}", code="query_timeout") from None
        except asyncpg.PostgresError as exc:
            raise InvalidRequest(str(exc), code="query_failed") from None
        except (OSError, asyncpg.InterfaceError) as exc:
            raise StorageError(
                f"the PostgreSQL warehouse {redact_url(self.url)} failed: {type(exc).__name__}"
            ) from None

    async def tables(self) -> list[str]:
        _, rows = await self._run(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "ORDER BY 1",
            100_000,
        )
        return [str(r[0]) for r in rows]

    async def columns(self, table: str) -> list[Column]:
        pool = await self._pool_ready()
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            rows = await conn.fetch(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                table,
            )
        return [Column(r[0], str(r[1]).upper(), r[2] == "YES") for r in rows]

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


async def _discard_session(conn: asyncpg.Connection) -> None:
    await conn.reset()
    await conn.execute("DISCARD ALL")


#: the server-side large-object functions that write; a READ ONLY transaction does not stop them
LARGE_OBJECT_WRITERS = (
    "lo_create(oid)",
    "lo_creat(integer)",
    "lo_from_bytea(oid, bytea)",
    "lo_put(oid, bigint, bytea)",
    "lo_import(text)",
    "lo_import(text, oid)",
    "lo_unlink(oid)",
    "lowrite(integer, bytea)",
    "lo_truncate(integer, integer)",
    "lo_truncate64(integer, bigint)",
)


async def create_readonly_role(
    admin_dsn: str,
    role: str,
    schema: str = "public",
    *,
    login: bool = False,
    password: str | None = None,
    revoke_large_objects: bool = False,
) -> None:
    """Create (or tighten) ``role``: USAGE on ``schema``, SELECT on its tables now and later, nothing more.

    ``login`` (implied by a ``password``): a LOGIN role for ``warehouse.url``
    (``postgresql://role:password@host/db``); else a NOLOGIN role to grant to login roles. The role may not create objects in the schema or
    temporary tables in the database, and its sessions default to read-only transactions. Run as
    a role that may create roles and owns the schema's tables (the database owner or a superuser).

    ``REVOKE TEMPORARY`` from the role matters only once PUBLIC lost TEMPORARY on the database too
    (PostgreSQL grants it to PUBLIC by default); the READ ONLY transaction refuses temporary tables
    anyway. A READ ONLY transaction does *not* refuse ``lo_create``/``lo_from_bytea``: with
    ``revoke_large_objects`` EXECUTE on the large-object writers is revoked from PUBLIC, i.e. from
    every non-superuser role of this database, which a warehouse database can usually afford.
    """
    conn = await asyncpg.connect(admin_dsn)
    try:
        q_role, q_schema = _ident(role), _ident(schema)
        database = await conn.fetchval("SELECT current_database()")
        async with conn.transaction():
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            login_clause = "LOGIN" if login or password is not None else "NOLOGIN"
            verb = "ALTER" if exists else "CREATE"
            await conn.execute(
                f"{verb} ROLE {q_role} {login_clause} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            )
            if password is not None:
                await conn.execute(f"ALTER ROLE {q_role} PASSWORD {_literal(password)}")
            for statement in (
                f"GRANT CONNECT ON DATABASE {_ident(database)} TO {q_role}",
                f"REVOKE TEMPORARY ON DATABASE {_ident(database)} FROM {q_role}",
                f"REVOKE CREATE ON SCHEMA {q_schema} FROM {q_role}",
                f"GRANT USAGE ON SCHEMA {q_schema} TO {q_role}",
                f"GRANT SELECT ON ALL TABLES IN SCHEMA {q_schema} TO {q_role}",
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA {q_schema} GRANT SELECT ON TABLES TO {q_role}",
                f"ALTER ROLE {q_role} SET default_transaction_read_only = on",
            ):
                await conn.execute(statement)
            if revoke_large_objects:
                for function in LARGE_OBJECT_WRITERS:
                    await conn.execute(f"REVOKE EXECUTE ON FUNCTION pg_catalog.{function} FROM PUBLIC")
    finally:
        await conn.close()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
