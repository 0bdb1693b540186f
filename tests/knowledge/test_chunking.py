"""Chunking: every kind keeps its metadata, and every chunk's text is a verbatim span of its document."""

from __future__ import annotations

import itertools
import sys

import pytest

from knowledge.knowledge_helpers import MARKDOWN, NOTE, transcripts
from sophia.errors import DependencyMissing, InvalidRequest
from sophia.knowledge.chunking import chunk_document, span_text
from sophia.knowledge.documents import Document


def test_transcript_chunks_are_consecutive_turns_with_one_turn_of_overlap() -> None:
    doc = Document.from_dict(transcripts()[0])
    chunks = chunk_document(doc, words=40)
    assert len(chunks) > 2
    assert chunks[0].span.turn_start == 0
    assert chunks[-1].span.turn_end == doc.turns[-1].turn
    for before, after in itertools.pairwise(chunks):
        # the next chunk starts on the last turn of the one before (unless that chunk was one turn)
        assert after.span.turn_start in (before.span.turn_end, before.span.turn_end + 1)  # type: ignore[operator]
    for chunk in chunks:
        turns = [t for t in doc.turns if chunk.span.turn_start <= t.turn <= chunk.span.turn_end]  # type: ignore[operator]
        assert chunk.text == "\n".join(f"{t.speaker}: {t.text}" for t in turns)
        assert chunk.text == span_text(doc, chunk.span)
        assert len(turns) == 1 or sum(len(t.text.split()) for t in turns) <= 40
        assert chunk.span.speakers == tuple(dict.fromkeys(t.speaker for t in turns))
        assert chunk.span.start_seconds == turns[0].start_seconds
        assert chunk.metadata["account_id"] == 12 and chunk.metadata["pms_vendor"] == "Yardi"
        assert chunk.metadata["speakers"] == list(chunk.span.speakers)
        assert set(chunk.metadata["roles"]) == {t.role for t in turns}
    assert [c.chunk_id for c in chunks] == [f"call-101#{n}" for n in range(len(chunks))]


def test_a_turn_longer_than_the_budget_is_one_chunk_and_never_split() -> None:
    doc = Document.from_dict(transcripts()[0])
    chunks = chunk_document(doc, words=5)
    assert [(c.span.turn_start, c.span.turn_end) for c in chunks] == [(t.turn, t.turn) for t in doc.turns]


def test_markdown_is_cut_by_heading_and_keeps_the_heading_trail() -> None:
    doc = Document.from_dict(MARKDOWN)
    chunks = chunk_document(doc, words=30)
    headings = [c.span.heading for c in chunks]
    assert headings == [
        "",
        "Objections",
        "Objections > AI adoption",
        "Objections > Integration",
        "Objections > Integration > Entrata",
    ]
    for chunk in chunks:
        assert doc.text is not None and chunk.span.char_start is not None and chunk.span.char_end is not None
        assert chunk.text == doc.text[chunk.span.char_start : chunk.span.char_end]
        assert chunk.text == chunk.text.strip()
        assert chunk.metadata["date"] == "2025-02-10"
    assert chunks[2].text.startswith("## AI adoption\n\nBoards worry")
    assert chunks[2].metadata["heading"] == "Objections > AI adoption"


def test_text_packs_paragraphs_and_cuts_long_ones_at_sentences_then_words() -> None:
    doc = Document.from_dict(NOTE)
    whole = chunk_document(doc, words=200)
    assert len(whole) == 1 and whole[0].text == doc.text  # all paragraphs fit: one chunk, blank lines kept
    small = chunk_document(doc, words=20)
    assert len(small) > 3
    for chunk in small:
        assert doc.text is not None and chunk.span.char_start is not None
        assert chunk.text == doc.text[chunk.span.char_start : chunk.span.char_end]
        assert len(chunk.text.split()) <= 20
        assert chunk.metadata == {"author": "Revenue Operations", "date": "2025-06-01"}
    runon = Document("w", "text", text=" ".join(f"w{n}" for n in range(25)))
    parts = chunk_document(runon, words=10)
    assert [len(p.text.split()) for p in parts] == [10, 10, 5]
    assert " ".join(p.text for p in parts) == runon.text


def test_pdf_text_chunks_say_their_page() -> None:
    text = "Page one text.\n\nPage two starts here. More on two."
    doc = Document("p", "pdf", text=text, metadata={"page_starts": [0, 16], "pages": 2})
    chunks = chunk_document(doc, words=4)
    assert [c.metadata["page"] for c in chunks] == [1, 2, 2]
    assert all("page_starts" not in c.metadata for c in chunks)


def test_pdf_needs_the_extra_and_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from sophia.knowledge.pdf import read_pdf

    monkeypatch.setitem(sys.modules, "pypdf", None)
    with pytest.raises(DependencyMissing, match=r"pip install 'sophia\[pdf\]'"):
        read_pdf(b"%PDF-1.4", id="x")


def test_documents_from_demo_dicts_and_their_validation() -> None:
    raw = transcripts()[0]
    doc = Document.from_dict(raw)
    assert doc.kind == "transcript" and len(doc.turns) == 10 and doc.turns[3].role == "prospect"
    assert Document.from_dict(doc.to_dict()) == doc
    assert (
        Document.from_dict({**raw, "metadata": {**raw["metadata"], "date": "2025-03-05"}}).content_hash
        != doc.content_hash
    )
    warehouse_turn = {"turn": 0, "speaker_name": "A", "speaker_role": "rep", "start_seconds": 0, "text": "hi"}
    assert Document.from_dict({"id": "c", "turns": [warehouse_turn]}).turns[0].speaker == "A"
    with pytest.raises(InvalidRequest, match="unknown kind"):
        Document.from_dict({"id": "x", "kind": "video", "text": "t"})
    with pytest.raises(InvalidRequest, match="has text and no turns"):
        Document.from_dict({"id": "x", "kind": "note"})
    with pytest.raises(InvalidRequest, match="unique and increasing"):
        Document.from_dict({"id": "x", "turns": [{"turn": 1, "speaker": "a", "text": "b"}] * 2})
    with pytest.raises(InvalidRequest, match="not a JSON value"):
        Document("x", text="t", metadata={"when": object()})
