"""Documents as the knowledge room takes them: call transcripts (speaker turns), notes, markdown, text,
PDF and web pages, each with its metadata.

A ``Document`` is generic on purpose: the collectors index web pages through the same room. Its
``content_hash`` covers everything that reaches a chunk (kind, title, body, metadata, url, source),
so a re-ingest of an unchanged document costs one hash and no model call.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import orjson

from sophia.errors import InvalidRequest

Kind = Literal["transcript", "note", "markdown", "text", "pdf", "web"]
KINDS: tuple[Kind, ...] = ("transcript", "note", "markdown", "text", "pdf", "web")
DEFAULT_SOURCE = "default"


@dataclass(frozen=True)
class Turn:
    """One speaker turn of a recorded call; ``turn`` is its number in the call (0-based)."""

    turn: int
    speaker: str
    text: str
    role: str = ""
    start_seconds: float | None = None

    def line(self) -> str:
        """The turn as a transcript line: the verbatim text a citation of it quotes."""
        return f"{self.speaker}: {self.text}"


@dataclass(frozen=True)
class Document:
    """A document to index. Transcripts have ``turns``; every other kind has ``text``."""

    id: str
    kind: Kind = "text"
    title: str = ""
    text: str | None = None
    turns: tuple[Turn, ...] = ()
    source: str = DEFAULT_SOURCE
    metadata: Mapping[str, Any] = field(default_factory=dict)
    url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise InvalidRequest("a document needs a non-empty string id", param="id")
        if self.kind not in KINDS:
            raise InvalidRequest(f"document {self.id}: unknown kind {self.kind!r}: one of {', '.join(KINDS)}")
        if not self.source:
            raise InvalidRequest(f"document {self.id}: the source is empty", param="source")
        if self.kind == "transcript":
            if self.text is not None:
                raise InvalidRequest(f"document {self.id}: a transcript has turns, not text")
            numbers = [t.turn for t in self.turns]
            if numbers != sorted(set(numbers)):
                raise InvalidRequest(f"document {self.id}: turn numbers must be unique and increasing")
        elif self.text is None or self.turns:
            raise InvalidRequest(f"document {self.id}: a {self.kind} document has text and no turns")
        object.__setattr__(self, "metadata", {k: _plain(v, k) for k, v in dict(self.metadata).items()})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Document:
        """A document from plain data (JSON, the demo warehouse's ``transcript_documents``).

        ``kind`` defaults to ``transcript`` when ``turns`` are given, else ``text``; a turn is a
        dict with ``turn``, ``speaker``, ``text`` and optionally ``role`` and ``start_seconds``
        (``speaker_name`` / ``speaker_role`` are accepted as the warehouse's column names).
        """
        if not isinstance(data, Mapping):
            raise InvalidRequest("a document must be an object")
        raw_turns = data.get("turns") or ()
        try:
            turns = tuple(_turn(t, i) for i, t in enumerate(raw_turns))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRequest(f"document {data.get('id')!r}: a turn is malformed ({exc})") from None
        kind = data.get("kind") or ("transcript" if turns else "text")
        doc_id = data.get("id")
        return cls(
            id=str(doc_id) if isinstance(doc_id, int) else cast(str, doc_id),
            kind=cast(Kind, kind),
            title=str(data.get("title") or ""),
            text=data.get("text"),
            turns=turns,
            source=source or str(data.get("source") or DEFAULT_SOURCE),
            metadata=data.get("metadata") or {},
            url=data.get("url"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data that ``from_dict`` reads back into an equal document."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "source": self.source,
            "metadata": dict(self.metadata),
            "url": self.url,
        }
        if self.kind == "transcript":
            out["turns"] = [
                {
                    "turn": t.turn,
                    "speaker": t.speaker,
                    "role": t.role,
                    "start_seconds": t.start_seconds,
                    "text": t.text,
                }
                for t in self.turns
            ]
        else:
            out["text"] = self.text
        return out

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of the whole document: equal hash, nothing to re-embed."""
        body = orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(body).hexdigest()


def as_documents(
    items: Sequence[Document | Mapping[str, Any]], *, source: str | None = None
) -> list[Document]:
    """Documents from documents or plain dicts; ``source`` (``sync``) overrides theirs. Ids must be unique."""
    docs: list[Document] = []
    for item in items:
        doc = item if isinstance(item, Document) else Document.from_dict(item)
        if source is not None and doc.source != source:
            doc = Document(doc.id, doc.kind, doc.title, doc.text, doc.turns, source, doc.metadata, doc.url)
        docs.append(doc)
    seen: set[str] = set()
    for doc in docs:
        if doc.id in seen:
            raise InvalidRequest(f"document {doc.id} appears twice in one call", param="documents")
        seen.add(doc.id)
    return docs


def _turn(raw: Any, index: int) -> Turn:
    if isinstance(raw, Turn):
        return raw
    start = raw.get("start_seconds")
    return Turn(
        turn=int(raw.get("turn", index)),
        speaker=str(raw.get("speaker", raw.get("speaker_name")) or ""),
        text=str(raw["text"]),
        role=str(raw.get("role", raw.get("speaker_role")) or ""),
        start_seconds=None if start is None else float(start),
    )


def _plain(value: Any, key: str) -> Any:
    """A metadata value as JSON can hold it (dates as ISO strings); filters compare these."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dt.date):  # datetime is a date too
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v, key) for v in value]
    if hasattr(value, "__index__"):  # numpy integers
        return int(value)
    if hasattr(value, "__float__"):  # Decimal, numpy floats
        return float(value)
    raise InvalidRequest(f"metadata {key!r}: {type(value).__name__} is not a JSON value", param="metadata")
