"""What both chunk stores share: the tables, writes in one transaction, and the in-memory index.

Two tables hold everything (``knowledge_documents``: the document as ingested and its content
hash; ``knowledge_chunks``: each chunk's verbatim text, span, metadata and embedding) and
``knowledge_state`` a version counter that every write bumps. Each process keeps a
``ChunkIndex`` (bm25s + filter postings) built from the chunk table; before a search it reads the
counter, and a number other than the one it built from (another process wrote) makes it reload.
Its own writes it applies to the index directly, re-tokenising only the chunks they touch.

Subclasses say how an embedding is stored and how the vector half is searched:
``EmbeddedStore`` (SQLite, a numpy matrix in memory) and ``PgVectorStore`` (pgvector in SQL).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from sophia.knowledge.chunking import Chunk, Span, search_text
from sophia.knowledge.documents import Document
from sophia.knowledge.filters import Filters
from sophia.knowledge.index import ChunkIndex, Entry, Vocabulary, make_entry
from sophia.storage import Database

#: serialises the writers of one store across processes (PostgreSQL advisory lock, SQLite's write lock)
WRITE_LOCK = "sophia-knowledge"


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as a hit shows it, with what its document says about it."""

    chunk: Chunk
    title: str
    source: str
    kind: str
    url: str | None
    content_hash: str


@dataclass(frozen=True)
class Change:
    """One write: documents to put (with their chunks and embeddings) and ids to delete."""

    put: Sequence[tuple[Document, Sequence[Chunk], np.ndarray]] = ()
    delete: Sequence[str] = ()


class Store(ABC):
    """A chunk store over one ``Database``. Coroutines only; CPU work goes to threads."""

    name = "store"
    embedding_type = "BLOB"
    metadata_type = "TEXT"
    vector_param = "?"

    def __init__(self, db: Database, *, owned: bool) -> None:
        self.db = db
        self._owned = owned
        self._vocab = Vocabulary()
        self._entries: dict[str, Entry] = {}
        self._by_doc: dict[str, list[str]] = {}
        self._index: ChunkIndex | None = None
        self._version = -1  # the table version the entries reflect; -1: load everything
        self._dirty = True
        self._lock = asyncio.Lock()

    @classmethod
    def schema(cls) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS knowledge_documents (document_id TEXT PRIMARY KEY, source TEXT NOT NULL, "
            "kind TEXT NOT NULL, title TEXT NOT NULL, url TEXT, content_hash TEXT NOT NULL, body TEXT NOT NULL, "
            "chunks BIGINT NOT NULL, updated_at DOUBLE PRECISION NOT NULL)",
            "CREATE INDEX IF NOT EXISTS knowledge_documents_source ON knowledge_documents (source)",
            "CREATE TABLE IF NOT EXISTS knowledge_chunks (chunk_id TEXT PRIMARY KEY, document_id TEXT NOT NULL, "
            "seq BIGINT NOT NULL, source TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL, span TEXT NOT NULL, "
            f"metadata {cls.metadata_type} NOT NULL, embedding {cls.embedding_type} NOT NULL)",
            "CREATE INDEX IF NOT EXISTS knowledge_chunks_document ON knowledge_chunks (document_id)",
            "CREATE TABLE IF NOT EXISTS knowledge_state (name TEXT PRIMARY KEY, version BIGINT NOT NULL)",
            "INSERT INTO knowledge_state (name, version) VALUES ('chunks', 0) ON CONFLICT DO NOTHING",
        ]

    @abstractmethod
    def vector_value(self, vector: np.ndarray) -> Any:
        """An embedding as this store's ``embedding`` column takes it."""

    @abstractmethod
    async def vector_search(self, vector: np.ndarray, filters: Filters, n: int) -> list[tuple[str, float]]:
        """The ``n`` chunks nearest ``vector`` (cosine) that pass ``filters``: best first, ties by id."""

    def _row_loaded(self, row: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """A chunk row read in a full reload (the embedded store keeps its vector)."""

    def _chunk_written(self, chunk_id: str, vector: np.ndarray | None) -> None:  # noqa: B027 - optional hook
        """A chunk this process wrote (vector) or deleted (None)."""

    def _rebuilt(self, index: ChunkIndex) -> None:  # noqa: B027 - optional hook, runs in a worker thread
        """A new index was built: attach what the subclass keeps, aligned with ``index.ids``."""

    def _load_columns(self) -> str:
        return ""

    # -- documents --------------------------------------------------------------------------------

    async def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """The stored content hash of each of ``ids`` that is stored."""
        out: dict[str, str] = {}
        for k in range(0, len(ids), 500):
            part = list(ids[k : k + 500])
            marks = ",".join("?" * len(part))
            rows = await self.db.fetchall(
                f"SELECT document_id, content_hash FROM knowledge_documents WHERE document_id IN ({marks})",
                part,
            )
            out.update({r["document_id"]: r["content_hash"] for r in rows})
        return out

    async def source_ids(self, source: str) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT document_id FROM knowledge_documents WHERE source = ?", (source,)
        )
        return [r["document_id"] for r in rows]

    async def document(self, document_id: str) -> tuple[Document, str] | None:
        """The stored document and its content hash."""
        row = await self.db.fetchone(
            "SELECT body, content_hash FROM knowledge_documents WHERE document_id = ?", (document_id,)
        )
        if row is None:
            return None
        return Document.from_dict(orjson.loads(row["body"])), row["content_hash"]

    async def stats(self) -> dict[str, Any]:
        rows = await self.db.fetchall(
            "SELECT source, COUNT(*) AS documents, COALESCE(SUM(chunks), 0) AS chunks "
            "FROM knowledge_documents GROUP BY source ORDER BY source"
        )
        by_source = {
            r["source"]: {"documents": int(r["documents"]), "chunks": int(r["chunks"])} for r in rows
        }
        return {
            "store": self.name,
            "documents": sum(s["documents"] for s in by_source.values()),
            "chunks": sum(s["chunks"] for s in by_source.values()),
            "by_source": by_source,
        }

    # -- writes -----------------------------------------------------------------------------------

    async def write(self, change: Change) -> None:
        """Put and delete documents in one transaction; the index follows on the next search."""
        steps: list[tuple[str, Sequence[Any]]] = []
        now = time.time()
        gone = [*change.delete, *(doc.id for doc, _, _ in change.put)]
        for doc_id in gone:
            steps.append(("DELETE FROM knowledge_chunks WHERE document_id = ?", (doc_id,)))
            steps.append(("DELETE FROM knowledge_documents WHERE document_id = ?", (doc_id,)))
        for doc, chunks, vectors in change.put:
            body = orjson.dumps(doc.to_dict()).decode()
            steps.append(
                (
                    "INSERT INTO knowledge_documents (document_id, source, kind, title, url, content_hash, body, "
                    "chunks, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        doc.id,
                        doc.source,
                        doc.kind,
                        doc.title,
                        doc.url,
                        doc.content_hash,
                        body,
                        len(chunks),
                        now,
                    ),
                )
            )
            for chunk, vector in zip(chunks, vectors, strict=True):
                steps.append(
                    (
                        "INSERT INTO knowledge_chunks (chunk_id, document_id, seq, source, kind, text, span, metadata, "
                        f"embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, {self.vector_param})",
                        (
                            chunk.chunk_id,
                            doc.id,
                            chunk.seq,
                            doc.source,
                            doc.kind,
                            chunk.text,
                            orjson.dumps(chunk.span.to_dict()).decode(),
                            orjson.dumps(chunk.metadata).decode(),
                            self.vector_value(vector),
                        ),
                    )
                )
        if not steps:
            return
        steps.append(("UPDATE knowledge_state SET version = version + 1 WHERE name = 'chunks'", ()))
        async with self._lock:
            await self.db.transaction(steps, lock=WRITE_LOCK)
            if await self._read_version() != self._version + 1:
                self._version = -1  # another process wrote too: reload everything on the next search
                return
            self._version += 1
            await asyncio.to_thread(self._apply, change, gone)

    def _apply(self, change: Change, gone: Sequence[str]) -> None:
        """Our own write, applied to the entries (a worker thread, under the store lock)."""
        for doc_id in gone:
            for chunk_id in self._by_doc.pop(doc_id, ()):
                self._entries.pop(chunk_id, None)
                self._chunk_written(chunk_id, None)
        for doc, chunks, vectors in change.put:
            self._by_doc[doc.id] = [c.chunk_id for c in chunks]
            for chunk, vector in zip(chunks, vectors, strict=True):
                text = search_text(doc.title, chunk)
                entry = make_entry(
                    self._vocab, chunk.chunk_id, text, doc.source, doc.kind, doc.id, chunk.metadata
                )
                self._entries[chunk.chunk_id] = entry
                self._chunk_written(chunk.chunk_id, vector)
        self._dirty = True

    # -- the index --------------------------------------------------------------------------------

    async def _read_version(self) -> int:
        row = await self.db.fetchone("SELECT version FROM knowledge_state WHERE name = 'chunks'")
        return int(row["version"]) if row else 0

    async def current(self) -> ChunkIndex:
        """The index as of the table's current version (reloaded or rebuilt here when it is not)."""
        version = await self._read_version()
        index = self._index
        if index is not None and version == self._version and not self._dirty:
            return index
        async with self._lock:
            version = await self._read_version()
            if version != self._version:
                rows = await self.db.fetchall(
                    "SELECT c.chunk_id, c.document_id, c.source, c.kind, c.text, c.span, c.metadata, d.title"
                    f"{self._load_columns()} FROM knowledge_chunks c "
                    "JOIN knowledge_documents d ON d.document_id = c.document_id"
                )
                await asyncio.to_thread(self._load, rows)
                self._version = version
            if self._dirty or self._index is None:
                self._index = await asyncio.to_thread(self._build, list(self._entries.values()))
                self._dirty = False
            return self._index

    def _load(self, rows: list[dict[str, Any]]) -> None:
        self._vocab = Vocabulary()
        self._entries.clear()
        self._by_doc.clear()
        for row in rows:
            metadata = row["metadata"]
            metadata = orjson.loads(metadata) if isinstance(metadata, str | bytes) else metadata
            span = Span.from_dict(orjson.loads(row["span"]))
            chunk = Chunk(row["chunk_id"], row["document_id"], 0, row["text"], span, metadata)
            text = search_text(row["title"], chunk)
            self._entries[chunk.chunk_id] = make_entry(
                self._vocab, chunk.chunk_id, text, row["source"], row["kind"], row["document_id"], metadata
            )
            self._by_doc.setdefault(row["document_id"], []).append(chunk.chunk_id)
            self._row_loaded(row)
        self._dirty = True

    def _build(self, entries: list[Entry]) -> ChunkIndex:
        index = ChunkIndex(entries, self._vocab)
        self._rebuilt(index)
        return index

    async def text_search(self, query: str, filters: Filters, n: int) -> list[tuple[str, float]]:
        index = await self.current()
        return await asyncio.to_thread(lambda: index.text_search(query, index.mask(filters), n))

    async def fetch(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        """The stored chunks among ``chunk_ids``, with their documents' title, source and hash."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = await self.db.fetchall(
            "SELECT c.chunk_id, c.document_id, c.seq, c.text, c.span, c.metadata, d.title, d.source, d.kind, "
            "d.url, d.content_hash FROM knowledge_chunks c JOIN knowledge_documents d ON d.document_id = c.document_id "
            f"WHERE c.chunk_id IN ({marks})",
            list(chunk_ids),
        )
        out = {}
        for r in rows:
            metadata = r["metadata"]
            metadata = orjson.loads(metadata) if isinstance(metadata, str | bytes) else metadata
            span = Span.from_dict(orjson.loads(r["span"]))
            chunk = Chunk(r["chunk_id"], r["document_id"], int(r["seq"]), r["text"], span, metadata)
            out[chunk.chunk_id] = StoredChunk(
                chunk, r["title"], r["source"], r["kind"], r["url"], r["content_hash"]
            )
        return out

    async def close(self) -> None:
        if self._owned:
            await self.db.close()
