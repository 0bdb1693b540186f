"""Cutting documents into chunks whose text is a verbatim span of the document.

* transcripts: consecutive speaker turns up to the word budget, the next chunk starting on the
  last turn of the one before (one turn of overlap, so an answer is never cut from its question);
  a turn is never split, since a citation names whole turns;
* markdown (and web pages): by heading, then paragraphs packed up to the budget;
* text, notes and PDF text: paragraphs packed up to the budget, a paragraph over it cut at
  sentences, a sentence over it at words.

A chunk's ``text`` is exactly ``span_text(document, chunk.span)``, which is how a citation is
resolved later against the stored document.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from sophia.knowledge.documents import Document

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+[\"')\]]*|$)")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Span:
    """Where a chunk sits in its document: turns (transcripts) or characters (everything else)."""

    turn_start: int | None = None
    turn_end: int | None = None
    char_start: int | None = None
    char_end: int | None = None
    speakers: tuple[str, ...] = ()
    start_seconds: float | None = None
    heading: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Span:
        return cls(**{**data, "speakers": tuple(data.get("speakers") or ())})


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: its verbatim text, where it sits, and the metadata filters match."""

    chunk_id: str
    document_id: str
    seq: int
    text: str
    span: Span
    metadata: dict[str, Any] = field(default_factory=dict)


def search_text(title: str, chunk: Chunk) -> str:
    """What is indexed for a chunk: the document title and heading give a short span its context."""
    return "\n".join(part for part in (title, chunk.span.heading, chunk.text) if part)


def span_text(doc: Document, span: Span) -> str:
    """The verbatim text of ``span`` in ``doc``: the turns' lines, or the characters."""
    if doc.kind == "transcript":
        assert span.turn_start is not None and span.turn_end is not None
        return "\n".join(t.line() for t in doc.turns if span.turn_start <= t.turn <= span.turn_end)
    assert doc.text is not None and span.char_start is not None and span.char_end is not None
    return doc.text[span.char_start : span.char_end]


def chunk_document(doc: Document, *, words: int = 160) -> list[Chunk]:
    """The chunks of ``doc``, each at most ``words`` words unless one turn or sentence is longer."""
    if doc.kind == "transcript":
        spans = list(_transcript_spans(doc, words))
    else:
        assert doc.text is not None
        sections = _sections(doc.text) if doc.kind in ("markdown", "web") else [(0, len(doc.text), "")]
        spans = [
            Span(char_start=start, char_end=end, heading=heading)
            for lo, hi, heading in sections
            for start, end in _pack(_units(doc.text, lo, hi, words), doc.text, words)
        ]
    chunks = []
    for seq, span in enumerate(spans):
        metadata = dict(doc.metadata)
        if doc.kind == "transcript":
            turns = [t for t in doc.turns if span.turn_start <= t.turn <= span.turn_end]  # type: ignore[operator]
            metadata.update(speakers=list(span.speakers), roles=sorted({t.role for t in turns if t.role}))
        elif span.heading:
            metadata["heading"] = span.heading
        if doc.kind == "pdf" and isinstance(doc.metadata.get("page_starts"), list):
            del metadata["page_starts"]
            metadata["page"] = bisect.bisect_right(doc.metadata["page_starts"], span.char_start) or 1
        chunk = Chunk(f"{doc.id}#{seq}", doc.id, seq, span_text(doc, span), span, metadata)
        chunks.append(chunk)
    return chunks


def _transcript_spans(doc: Document, budget: int) -> Iterator[Span]:
    turns = doc.turns
    i = 0
    while i < len(turns):
        j, count = i, _words(turns[i].text)
        while j + 1 < len(turns) and count + _words(turns[j + 1].text) <= budget:
            j += 1
            count += _words(turns[j].text)
        part = turns[i : j + 1]
        speakers = tuple(dict.fromkeys(t.speaker for t in part))
        yield Span(
            turn_start=part[0].turn,
            turn_end=part[-1].turn,
            speakers=speakers,
            start_seconds=part[0].start_seconds,
        )
        if j == len(turns) - 1:
            return
        i = j if j > i else j + 1  # one turn of overlap, unless the chunk was that one turn


def _sections(text: str) -> list[tuple[int, int, str]]:
    """(start, end, heading trail) of each markdown section; text before the first heading has none."""
    marks = list(_HEADING.finditer(text))
    sections: list[tuple[int, int, str]] = []
    if not marks or marks[0].start() > 0:
        sections.append((0, marks[0].start() if marks else len(text), ""))
    trail: list[tuple[int, str]] = []
    for n, mark in enumerate(marks):
        level = len(mark.group(1))
        trail = [(lv, name) for lv, name in trail if lv < level] + [(level, mark.group(2).strip())]
        end = marks[n + 1].start() if n + 1 < len(marks) else len(text)
        sections.append((mark.start(), end, " > ".join(name for _, name in trail)))
    return sections


def _units(text: str, lo: int, hi: int, budget: int) -> Iterator[tuple[int, int]]:
    """Trimmed (start, end) spans of the paragraphs in text[lo:hi], long ones cut smaller."""
    start = lo
    for brk in [*_PARAGRAPH_BREAK.finditer(text, lo, hi), None]:
        end = brk.start() if brk is not None else hi
        span = _trim(text, start, end)
        if span is not None:
            if _words(text[span[0] : span[1]]) <= budget:
                yield span
            else:
                yield from _sentences(text, *span, budget)
        if brk is not None:
            start = brk.end()


def _sentences(text: str, lo: int, hi: int, budget: int) -> Iterator[tuple[int, int]]:
    for sentence in _SENTENCE.finditer(text, lo, hi):
        span = _trim(text, sentence.start(), sentence.end())
        if span is None:
            continue
        if _words(text[span[0] : span[1]]) <= budget:
            yield span
            continue
        words = list(_WORD.finditer(text, *span))
        for k in range(0, len(words), budget):
            group = words[k : k + budget]
            yield group[0].start(), group[-1].end()


def _pack(units: Iterator[tuple[int, int]], text: str, budget: int) -> Iterator[tuple[int, int]]:
    """Consecutive units joined while the words fit the budget; each result spans from the first's
    start to the last's end (the blank lines between them included, verbatim)."""
    current: tuple[int, int] | None = None
    count = 0
    for start, end in units:
        n = _words(text[start:end])
        if current is not None and count + n <= budget:
            current, count = (current[0], end), count + n
            continue
        if current is not None:
            yield current
        current, count = (start, end), n
    if current is not None:
        yield current


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _words(text: str) -> int:
    return len(text.split())
