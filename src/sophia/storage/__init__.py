"""Storage the gateway's hot path stands on: one small async database layer over SQLite and PostgreSQL.

``open_database(url)`` picks the backend from the URL; the stores (keys, usage ledger) write portable
SQL once with ``?`` placeholders. See ``sophia.storage.db``.
"""

from sophia.storage.db import Database, open_database, open_with_schema, redact_url

__all__ = ["Database", "open_database", "open_with_schema", "redact_url"]
