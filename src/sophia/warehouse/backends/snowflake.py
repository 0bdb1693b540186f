"""Snowflake (optional extra ``sophia[snowflake]``): the connector is imported only when a URL names it.

``snowflake://user:password@account/database/schema?warehouse=WH&role=ROLE``. Snowflake has no
read-only session, so the connection layer is the role: give ``warehouse.url`` a role granted only
USAGE on the warehouse, database and schema and SELECT on the tables (``GRANT SELECT ON FUTURE
TABLES``). Every statement runs with ``STATEMENT_TIMEOUT_IN_SECONDS`` set on the session, in a
worker thread (the connector is blocking), through a cursor of its own. The guard checks
statements in sqlglot's ``snowflake`` dialect, which also refuses stages (``@stage``), ``PUT``/``GET``,
``COPY INTO`` and ``SYSTEM$`` functions.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sophia.errors import ConfigError, DependencyMissing, InvalidRequest, StorageError
from sophia.settings.warehouse import WarehouseSettings
from sophia.storage.db import redact_url
from sophia.warehouse.backends.base import Backend, Column


def _connector() -> Any:
    try:
        import snowflake.connector
    except ImportError:
        raise DependencyMissing(
            "snowflake-connector-python", "snowflake", purpose="a Snowflake warehouse"
        ) from None
    return snowflake.connector


def connect_args(url: str, settings: WarehouseSettings) -> dict[str, Any]:
    """The connector's ``connect(**kwargs)`` for ``url`` (password included: never log this)."""
    parts = urlsplit(url)
    if parts.scheme != "snowflake" or not parts.hostname or not parts.username:
        raise ConfigError(
            "a Snowflake warehouse URL looks like snowflake://user:password@account/database/schema"
        )
    path = [unquote(p) for p in parts.path.strip("/").split("/") if p]
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    args: dict[str, Any] = {
        "account": parts.hostname,
        "user": unquote(parts.username),
        "password": unquote(parts.password or ""),
        "application": "sophia",
        "session_parameters": {
            "STATEMENT_TIMEOUT_IN_SECONDS": max(1, int(settings.statement_timeout)),
            "QUERY_TAG": "sophia-warehouse",
        },
    }
    if len(path) > 0:
        args["database"] = path[0]
    if len(path) > 1:
        args["schema"] = path[1]
    for key in ("warehouse", "role"):
        if key in query:
            args[key] = query[key]
    return args


class SnowflakeBackend(Backend):
    dialect = "snowflake"

    def __init__(self, url: str, settings: WarehouseSettings, *, guard: bool = True) -> None:
        super().__init__(url, settings, guard=guard)
        self._module = _connector()
        self._args = connect_args(url, settings)
        self._con: Any = None
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        with self._lock:
            if self._con is None:
                try:
                    self._con = self._module.connect(**self._args)
                except self._module.errors.Error as exc:
                    raise StorageError(
                        f"cannot connect to the Snowflake warehouse {redact_url(self.url)}: {_message(exc)}"
                    ) from None
            return self._con

    async def _run(self, sql: str, max_rows: int) -> tuple[list[Column], list[Sequence[Any]]]:
        return await asyncio.to_thread(self._run_sync, sql, max_rows)

    def _run_sync(self, sql: str, max_rows: int) -> tuple[list[Column], list[Sequence[Any]]]:
        cursor = self._connection().cursor()
        try:
            cursor.execute(sql, timeout=max(1, int(self.settings.statement_timeout)))
            description = cursor.description or []
            rows: list[Sequence[Any]] = list(cursor.fetchmany(max_rows)) if description else []
            columns = [
                Column(d[0], _type_name(self._module, d[1]), bool(d[6]) if len(d) > 6 else True)
                for d in description
            ]
            return columns, rows
        except self._module.errors.Error as exc:
            raise InvalidRequest(_message(exc), code="query_failed") from None
        finally:
            cursor.close()

    async def tables(self) -> list[str]:
        _, rows = await self._run(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = CURRENT_SCHEMA() ORDER BY 1",
            100_000,
        )
        return [str(r[0]).lower() for r in rows]

    async def columns(self, table: str) -> list[Column]:
        literal = "'" + table.upper().replace("'", "''") + "'"
        _, rows = await self._run(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            f"WHERE table_schema = CURRENT_SCHEMA() AND table_name = {literal} ORDER BY ordinal_position",
            100_000,
        )
        return [Column(str(r[0]).lower(), str(r[1]).upper(), r[2] == "YES") for r in rows]

    async def close(self) -> None:
        with self._lock:
            con, self._con = self._con, None
        if con is not None:
            await asyncio.to_thread(con.close)


def _type_name(module: Any, type_code: Any) -> str:
    names = getattr(getattr(module, "constants", None), "FIELD_ID_TO_NAME", {})
    return str(names.get(type_code, type_code)).upper()


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "msg", None) or exc)
