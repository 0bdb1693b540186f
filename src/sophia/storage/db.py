"""A tiny async database layer over SQLite (the embedded default) and PostgreSQL (many instances).

SQL is written once, with ``?`` placeholders and portable types (TEXT, BIGINT, DOUBLE PRECISION;
JSON as TEXT); the PostgreSQL backend rewrites the placeholders to ``$1..$n`` for asyncpg.

* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (``sqlite:///:memory:`` for tests):
  stdlib ``sqlite3`` in WAL mode with ``synchronous=NORMAL``, driven by ONE dedicated worker thread
  per ``Database`` so the event loop never blocks. A busy timeout lets several processes share
  the file; writes take the write lock up front (``BEGIN IMMEDIATE``) so they wait instead of failing.
* ``postgresql://user@host:port/db``: an asyncpg pool (1..4 connections). Extra query parameters
  become server settings, e.g. ``?search_path=myschema``.

Every driver error comes out as ``StorageError``; messages never carry the URL's password.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from sophia.errors import ConfigError, StorageError

Params = Sequence[Any]
Row = dict[str, Any]
T = TypeVar("T")

#: seconds a writer waits for another process's lock on a shared SQLite file before failing
SQLITE_BUSY_TIMEOUT = 10.0
#: one advisory lock id for schema migrations, so concurrent first starts do not race on CREATE
_MIGRATION_LOCK = 0x50F1A


class Database(ABC):
    """One database, reached by URL. All methods are coroutines except ``dialect``."""

    dialect: Literal["sqlite", "postgresql"]

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement (autocommitted); return how many rows it changed."""

    @abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for every row, all in one transaction."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row of a query, as dicts keyed by column name."""

    @abstractmethod
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a query, or None."""

    @abstractmethod
    async def migrate(self, statements: Sequence[str]) -> None:
        """Run schema statements (``CREATE … IF NOT EXISTS``) in one transaction, safe to race."""

    @abstractmethod
    async def ensure_columns(self, table: str, columns: dict[str, str]) -> None:
        """Add each ``name: SQL type`` column that ``table`` lacks (a schema grown since the table was
        made); safe to race with another process doing the same. Names come from code, never users."""

    @abstractmethod
    async def transaction(self, steps: Sequence[tuple[str, Params]], *, lock: str | None = None) -> list[int]:
        """Run statements in one transaction, serialised with every other writer of ``lock`` (in any
        process); returns each statement's changed-row count. SQLite takes its write lock up front
        (``BEGIN IMMEDIATE``), which serialises all writers; PostgreSQL takes a transaction-scoped
        advisory lock on ``lock`` first, so each statement reads what the previous holder committed."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and threads; idempotent."""

    async def notify(self, channel: str, payload: str) -> None:  # noqa: B027 - optional capability
        """Tell every listener of ``channel`` (other processes too); a no-op where nothing listens."""

    async def listen(
        self, channel: str, callback: Callable[[str], None], on_lost: Callable[[], None] | None = None
    ) -> Callable[[], Awaitable[None]] | None:
        """Call ``callback(payload)`` for each notification on ``channel``; returns the stopper.

        None when this database cannot deliver notifications between processes (SQLite). On
        PostgreSQL it is ``LISTEN``/``NOTIFY`` on a connection held until the stopper runs;
        ``on_lost()`` is called if that connection dies (listen again to resume).
        """
        return None


async def open_database(url: str) -> Database:
    """Open the database named by ``url``: ConfigError for an unknown scheme, StorageError if it fails."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        if not url.startswith("sqlite:///"):
            raise ConfigError(
                "a SQLite database URL looks like sqlite:///relative.db or sqlite:////abs/path.db"
            )
        return await SQLiteDatabase.open(url[len("sqlite:///") :])
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return await PostgresDatabase.open(url.replace("postgresql+asyncpg:", "postgresql:", 1))
    raise ConfigError(f"unsupported database URL scheme {scheme!r}: use sqlite:///… or postgresql://…")


async def open_with_schema(database: str | Database, schema: Sequence[str]) -> tuple[Database, bool]:
    """``database`` (a URL, opened here, or a shared ``Database``) with ``schema`` applied.

    Returns ``(db, owned)``: ``owned`` is True when it was opened here, so the caller closes it.
    A URL opened here is closed again if the schema cannot be applied.
    """
    owned = isinstance(database, str)
    db = await open_database(database) if isinstance(database, str) else database
    try:
        await db.migrate(schema)
    except BaseException:
        if owned:
            await db.close()
        raise
    return db, owned


def redact_url(url: str) -> str:
    """``url`` without its password and query, for messages and logs."""
    try:
        parts = urlsplit(url)
        user = f"{parts.username}@" if parts.username else ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return f"{url.split(':', 1)[0]}://…"
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


# -- SQLite ---------------------------------------------------------------------------------------


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the lock.

    Two processes opening a new file at once (``sophia run --workers 2``) both try to switch it to
    WAL; SQLite answers "database is locked" to one of them at once, without its busy handler.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").close()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (0600; it holds prompts, answers and the
    ledger), or take group and other access away from one that has it. SQLite gives its -wal and -shm
    files the database file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            stat = part.stat()
            if stat.st_mode & 0o077 and stat.st_uid == os.getuid():
                part.chmod(stat.st_mode & 0o700)
        except FileNotFoundError:
            continue


class SQLiteDatabase(Database):
    dialect: Literal["sqlite", "postgresql"] = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        # One thread owns the connection: calls are serialised and never block the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sophia-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    @classmethod
    async def open(cls, path: str) -> SQLiteDatabase:
        db = cls(path)
        try:
            await db._run(db._connect)
        except StorageError:
            await db.close()
            raise
        return db

    def _connect(self) -> None:
        if self.path != ":memory:" and not self.path.startswith("file:"):
            _private_file(Path(self.path))
        conn = sqlite3.connect(
            self.path, timeout=SQLITE_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
            _switch_to_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error:
            conn.close()
            raise
        self._conn = conn

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StorageError(f"the SQLite database {self.path} is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite database {self.path}: {exc}") from exc
        except OSError as exc:
            raise StorageError(f"SQLite database {self.path}: {exc.strerror or exc}") from exc

    @property
    def _db(self) -> sqlite3.Connection:
        assert self._conn is not None, "SQLiteDatabase used before open()"
        return self._conn

    def _execute(self, sql: str, params: Params) -> int:
        cur = self._db.execute(sql, params)
        try:
            return cur.rowcount
        finally:
            cur.close()

    def _in_transaction(self, work: Callable[[sqlite3.Connection], None]) -> None:
        conn = self._db
        conn.execute("BEGIN IMMEDIATE")
        try:
            work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _fetch(self, sql: str, params: Params, limit: int | None) -> list[Row]:
        cur = self._db.execute(sql, params)
        try:
            rows = cur.fetchall() if limit is None else cur.fetchmany(limit)
            names = [d[0] for d in cur.description or ()]
        finally:
            cur.close()
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._run(self._execute, sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        batch = list(rows)
        await self._run(self._in_transaction, lambda conn: conn.executemany(sql, batch).close())

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._run(self._fetch, sql, params, None)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._run(self._fetch, sql, params, 1)
        return rows[0] if rows else None

    async def migrate(self, statements: Sequence[str]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            for statement in statements:
                conn.execute(statement).close()

        await self._run(self._in_transaction, work)

    async def transaction(self, steps: Sequence[tuple[str, Params]], *, lock: str | None = None) -> list[int]:
        counts: list[int] = []

        def work(conn: sqlite3.Connection) -> None:
            for sql, params in steps:
                cur = conn.execute(sql, params)
                counts.append(cur.rowcount)
                cur.close()

        await self._run(self._in_transaction, work)
        return counts

    async def ensure_columns(self, table: str, columns: dict[str, str]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            # Inside BEGIN IMMEDIATE: another process cannot add the same column between look and add.
            have = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
            for name, kind in columns.items():
                if name not in have:
                    conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {kind}').close()

        await self._run(self._in_transaction, work)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite database {self.path}: cannot close: {exc}") from exc
        finally:
            # The close job ran after every job queued before it: the worker is idle, the join immediate.
            self._executor.shutdown(wait=True)


# -- PostgreSQL -----------------------------------------------------------------------------------

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")


@lru_cache(maxsize=1024)
def to_dollar_params(sql: str) -> str:
    """Rewrite ``?`` placeholders to ``$1..$n``, leaving quoted strings and identifiers alone."""
    counter = 0

    def number(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group() != "?":
            return match.group()
        counter += 1
        return f"${counter}"

    return _TOKENS.sub(number, sql)


def _rowcount(status: str) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresDatabase(Database):
    dialect: Literal["sqlite", "postgresql"] = "postgresql"

    def __init__(self, pool: Any, where: str) -> None:
        import asyncpg  # imported here so SQLite-only installs never load it

        self._pool = pool
        self.where = where
        self.url = ""  # the URL it was opened with (or last given new credentials by)
        self._closed = False
        self._errors = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
        _OPEN_POOLS.add(self)

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 4) -> PostgresDatabase:
        import asyncpg

        where = redact_url(url)
        try:
            pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, command_timeout=60)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ValueError) as exc:
            # `from None`: the driver's own exception may quote the DSN, password included.
            raise StorageError(f"cannot connect to PostgreSQL at {where}: {_describe(exc, url)}") from None
        db = cls(pool, where)
        db.url = url
        return db

    async def use_credentials(self, url: str) -> None:
        """Connect with ``url`` (new user or password, same server) from now on, without a failed call.

        Connections in use finish their work on the old credentials (PostgreSQL keeps an
        authenticated session whatever happens to its password); idle ones are closed and every new
        connection authenticates with ``url``. Two-secret rotation keeps the old credentials valid
        until this has run everywhere.
        """
        self._pool.set_connect_args(dsn=url.replace("postgresql+asyncpg:", "postgresql:", 1))
        self.url = url
        await self._pool.expire_connections()

    async def _call(self, what: str, sql: str, work: Callable[[Any], Any]) -> Any:
        if self._closed:
            raise StorageError(f"the PostgreSQL pool for {self.where} is closed")
        try:
            async with self._pool.acquire() as conn:
                return await work(conn)
        except self._errors as exc:
            statement = " ".join(sql.split())[:80]
            raise StorageError(f"PostgreSQL {what} failed at {self.where} ({statement}…): {exc}") from exc

    async def execute(self, sql: str, params: Params = ()) -> int:
        query = to_dollar_params(sql)
        status = await self._call("statement", sql, lambda conn: conn.execute(query, *params))
        return _rowcount(status)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        query, batch = to_dollar_params(sql), list(rows)

        async def work(conn: Any) -> None:
            async with conn.transaction():
                await conn.executemany(query, batch)

        await self._call("batch write", sql, work)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        query = to_dollar_params(sql)
        records = await self._call("query", sql, lambda conn: conn.fetch(query, *params))
        return [dict(r) for r in records]

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        query = to_dollar_params(sql)
        record = await self._call("query", sql, lambda conn: conn.fetchrow(query, *params))
        return None if record is None else dict(record)

    async def migrate(self, statements: Sequence[str]) -> None:
        async def work(conn: Any) -> None:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                for statement in statements:
                    await conn.execute(statement)

        await self._call("migration", statements[0] if statements else "", work)

    async def transaction(self, steps: Sequence[tuple[str, Params]], *, lock: str | None = None) -> list[int]:
        async def work(conn: Any) -> list[int]:
            async with conn.transaction():
                if lock is not None:
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", lock)
                return [
                    _rowcount(await conn.execute(to_dollar_params(sql), *params)) for sql, params in steps
                ]

        counts: list[int] = await self._call("transaction", steps[0][0] if steps else "", work)
        return counts

    async def ensure_columns(self, table: str, columns: dict[str, str]) -> None:
        await self.migrate(
            [
                f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS "{name}" {kind}'
                for name, kind in columns.items()
            ]
        )

    async def notify(self, channel: str, payload: str) -> None:
        await self.execute("SELECT pg_notify(?, ?)", (channel, payload))

    async def listen(
        self, channel: str, callback: Callable[[str], None], on_lost: Callable[[], None] | None = None
    ) -> Callable[[], Awaitable[None]]:
        def deliver(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            callback(payload)

        def lost(_conn: Any) -> None:
            if on_lost is not None and not self._closed:
                on_lost()

        if self._closed:
            raise StorageError(f"the PostgreSQL pool for {self.where} is closed")
        conn = None
        try:
            conn = await self._pool.acquire()
            await conn.add_listener(channel, deliver)
            conn.add_termination_listener(lost)
        except self._errors as exc:
            if conn is not None:
                await self._pool.release(conn)
            raise StorageError(f"PostgreSQL LISTEN {channel} failed at {self.where}: {exc}") from exc

        async def stop() -> None:
            # A connection that died is already back in the pool (which replaces it): both steps
            # then raise InterfaceError, which is nothing to report.
            with contextlib.suppress(*self._errors):
                conn.remove_termination_listener(lost)
                await conn.remove_listener(channel, deliver)
            with contextlib.suppress(*self._errors):
                await self._pool.release(conn)

        return stop

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._pool.close()


def _describe(exc: BaseException, url: str) -> str:
    text = f"{type(exc).__name__}: {exc}"
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text


_OPEN_POOLS: weakref.WeakSet[PostgresDatabase] = weakref.WeakSet()


async def rotate_credentials(old_url: str, new_url: str) -> int:
    """Give every open PostgreSQL database of this process that was opened with ``old_url`` the new
    credentials of ``new_url``; returns how many. The services of a process share their settings'
    database URL, so a rotated ledger password reaches the key store, the ledger and the cache at once."""
    moved = 0
    for db in list(_OPEN_POOLS):
        if not db._closed and db.url == old_url:
            await db.use_credentials(new_url)
            moved += 1
    return moved
