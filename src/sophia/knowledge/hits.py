"""What a search returns: hits with citations that name a verbatim span of a stored document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sophia.errors import InvalidRequest
from sophia.knowledge.chunking import Span
from sophia.knowledge.store import StoredChunk


@dataclass(frozen=True)
class Citation:
    """Where a hit's text comes from: ``resolve`` turns it back into that verbatim span.

    Transcripts are cited by turns (``turn_start``..``turn_end``, both inclusive, and who spoke);
    other documents by characters (``char_start``..``char_end``). ``content_hash`` is the
    document's version: a citation of a document that changed since no longer resolves.
    """

    document_id: str
    title: str
    source: str
    kind: str
    quote: str
    content_hash: str
    speakers: tuple[str, ...] = ()
    turn_start: int | None = None
    turn_end: int | None = None
    start_seconds: float | None = None
    char_start: int | None = None
    char_end: int | None = None
    heading: str = ""
    url: str | None = None

    @property
    def span(self) -> Span:
        return Span(
            self.turn_start,
            self.turn_end,
            self.char_start,
            self.char_end,
            self.speakers,
            self.start_seconds,
            self.heading,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["speakers"] = list(self.speakers)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Citation:
        names = {f.name for f in fields(cls)}
        try:
            values = {k: v for k, v in data.items() if k in names}
            values["speakers"] = tuple(values.get("speakers") or ())
            return cls(**values)
        except TypeError as exc:
            raise InvalidRequest(f"not a citation: {exc}", param="citation") from None

    @classmethod
    def of(cls, stored: StoredChunk) -> Citation:
        span = stored.chunk.span
        return cls(
            document_id=stored.chunk.document_id,
            title=stored.title,
            source=stored.source,
            kind=stored.kind,
            quote=stored.chunk.text,
            content_hash=stored.content_hash,
            speakers=span.speakers,
            turn_start=span.turn_start,
            turn_end=span.turn_end,
            start_seconds=span.start_seconds,
            char_start=span.char_start,
            char_end=span.char_end,
            heading=span.heading,
            url=stored.url,
        )


@dataclass(frozen=True)
class Hit:
    """One search result. ``score``: the fused RRF score (hybrid), BM25 (text) or cosine (vector);
    ``ranks``: the chunk's rank in each half that found it (1 = best)."""

    chunk_id: str
    document_id: str
    text: str
    score: float
    citation: Citation
    metadata: dict[str, Any] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "text": self.text,
            "score": self.score,
            "citation": self.citation.to_dict(),
            "metadata": self.metadata,
            "ranks": self.ranks,
        }


@dataclass(frozen=True)
class IngestResult:
    """What an ``ingest`` or ``sync`` did, in documents, and how many chunks it embedded."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
