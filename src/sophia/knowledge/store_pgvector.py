"""The chunk store for many instances: PostgreSQL with pgvector.

The chunk table is shared; the vector half of a search runs in PostgreSQL as an exact scan
(``ORDER BY embedding <=> q``, ties by chunk id in byte order), so it ranks exactly as the embedded
store's matrix does. The full-text half is bm25s in each instance over the same table (see
``sophia.knowledge.store``), so the same query gives the same top hits on either store.
Filters run in SQL here (``filters.sql_where``) with the semantics the in-memory postings have.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sophia.errors import ConfigError
from sophia.knowledge.filters import Filters, sql_where
from sophia.knowledge.store import Store
from sophia.storage import Database, open_database

DIM = 384


class PgVectorStore(Store):
    name = "pgvector"
    embedding_type = f"vector({DIM})"
    metadata_type = "JSONB"
    vector_param = "?::text::vector"

    @classmethod
    async def open(cls, database: str | Database) -> PgVectorStore:
        """The store in the PostgreSQL database ``database`` (a URL, or a shared ``Database``)."""
        owned = isinstance(database, str)
        db = await open_database(database) if isinstance(database, str) else database
        try:
            if db.dialect != "postgresql":
                raise ConfigError("the pgvector knowledge store needs a postgresql:// database")
            row = await db.fetchone("SELECT 1 AS ok FROM pg_available_extensions WHERE name = 'vector'")
            if row is None:
                raise ConfigError(
                    "the PostgreSQL server has no pgvector extension: install it (e.g. postgresql-NN-pgvector) "
                    "or leave knowledge.url unset for the embedded store"
                )
            await db.migrate(["CREATE EXTENSION IF NOT EXISTS vector", *cls.schema()])
        except BaseException:
            if owned:
                await db.close()
            raise
        return cls(db, owned=owned)

    def vector_value(self, vector: np.ndarray) -> Any:
        return "[" + ",".join(map(str, np.asarray(vector, dtype=np.float32).tolist())) + "]"

    async def vector_search(self, vector: np.ndarray, filters: Filters, n: int) -> list[tuple[str, float]]:
        where, params = sql_where(filters)
        query = self.vector_value(vector)
        rows = await self.db.fetchall(
            "SELECT c.chunk_id, (c.embedding <#> ?::text::vector) AS negdot FROM knowledge_chunks c "
            f'WHERE {where} ORDER BY negdot, c.chunk_id COLLATE "C" LIMIT ?',
            [query, *params, n],
        )
        return [(r["chunk_id"], -float(r["negdot"])) for r in rows]
