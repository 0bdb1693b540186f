"""Data versions of warehouse tables, kept in Sophia's own database (SQLite or PostgreSQL).

``sophia_warehouse_versions(table_name, version, loaded_at)``: a load (``Warehouse.loaded``,
``sophia warehouse loaded TABLE``, ``sophia demo-data``) bumps each table it changed, in whatever
process it runs; every process reads the versions before it serves a cached result, so a result
is never served for data older than the last load seen in the database. Reads are remembered for
``confirm_interval`` seconds (0: every hit reads the database): that interval is the only window
in which a load made by another process can go unseen.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sophia.storage.db import Database

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS sophia_warehouse_versions (
        table_name TEXT PRIMARY KEY,
        version BIGINT NOT NULL,
        loaded_at DOUBLE PRECISION NOT NULL
    )""",
]

_BUMP = (
    "INSERT INTO sophia_warehouse_versions (table_name, version, loaded_at) VALUES (?, 1, ?) "
    "ON CONFLICT (table_name) DO UPDATE SET version = sophia_warehouse_versions.version + 1, "
    "loaded_at = excluded.loaded_at"
)


class DataVersions:
    """Every table's data version (0 for a table never loaded), read at most every ``confirm_interval``."""

    def __init__(self, db: Database, *, confirm_interval: float = 1.0) -> None:
        self.db = db
        self.confirm_interval = confirm_interval
        self._known: dict[str, int] = {}
        self._read_at = -1.0
        self._ready = False

    async def _ensure(self) -> None:
        if not self._ready:
            await self.db.migrate(SCHEMA)
            self._ready = True

    async def current(self) -> dict[str, int]:
        """All versions, from memory if read within ``confirm_interval``, else from the database."""
        now = time.monotonic()
        if self._read_at >= 0 and now - self._read_at <= self.confirm_interval and self.confirm_interval > 0:
            return self._known
        await self._ensure()
        rows = await self.db.fetchall("SELECT table_name, version FROM sophia_warehouse_versions")
        self._known = {str(r["table_name"]): int(r["version"]) for r in rows}
        self._read_at = now
        return self._known

    async def of(self, tables: Iterable[str]) -> tuple[tuple[str, int], ...]:
        known = await self.current()
        return tuple((t, known.get(t, 0)) for t in sorted(set(tables)))

    async def bump(self, tables: Iterable[str]) -> dict[str, int]:
        """Increase each table's version (one transaction, serialised with other loaders); new versions."""
        names = sorted({t.lower() for t in tables})
        if not names:
            return {}
        await self._ensure()
        now = time.time()
        await self.db.transaction([(_BUMP, (name, now)) for name in names], lock="sophia_warehouse_versions")
        self._read_at = -1.0  # the next read goes to the database
        known = await self.current()
        return {name: known.get(name, 0) for name in names}
