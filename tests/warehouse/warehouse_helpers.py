"""Helpers shared by the warehouse tests (settings, the PostgreSQL warehouse's URLs)."""

from __future__ import annotations

from dataclasses import dataclass

from sophia.settings.warehouse import WarehouseSettings
from sophia.storage.testing import TEST_POSTGRES_URL

#: short timeouts so the statements that sleep are cut quickly; versions re-read on every hit
SETTINGS = WarehouseSettings(statement_timeout=1.0, confirm_interval=0)


@dataclass(frozen=True)
class PostgresWarehouse:
    admin_url: str  #: the database, as its owner (superuser on the test server)
    readonly_url: str  #: the same database as the read-only role
    role: str


def server_url(database: str) -> str:
    """The test server's URL for ``database`` (as the admin user)."""
    base = TEST_POSTGRES_URL.rsplit("/", 1)[0]
    return f"{base}/{database}"
