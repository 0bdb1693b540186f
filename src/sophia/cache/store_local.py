"""The embedded default store: entries in SQLite (via ``sophia.storage``), vectors rebuilt in memory.

Every entry is one row (answer, usage, the compared text and its vector as float32 bytes); its
tags are rows of ``cache_entry_tags`` so that a data-version bump finds them by index. On start
the live rows are read back into the in-process index, so a restart keeps the cache.

Several processes may share the database. Each keeps its own index; a hit is always confirmed
against the database and tag versions are read from it, so purges and bumps made elsewhere are
respected at once. On **PostgreSQL** the instances also keep their indexes in step: every new
entry and every deletion is announced with ``NOTIFY`` on a channel named after the schema, and each
instance ``LISTEN``s, loads announced entries (with their vectors) and drops deleted ones, so one
instance's answers are served by the others within milliseconds. On SQLite (one machine) the other
processes only see each other's new entries after a restart.

Observation rows (the cache's learning state) are rows of ``cache_observations``, numbered by an
ever-growing id that is also the readers' cursor. Writers take one lock while they insert, so ids
become visible in order and a reader that has seen id *n* never later finds a smaller one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import fields
from time import time

import numpy as np
import orjson

from sophia.cache.entries import Entry, EntryTable, Payload
from sophia.cache.observations import Observation
from sophia.cache.store import CacheStore
from sophia.errors import StorageError
from sophia.storage import Database, open_database

log = logging.getLogger(__name__)

_COLUMNS = "id, namespace, exact_key, text, model, tenant, tags, created, expires, semantic"
#: deleted ids per notification (a NOTIFY payload must stay under 8,000 bytes)
_IDS_PER_NOTE = 100
#: observation columns, in ``Observation`` field order
_OBS_FIELDS = [f.name for f in fields(Observation)]
_OBS_COLUMNS = ", ".join(_OBS_FIELDS)
#: observation rows per INSERT (13 parameters each: under SQLite's oldest limit of 999)
_OBS_PER_INSERT = 70
#: serialises observation writers (PostgreSQL), so a reader's cursor never skips a late commit
_OBS_LOCK = "sophia.cache.observations"


def _schema(dialect: str) -> list[str]:
    blob = "BYTEA" if dialect == "postgresql" else "BLOB"
    return [
        f"""CREATE TABLE IF NOT EXISTS cache_entries (
            id TEXT PRIMARY KEY, namespace TEXT NOT NULL, exact_key TEXT NOT NULL UNIQUE,
            text TEXT NOT NULL, model TEXT NOT NULL, tenant TEXT NOT NULL, tags TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION, semantic BIGINT NOT NULL,
            vector {blob}, body {blob} NOT NULL, model_id TEXT NOT NULL, prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS cache_entries_expires ON cache_entries (expires)",
        "CREATE TABLE IF NOT EXISTS cache_entry_tags (tag TEXT NOT NULL, entry_id TEXT NOT NULL, "
        "PRIMARY KEY (tag, entry_id))",
        "CREATE INDEX IF NOT EXISTS cache_entry_tags_entry ON cache_entry_tags (entry_id)",
        "CREATE TABLE IF NOT EXISTS cache_tags (tag TEXT PRIMARY KEY, version BIGINT NOT NULL)",
        # AUTOINCREMENT: SQLite never reuses the id of a trimmed row, so cursors stay valid
        f"""CREATE TABLE IF NOT EXISTS cache_observations (
            id {"BIGSERIAL PRIMARY KEY" if dialect == "postgresql" else "INTEGER PRIMARY KEY AUTOINCREMENT"},
            alias TEXT NOT NULL, namespace TEXT NOT NULL, entry_id TEXT NOT NULL, kind TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL, z DOUBLE PRECISION NOT NULL, cos DOUBLE PRECISION NOT NULL,
            margin DOUBLE PRECISION NOT NULL, spread DOUBLE PRECISION NOT NULL, y SMALLINT NOT NULL,
            cost_usd DOUBLE PRECISION NOT NULL, age DOUBLE PRECISION NOT NULL, origin TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS cache_observations_alias ON cache_observations (alias, id)",
    ]


def entry_from_row(row: dict) -> Entry:
    return Entry(
        id=row["id"],
        namespace=row["namespace"],
        exact=row["exact_key"],
        text=row["text"],
        model=row["model"],
        tenant=row["tenant"],
        tags={str(k): int(v) for k, v in orjson.loads(row["tags"]).items()},
        created=float(row["created"]),
        expires=None if row["expires"] is None else float(row["expires"]),
        semantic=bool(row["semantic"]),
    )


def _row(entry: Entry, vector: np.ndarray | None, payload: Payload) -> tuple[object, ...]:
    return (
        entry.id,
        entry.namespace,
        entry.exact,
        entry.text,
        entry.model,
        entry.tenant,
        orjson.dumps(entry.tags).decode(),
        entry.created,
        entry.expires,
        int(entry.semantic),
        None if vector is None else np.asarray(vector, dtype=np.float32).tobytes(),
        payload.body,
        payload.model_id,
        payload.prompt_tokens,
        payload.completion_tokens,
        payload.cost_usd,
    )


def _obs_params(row: Observation) -> list[object]:
    """The row's values with the types the columns take (asyncpg refuses a float for SMALLINT)."""
    params: list[object] = []
    for name in _OBS_FIELDS:
        value = getattr(row, name)
        if name == "y":
            params.append(int(value))
        else:
            params.append(value if isinstance(value, str) else float(value))
    return params


def _load(table: EntryTable, rows: Iterable[dict]) -> None:
    for row in rows:
        vector = np.frombuffer(row["vector"], dtype=np.float32) if row["vector"] is not None else None
        table.add(entry_from_row(row), vector)


class LocalStore(CacheStore):
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._db: Database | None = None
        self.origin = secrets.token_hex(8)  # this instance's notifications, skipped when they come back
        self._channel = ""
        self._table: EntryTable | None = None
        self._notes: asyncio.Queue[dict] = asyncio.Queue()
        self._unlisten: Callable[[], Awaitable[None]] | None = None
        self._follower: asyncio.Task[None] | None = None

    @property
    def db(self) -> Database:
        assert self._db is not None, "LocalStore.start() was not awaited"
        return self._db

    async def start(self, table: EntryTable, *, follow: bool = True) -> None:
        self._db = await open_database(self.database_url)
        await self.db.migrate(_schema(self.db.dialect))
        if self.db.dialect == "postgresql":
            row = await self.db.fetchone("SELECT current_schema() AS s")
            self._channel = f"sophia_cache:{row['s'] if row else 'public'}"[:63]
        if not follow:
            return
        self._table = table
        # Listen first, then load: an entry announced in between is loaded twice, which is harmless.
        self._unlisten = await self._listen() if self._channel else None
        if self._unlisten is not None:
            self._follower = asyncio.create_task(self._follow(), name="sophia-cache-pg-follower")
        _load(table, await self._live_rows())

    async def _live_rows(self, entry_ids: list[str] | None = None) -> list[dict]:
        """Unexpired entries with their vectors, oldest first (only ``entry_ids`` when given)."""
        one = "" if entry_ids is None else f" AND id IN ({', '.join('?' * len(entry_ids))})"
        params: list[object] = [time(), *(entry_ids or ())]
        return await self.db.fetchall(
            f"SELECT {_COLUMNS}, vector FROM cache_entries WHERE (expires IS NULL OR expires > ?){one} "
            "ORDER BY created",
            params,
        )

    # -- keeping other instances in step (PostgreSQL) ---------------------------------------------

    async def _listen(self) -> Callable[[], Awaitable[None]] | None:
        return await self.db.listen(self._channel, self._heard, lambda: self._notes.put_nowait({"lost": 1}))

    async def _relisten(self) -> None:
        """The listening connection died (a database restart): listen again, then reload every entry.

        Entries deleted meanwhile may linger in the index; the store confirms every hit, so they
        cost a miss (and are dropped then), never a stale answer.
        """
        assert self._table is not None
        log.warning("cache: lost the PostgreSQL notification channel; reconnecting")
        dead, self._unlisten = self._unlisten, None
        if dead is not None:
            await dead()  # gives the dead connection back to the pool
        delay = 0.5
        while self._unlisten is None:
            try:
                self._unlisten = await self._listen()
            except StorageError as exc:
                log.warning("cache: cannot listen again yet (retrying in %.0f s): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        rows = await self._live_rows()
        _load(self._table, rows)
        log.warning("cache: listening again, %d entries reloaded", len(rows))

    async def _announce(self, **note: str | list[str]) -> None:
        if self._channel:
            await self.db.notify(self._channel, orjson.dumps({"o": self.origin, **note}).decode())

    def _heard(self, payload: str) -> None:
        try:
            note = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if isinstance(note, dict) and note.get("o") != self.origin:
            self._notes.put_nowait(note)

    async def _follow(self) -> None:
        """Apply other instances' announcements in order: load new entries, drop deleted ones."""
        assert self._table is not None
        while True:
            note = await self._notes.get()
            try:
                if "lost" in note:
                    await self._relisten()
                elif "put" in note:
                    # missing ones were deleted or expired meanwhile (a deletion, if any, follows)
                    put = note["put"] if isinstance(note["put"], list) else [note["put"]]
                    _load(self._table, await self._live_rows([str(i) for i in put]))
                elif "del" in note:
                    self._table.remove_many(str(i) for i in note["del"])
                elif "bump" in note:
                    self._table.bumped(str(note["bump"]))
            except StorageError as exc:
                log.warning("cache: could not apply another instance's change (%s): %s", note, exc)

    async def put(self, entry: Entry, vector: np.ndarray | None, payload: Payload) -> None:
        await self.put_many([(entry, vector, payload)])

    async def put_many(self, writes: list[tuple[Entry, np.ndarray | None, Payload]]) -> None:
        """One batch: entries with the same exact key as a stored one replace it (the last one of the
        batch wins); an entry that another process stored first under the same key is skipped."""
        latest = {entry.exact: (entry, vector, payload) for entry, vector, payload in writes}
        batch = list(latest.values())
        exact = list(latest)
        old: list[str] = []
        for start in range(0, len(exact), 500):
            chunk = exact[start : start + 500]
            rows = await self.db.fetchall(
                f"SELECT id FROM cache_entries WHERE exact_key IN ({', '.join('?' * len(chunk))})", chunk
            )
            old.extend(r["id"] for r in rows)
        if old:
            await self.delete(old)
        await self.db.executemany(
            f"INSERT INTO cache_entries ({_COLUMNS}, vector, body, model_id, prompt_tokens, "
            "completion_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (exact_key) DO NOTHING",
            [_row(entry, vector, payload) for entry, vector, payload in batch],
        )
        tags = [(tag, entry.id) for entry, _, _ in batch for tag in entry.tags]
        if tags:
            await self.db.executemany(
                "INSERT INTO cache_entry_tags (tag, entry_id) VALUES (?, ?) ON CONFLICT DO NOTHING", tags
            )
        ids = [entry.id for entry, _, _ in batch]
        for start in range(0, len(ids), _IDS_PER_NOTE):
            await self._announce(put=ids[start : start + _IDS_PER_NOTE])

    async def fetch(self, entry: Entry) -> Payload | None:
        row = await self.db.fetchone(
            "SELECT body, model_id, prompt_tokens, completion_tokens, cost_usd FROM cache_entries "
            "WHERE id = ?",
            (entry.id,),
        )
        if row is None:
            return None
        return Payload(
            bytes(row["body"]),
            row["model_id"],
            int(row["prompt_tokens"]),
            int(row["completion_tokens"]),
            float(row["cost_usd"]),
        )

    async def delete(self, entry_ids: Iterable[str]) -> int:
        ids = list(entry_ids)
        deleted = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            deleted += await self.db.execute(f"DELETE FROM cache_entries WHERE id IN ({marks})", chunk)
            await self.db.execute(f"DELETE FROM cache_entry_tags WHERE entry_id IN ({marks})", chunk)
        for start in range(0, len(ids), _IDS_PER_NOTE):
            await self._announce(**{"del": ids[start : start + _IDS_PER_NOTE]})
        return deleted

    async def select(self, *, tag: str | None, model: str | None, tenant: str | None) -> set[str]:
        where, params = [], []
        if tag is not None:
            where.append("id IN (SELECT entry_id FROM cache_entry_tags WHERE tag = ?)")
            params.append(tag)
        for column, value in (("model", model), ("tenant", tenant)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = await self.db.fetchall(f"SELECT id FROM cache_entries{clause}", params)
        return {r["id"] for r in rows}

    async def versions(self, tags: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(tags))
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        rows = await self.db.fetchall(f"SELECT tag, version FROM cache_tags WHERE tag IN ({marks})", wanted)
        found = {r["tag"]: int(r["version"]) for r in rows}
        return {t: found.get(t, 0) for t in wanted}

    async def bump(self, tag: str) -> int:
        await self.db.execute(
            "INSERT INTO cache_tags (tag, version) VALUES (?, 1) "
            "ON CONFLICT (tag) DO UPDATE SET version = cache_tags.version + 1",
            (tag,),
        )
        row = await self.db.fetchone("SELECT version FROM cache_tags WHERE tag = ?", (tag,))
        await self._announce(bump=tag)
        return int(row["version"]) if row else 1

    async def count(self) -> int:
        row = await self.db.fetchone("SELECT COUNT(*) AS n FROM cache_entries")
        return int(row["n"]) if row else 0

    async def sweep(self, now: float) -> None:
        rows = await self.db.fetchall("SELECT id FROM cache_entries WHERE expires <= ?", (now,))
        await self.delete(r["id"] for r in rows)

    # -- observations (the cache's learning state) ------------------------------------------------

    async def add_observations(self, rows: Sequence[Observation]) -> None:
        """Append rows in one transaction.

        Not a plain ``executemany``: on PostgreSQL, two writers could commit their ids out of order
        and a reader between the commits would move its cursor past rows it never saw. Under one
        lock, ids are drawn and committed in order (SQLite serialises writers anyway).
        """
        steps = []
        for start in range(0, len(rows), _OBS_PER_INSERT):
            chunk = rows[start : start + _OBS_PER_INSERT]
            marks = ", ".join([f"({', '.join('?' * len(_OBS_FIELDS))})"] * len(chunk))
            params = [value for row in chunk for value in _obs_params(row)]
            steps.append((f"INSERT INTO cache_observations ({_OBS_COLUMNS}) VALUES {marks}", params))
        if steps:
            await self.db.transaction(steps, lock=_OBS_LOCK)

    async def observations(self, after: str = "", limit: int = 5000) -> tuple[list[Observation], str]:
        """Rows with an id above the cursor (the last id read, as text), oldest first."""
        if after and not (after.isascii() and after.isdigit()):
            raise ValueError(f"{after!r} is not a cursor of the local cache store")
        if limit <= 0:
            return [], after
        rows = await self.db.fetchall(
            f"SELECT id, {_OBS_COLUMNS} FROM cache_observations WHERE id > ? ORDER BY id LIMIT ?",
            (int(after or 0), limit),
        )
        if not rows:
            return [], after
        return [Observation.from_dict(row) for row in rows], str(rows[-1]["id"])

    async def trim_observations(self, keep: int) -> int:
        """Per alias over ``keep`` rows, delete those below its ``keep``-th newest id (both found
        through the ``(alias, id)`` index)."""
        keep = max(keep, 0)
        counts = await self.db.fetchall(
            "SELECT alias, COUNT(*) AS n FROM cache_observations GROUP BY alias HAVING COUNT(*) > ?",
            (keep,),
        )
        dropped = 0
        for row in counts:
            alias = row["alias"]
            if keep == 0:
                dropped += await self.db.execute("DELETE FROM cache_observations WHERE alias = ?", (alias,))
                continue
            edge = await self.db.fetchone(
                "SELECT id FROM cache_observations WHERE alias = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
                (alias, keep - 1),
            )
            if edge is not None:  # None: another instance trimmed it meanwhile
                dropped += await self.db.execute(
                    "DELETE FROM cache_observations WHERE alias = ? AND id < ?", (alias, edge["id"])
                )
        if dropped:
            log.info("cache: trimmed %d old observation rows (keeping %d per alias)", dropped, keep)
        return dropped

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
            self._follower = None
        if self._unlisten is not None:
            await self._unlisten()
            self._unlisten = None
        if self._db is not None:
            await self._db.close()
            self._db = None
