"""The knowledge room's one object: ingest and sync documents, search them, resolve citations.

A search runs two halves over the chunks the filters keep (bm25s full text, and MiniLM vectors)
and fuses their rankings by reciprocal rank fusion (``1 / (k + rank)`` summed, k = 60): a chunk
found by both halves rises, one that only one half finds still appears. ``mode="text"`` or
``"vector"`` runs one half alone (the quality benchmark compares the three).

Model calls go to the process's one model thread (``sophia.embedder.run_model``), in batches;
everything else that costs CPU runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from sophia.errors import InvalidRequest
from sophia.knowledge.chunking import Chunk, chunk_document, search_text, span_text
from sophia.knowledge.documents import Document, as_documents
from sophia.knowledge.filters import parse_filters
from sophia.knowledge.hits import Citation, Hit, IngestResult
from sophia.knowledge.store import Change, Store

if TYPE_CHECKING:
    from sophia.settings import KnowledgeSettings

Mode = Literal["hybrid", "text", "vector"]
MODES: tuple[Mode, ...] = ("hybrid", "text", "vector")
#: chunks gathered (from whole documents) before they are embedded and written
WRITE_CHUNKS = 512


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def fuse(
    rankings: Sequence[Sequence[tuple[str, float]]], k: int, weights: Sequence[float] | None = None
) -> list[tuple[str, float, list[int]]]:
    """Weighted reciprocal rank fusion: (chunk id, sum of weight / (k + rank), rank in each ranking
    or 0), best first, ties by chunk id (so every store orders them alike)."""
    scores: dict[str, float] = {}
    ranks: dict[str, list[int]] = {}
    for n, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[n]
        for rank, (chunk_id, _) in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (k + rank)
            ranks.setdefault(chunk_id, [0] * len(rankings))[n] = rank
    order = sorted(scores, key=lambda c: (-scores[c], c))
    return [(c, scores[c], ranks[c]) for c in order]


class Knowledge:
    """Documents cut into cited chunks, searchable by text, vectors or both."""

    def __init__(self, store: Store, settings: KnowledgeSettings, *, encoder: Encoder | None = None) -> None:
        self.store = store
        self.settings = settings
        self._encoder = encoder

    @classmethod
    async def open(
        cls, settings: KnowledgeSettings, data_dir: Path, *, encoder: Encoder | None = None
    ) -> Knowledge:
        """The store ``settings.url`` names (default: the embedded store under ``data_dir/knowledge``)."""
        url = settings.url
        store: Store
        if url is None or url.startswith("sqlite:"):
            from sophia.knowledge.store_embedded import EmbeddedStore

            store = await EmbeddedStore.open(url or data_dir / "knowledge" / "knowledge.db")
        else:
            from sophia.knowledge.store_pgvector import PgVectorStore

            store = await PgVectorStore.open(url)
        return cls(store, settings, encoder=encoder)

    async def close(self) -> None:
        await self.store.close()

    # -- writing ----------------------------------------------------------------------------------

    async def ingest(self, documents: Sequence[Document | Mapping[str, Any]]) -> IngestResult:
        """Add new documents and replace changed ones (by content hash); unchanged ones cost nothing."""
        return await self._ingest(as_documents(documents))

    async def sync(self, source: str, documents: Sequence[Document | Mapping[str, Any]]) -> IngestResult:
        """Make ``source`` hold exactly ``documents``: ingest them, delete its documents not among them."""
        if not source:
            raise InvalidRequest("sync needs a source", param="source")
        docs = as_documents(documents, source=source)
        result = await self._ingest(docs)
        keep = {d.id for d in docs}
        gone = [doc_id for doc_id in await self.store.source_ids(source) if doc_id not in keep]
        if gone:
            await self.store.write(Change(delete=gone))
        return IngestResult(
            result.added, result.updated, result.unchanged, len(gone), result.chunks, result.seconds
        )

    async def delete(self, document_ids: Sequence[str]) -> int:
        """Delete documents by id; returns how many were stored."""
        stored = await self.store.hashes(list(document_ids))
        if stored:
            await self.store.write(Change(delete=list(stored)))
        return len(stored)

    async def _ingest(self, docs: list[Document]) -> IngestResult:
        started = time.perf_counter()
        stored = await self.store.hashes([d.id for d in docs])
        todo = [d for d in docs if stored.get(d.id) != d.content_hash]
        added = sum(1 for d in todo if d.id not in stored)
        words = self.settings.chunk_words
        chunked = await asyncio.to_thread(lambda: [(d, chunk_document(d, words=words)) for d in todo])
        embedded = 0
        group: list[tuple[Document, list[Chunk]]] = []
        for n, item in enumerate(chunked):
            group.append(item)
            if sum(len(c) for _, c in group) >= WRITE_CHUNKS or n == len(chunked) - 1:
                texts = [search_text(doc.title, c) for doc, chunks in group for c in chunks]
                vectors = await self._embed(texts)
                put, at = [], 0
                for doc, chunks in group:
                    put.append((doc, chunks, vectors[at : at + len(chunks)]))
                    at += len(chunks)
                await self.store.write(Change(put=put))
                embedded += len(texts)
                group = []
        return IngestResult(
            added=added,
            updated=len(todo) - added,
            unchanged=len(docs) - len(todo),
            chunks=embedded,
            seconds=time.perf_counter() - started,
        )

    async def _embed(self, texts: list[str]) -> np.ndarray:
        from sophia.embedder import run_model

        out = np.empty((len(texts), 384), dtype=np.float32)
        encoder = await self._get_encoder()
        size = self.settings.batch_size
        for k in range(0, len(texts), size):
            vectors, _ = await run_model(encoder.encode, texts[k : k + size])
            out[k : k + size] = vectors
        return out

    async def _get_encoder(self) -> Encoder:
        if self._encoder is None:
            from sophia.embedder import get_encoder

            self._encoder = await asyncio.to_thread(get_encoder)
        return self._encoder

    # -- reading ----------------------------------------------------------------------------------

    async def search(
        self, query: str, *, k: int = 5, filters: Mapping[str, Any] | None = None, mode: Mode = "hybrid"
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query`` among those ``filters`` keep (see ``sophia.knowledge.filters``)."""
        if mode not in MODES:
            raise InvalidRequest(f"unknown search mode {mode!r}: one of {', '.join(MODES)}", param="mode")
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequest("the query is empty", param="query")
        if not 1 <= k <= self.settings.max_k:
            raise InvalidRequest(f"k must be between 1 and {self.settings.max_k}", param="k")
        parsed = parse_filters(filters)
        n = max(self.settings.candidates, k)

        async def text() -> list[tuple[str, float]]:
            return await self.store.text_search(query, parsed, n) if mode != "vector" else []

        async def vector() -> list[tuple[str, float]]:
            if mode == "text":
                return []
            vectors = await self._embed([query])
            return await self.store.vector_search(vectors[0], parsed, n)

        by_text, by_vector = await asyncio.gather(text(), vector())
        if mode == "hybrid":
            weights = (self.settings.text_weight, self.settings.vector_weight)
            fused = fuse([by_text, by_vector], self.settings.rrf_k, weights)[:k]
            picked = [
                (c, s, {h: r for h, r in zip(("text", "vector"), ranks, strict=True) if r})
                for c, s, ranks in fused
            ]
        else:
            ranking = by_text if mode == "text" else by_vector
            picked = [(c, s, {mode: rank}) for rank, (c, s) in enumerate(ranking[:k], start=1)]
        stored = await self.store.fetch([c for c, _, _ in picked])
        return [
            Hit(
                c,
                stored[c].chunk.document_id,
                stored[c].chunk.text,
                s,
                Citation.of(stored[c]),
                stored[c].chunk.metadata,
                r,
            )
            for c, s, r in picked
            if c in stored  # deleted by another process since the index was read
        ]

    async def resolve(self, citation: Citation | Mapping[str, Any]) -> str:
        """The verbatim span ``citation`` names, read again from the stored document."""
        cited = citation if isinstance(citation, Citation) else Citation.from_dict(citation)
        found = await self.store.document(cited.document_id)
        if found is None:
            raise InvalidRequest(f"document {cited.document_id} is not stored", code="citation_not_found")
        doc, content_hash = found
        if content_hash != cited.content_hash:
            raise InvalidRequest(
                f"document {cited.document_id} changed since it was cited: search again",
                code="citation_stale",
            )
        span = cited.span
        if (doc.kind == "transcript") != (span.turn_start is not None and span.turn_end is not None):
            raise InvalidRequest(f"the citation does not fit document {doc.id}", param="citation")
        if doc.kind != "transcript" and (span.char_start is None or span.char_end is None):
            raise InvalidRequest(f"the citation does not fit document {doc.id}", param="citation")
        return span_text(doc, span)

    async def stats(self) -> dict[str, Any]:
        """Documents and chunks stored, in all and per source."""
        return await self.store.stats()
