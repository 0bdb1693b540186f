"""DuckDB, the embedded default: one file, opened read-only with the configuration locked.

The connection layer of the read-only promise: ``read_only=True`` (no write reaches the file),
``enable_external_access=false`` (no file, URL or extension outside the database: read_csv,
COPY … TO, ATTACH, INSTALL/LOAD, EXPORT DATABASE all fail) and ``lock_configuration=true`` (no
``SET`` can undo either). Extension autoloading is off, so nothing is fetched at run time.

DuckDB connections are not thread safe and queries hold no GIL: each query runs in a worker
thread on its own ``cursor()`` (a fresh connection to the same database instance, so temp tables,
macros and variables a statement leaves behind die with it). A timer interrupts a statement that
runs past ``statement_timeout``. A read-only connection does not see a file replaced by a load
elsewhere; ``reopen`` opens the new file and closes the old one once its last query ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from sophia.errors import ConfigError, InvalidRequest
from sophia.settings.warehouse import WarehouseSettings
from sophia.warehouse.backends.base import Backend, Column

#: the settings of every warehouse connection; tests assert each one holds
READ_ONLY_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}


def path_from_url(url: str) -> Path:
    """``duckdb:///abs/file.duckdb`` or ``duckdb:///rel/file.duckdb`` -> the file's path."""
    if not url.startswith("duckdb:///"):
        raise ConfigError("a DuckDB warehouse URL looks like duckdb:///path/to/file.duckdb")
    rest = url[len("duckdb:///") :]
    return Path("/" + rest[1:]) if rest.startswith("/") else Path(rest)


class DuckDBBackend(Backend):
    dialect = "duckdb"
    reopen_on_load = True

    def __init__(self, url: str, settings: WarehouseSettings, *, guard: bool = True) -> None:
        super().__init__(url, settings, guard=guard)
        self.path = path_from_url(url)
        if not self.path.is_file():
            raise ConfigError(f"the DuckDB warehouse {self.path} does not exist")
        # DuckDB keeps one database instance per file and process: the old connection must be closed
        # before the file is opened again, or the "new" connection is the old instance. Queries wait
        # (``_idle``) while a reopen swaps the connection; a reopen waits for running queries.
        self._idle = threading.Condition()
        self._running = 0
        self._swapping = False
        self._closed = False
        self._con: duckdb.DuckDBPyConnection | None = self._connect()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(str(self.path), read_only=True, config=dict(READ_ONLY_CONFIG))
        except duckdb.Error as exc:
            raise ConfigError(f"cannot open the DuckDB warehouse {self.path}: {exc}") from None

    async def _run(self, sql: str, max_rows: int) -> tuple[list[Column], list[Sequence[Any]]]:
        return await asyncio.to_thread(self._run_sync, sql, max_rows)

    def _run_sync(self, sql: str, max_rows: int) -> tuple[list[Column], list[Sequence[Any]]]:
        cursor = self._cursor()
        timer = threading.Timer(self.settings.statement_timeout, cursor.interrupt)
        timer.start()
        try:
            cursor.execute(sql)
            rows: list[Sequence[Any]] = list(cursor.fetchmany(max_rows)) if cursor.description else []
            columns = [Column(d[0], str(d[1]).upper()) for d in cursor.description or []]
        except duckdb.InterruptException:
            raise InvalidRequest(
                f"the statement ran past the {self.settings.statement_timeout:g} s timeout and was cancelled",
                code="query_timeout",
            ) from None
        except duckdb.Error as exc:
            raise InvalidRequest(str(exc), code="query_failed") from None
        finally:
            timer.cancel()
            cursor.close()
            with self._idle:
                self._running -= 1
                self._idle.notify_all()
        return columns, rows

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._idle:
            self._idle.wait_for(lambda: not self._swapping)
            if self._closed or self._con is None:
                raise InvalidRequest("the warehouse is closed", code="query_failed")
            self._running += 1
            try:
                return self._con.cursor()
            except duckdb.Error as exc:
                self._running -= 1
                raise InvalidRequest(str(exc), code="query_failed") from None

    async def tables(self) -> list[str]:
        _, rows = await self._run(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1", 100_000
        )
        return [str(r[0]) for r in rows]

    async def columns(self, table: str) -> list[Column]:
        _, rows = await self._run(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            f"WHERE table_schema = 'main' AND table_name = {_literal(table)} ORDER BY ordinal_position",
            100_000,
        )
        return [Column(str(r[0]), str(r[1]).upper(), r[2] == "YES") for r in rows]

    async def reopen(self) -> None:
        await asyncio.to_thread(self._swap, True)

    async def close(self) -> None:
        await asyncio.to_thread(self._swap, False)

    def _swap(self, reopen: bool) -> None:
        """Close the connection once its queries are done; then open the file again if ``reopen``."""
        with self._idle:
            self._idle.wait_for(lambda: not self._swapping)
            if self._closed:
                return
            self._swapping = True
            self._idle.wait_for(lambda: self._running == 0)
            old, self._con = self._con, None
        try:
            if old is not None:
                old.close()
            if reopen:
                self._con = self._connect()
        finally:
            with self._idle:
                self._closed = not reopen
                self._swapping = False
                self._idle.notify_all()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
