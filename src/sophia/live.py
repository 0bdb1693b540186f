"""Rotated credentials reach a running process without a restart.

``EnvironmentWatcher`` watches the active environment of a process's settings: it polls the
backend's revisions every ``secrets.watch_interval`` seconds and, with PostgreSQL storage, also
``LISTEN``s on ``sophia_environments`` (``sophia env set`` / ``rotate`` ``NOTIFY`` there after
writing, so every instance hears of a change at once). On a change it builds the settings again
and applies what can change under load:

- a provider's key or headers: the gateway's adapter for it takes them for its next call
  (``Adapter.rekey``; calls in flight finish with the old key, which two-secret rotation keeps valid);
- the database URL's user or password: every open PostgreSQL pool of the process gets the new
  credentials (``storage.db.rotate_credentials``: the key store, the ledger and the cache at once);
- the known secret values, so new ones are masked in every output.

Anything else that changed is logged by path as taking effect at the next restart. A reload that
fails (an environment that no longer evaluates) changes nothing and is logged; the next change
tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from sophia.container import Services
from sophia.errors import SophiaError
from sophia.gateway.service import GATEWAY
from sophia.settings import ProviderSettings, Settings, reload_settings

log = logging.getLogger(__name__)

#: the PostgreSQL channel on which a changed environment is announced (payload: its name)
CHANNEL = "sophia_environments"


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the leaves that differ between two settings trees (values never printed)."""
    if hasattr(old, "model_dump") and hasattr(new, "model_dump"):
        old, new = old.model_dump(), new.model_dump()
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            out += changed_paths(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    return [] if old == new else [prefix or "(settings)"]


def _same_server(a: str, b: str) -> bool:
    """Whether two database URLs name the same server and database (only credentials differ)."""
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme, x.hostname, x.port, x.path, x.query) == (y.scheme, y.hostname, y.port, y.path, y.query)


async def apply(services: Services, old: Settings, new: Settings) -> list[str]:
    """Apply ``new`` to the running services where it can be applied live; returns the changed paths
    that need a restart."""
    from sophia.storage.db import rotate_credentials

    applied: set[str] = set()
    gateway = services.running(GATEWAY)
    for name in sorted(set(old.providers) | set(new.providers)):
        before, after = old.providers.get(name), new.providers.get(name)
        if before == after:
            continue
        adapter = gateway.catalog.adapters.get(name) if gateway is not None else None
        if adapter is not None:
            adapter.rekey(after or ProviderSettings())
            applied.add(f"providers.{name}")
    if old.database_url != new.database_url and _same_server(old.database_url, new.database_url):
        await rotate_credentials(old.database_url, new.database_url)
        applied.add("storage.database_url")
    services.settings = new  # for services started from now on
    later = [p for p in changed_paths(old, new) if not any(p == a or p.startswith(a + ".") for a in applied)]
    return later


class EnvironmentWatcher:
    """Applies changes of the active environment to ``services`` (see the module docstring)."""

    def __init__(self, services: Services) -> None:
        from sophia.settings.environment import open_backend

        self.services = services
        settings = services.settings
        if settings.environment is None:
            raise ValueError("the settings came from no environment: there is nothing to watch")
        self.name = settings.environment[0]
        self.interval = settings.secrets.watch_interval
        self.backend = open_backend(settings)
        self.reloads = 0
        self._wake = asyncio.Event()
        self._stop_listening: Callable[[], Awaitable[None]] | None = None
        self._seen = self._fingerprint()

    def _fingerprint(self) -> tuple[tuple[str, int], ...]:
        # Locally, every environment's revision (file reads): the active one changes when any of its
        # imports does. On Pulumi ESC, one call for the active environment's revision (a change in an
        # import alone is seen at the next change of the active one, or announced over PostgreSQL).
        if self.backend.kind != "local":
            return ((self.name, self.backend.revision(self.name)),)
        return tuple((n, self.backend.revision(n)) for n in self.backend.names())

    async def start_listening(self) -> None:
        """LISTEN for announced changes when the storage database can deliver them (PostgreSQL)."""
        accounts = await self.services.open()
        with contextlib.suppress(SophiaError):
            self._stop_listening = await accounts.db.listen(CHANNEL, lambda _payload: self._wake.set())

    async def check(self, *, announced: bool = False) -> bool:
        """Reload and apply if the environment changed since the last check (or a change was
        ``announced``: an import's change that the revisions polled do not show); True when it did."""
        try:
            seen = await asyncio.to_thread(self._fingerprint)
        except SophiaError as exc:
            log.warning("could not read the environments' revisions: %s", exc.message)
            return False
        if seen == self._seen and not announced:
            return False
        old = self.services.settings
        try:
            new = await asyncio.to_thread(reload_settings, old)
        except SophiaError as exc:
            log.error(
                "environment %s changed but does not load; nothing was applied: %s", self.name, exc.message
            )
            self._seen = seen  # tried; the next change tries again
            return False
        later = await apply(self.services, old, new)
        self._seen = seen
        self.reloads += 1
        log.info(
            "environment %s changed (revision %s): applied", self.name, new.environment and new.environment[1]
        )
        if later:
            log.warning("changed settings that take effect at the next restart: %s", ", ".join(later))
        return True

    async def run(self) -> None:
        """Check on every announcement and at least every ``interval`` seconds, until cancelled."""
        await self.start_listening()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                announced = self._wake.is_set()
                self._wake.clear()
                await self.check(announced=announced)
        finally:
            if self._stop_listening is not None:
                await self._stop_listening()


async def announce(database_url: str, name: str) -> bool:
    """Tell every process watching over PostgreSQL that ``name`` changed; False where nothing listens."""
    from sophia.storage.db import open_database

    if not database_url.startswith(("postgresql:", "postgres:", "postgresql+asyncpg:")):
        return False
    db = await open_database(database_url)
    try:
        await db.notify(CHANNEL, name)
    finally:
        await db.close()
    return True
