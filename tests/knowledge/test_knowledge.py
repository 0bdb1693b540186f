"""The knowledge room end to end on the embedded store, with the real MiniLM."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.knowledge_helpers import MARKDOWN, NOTE, CountingEncoder, KeywordEncoder, transcripts
from sophia.container import Services
from sophia.errors import InvalidRequest
from sophia.knowledge.chunking import chunk_document, span_text
from sophia.knowledge.documents import Document
from sophia.knowledge.knowledge import Knowledge, fuse
from sophia.knowledge.service import KNOWLEDGE
from sophia.settings import KnowledgeSettings, load_settings


async def test_ingest_embeds_new_and_changed_documents_only(kb: Knowledge, encoder: CountingEncoder) -> None:
    docs = [*transcripts(), NOTE, MARKDOWN]
    first = await kb.ingest(docs)
    expected = sum(len(chunk_document(Document.from_dict(d), words=40)) for d in docs)
    assert (first.added, first.updated, first.unchanged, first.chunks) == (5, 0, 0, expected)
    assert len(encoder.texts) == expected

    encoder.reset()
    again = await kb.ingest(docs)
    assert (again.added, again.updated, again.unchanged, again.chunks) == (0, 0, 5, 0)
    assert encoder.calls == 0  # unchanged: no model call at all

    changed = {**NOTE, "text": NOTE["text"] + "\n\nRenewals keep their original discount."}
    third = await kb.ingest([changed, *transcripts()])
    assert (third.added, third.updated, third.unchanged) == (0, 1, 3)
    assert len(encoder.texts) == third.chunks == len(chunk_document(Document.from_dict(changed), words=40))
    hits = await kb.search("do renewals keep their discount", k=3, filters={"document_id": "note-7"})
    assert any("Renewals keep their original discount." in h.text for h in hits)
    stats = await kb.stats()
    assert stats["documents"] == 5 and stats["by_source"]["default"]["documents"] == 5


async def test_sync_deletes_what_the_source_no_longer_has(kb: Knowledge) -> None:
    calls = transcripts()
    await kb.sync("calls", calls)
    await kb.ingest([NOTE])
    result = await kb.sync("calls", calls[:2])
    assert (result.unchanged, result.deleted) == (2, 1)
    stats = await kb.stats()
    assert stats["by_source"]["calls"]["documents"] == 2
    assert stats["by_source"]["default"]["documents"] == 1  # another source is untouched
    hits = await kb.search("duplicate maintenance texts after the sync", k=10)
    assert all(h.document_id != "call-103" for h in hits)
    assert await kb.delete(["note-7", "nope"]) == 1
    assert (await kb.stats())["documents"] == 2


async def test_every_hit_cites_a_span_that_resolves_verbatim(kb: Knowledge) -> None:
    await kb.ingest([*transcripts(), NOTE, MARKDOWN])
    for query in (
        "board skeptical about AI talking to residents",
        "price lock",
        "Entrata sync",
        "SOC 2 report",
    ):
        hits = await kb.search(query, k=5)
        assert hits
        for hit in hits:
            quote = await kb.resolve(hit.citation)
            assert quote == hit.text == hit.citation.quote
            assert await kb.resolve(hit.citation.to_dict()) == quote
            if hit.citation.kind == "transcript":
                assert hit.citation.turn_start is not None and hit.citation.turn_end is not None
                assert hit.citation.speakers and hit.citation.start_seconds is not None
    hits = await kb.search("board skeptical about AI talking to residents", k=1)
    assert hits[0].document_id == "call-101"
    assert (
        hits[0].citation.turn_start is not None
        and hits[0].citation.turn_start <= 3 <= hits[0].citation.turn_end
    )  # type: ignore[operator]
    assert "Priya Shah: Honestly my board is skeptical" in hits[0].citation.quote


async def test_a_changed_or_deleted_document_no_longer_resolves_old_citations(kb: Knowledge) -> None:
    await kb.ingest([NOTE])
    (hit,) = await kb.search("discount approval", k=1)
    await kb.ingest([{**NOTE, "text": "All new text."}])
    with pytest.raises(InvalidRequest) as stale:
        await kb.resolve(hit.citation)
    assert stale.value.code == "citation_stale"
    await kb.delete(["note-7"])
    with pytest.raises(InvalidRequest) as gone:
        await kb.resolve(hit.citation)
    assert gone.value.code == "citation_not_found"


async def test_filters_by_metadata_role_kind_source_and_date(kb: Knowledge) -> None:
    await kb.sync("calls", transcripts())
    await kb.ingest([NOTE, MARKDOWN])
    query = "pricing and cost per unit"
    acme = await kb.search(query, k=20, filters={"account_id": 12})
    assert acme and {h.metadata["account_id"] for h in acme} == {12}
    assert {h.document_id for h in await kb.search(query, k=20, filters={"account_id": "40"})} == {"call-102"}
    prospects = await kb.search(query, k=20, filters={"role": "prospect", "pms_vendor": "Yardi"})
    assert prospects and all("prospect" in h.metadata["roles"] for h in prospects)
    assert {h.document_id for h in prospects} <= {"call-101", "call-103"}
    kinds = await kb.search(query, k=20, filters={"kind": ["note", "markdown"]})
    assert {h.document_id for h in kinds} == {"note-7", "playbook"}
    assert {h.citation.source for h in await kb.search(query, k=20, filters={"source": "calls"})} == {"calls"}
    dated = await kb.search(query, k=20, filters={"date_from": "2025-06-01", "date_to": "2025-12-31"})
    assert {h.document_id for h in dated} == {"call-102", "note-7"}
    for mode in ("text", "vector"):
        hits = await kb.search(query, k=20, filters={"speaker": "Marcus Lee"}, mode=mode)  # type: ignore[arg-type]
        assert hits and all("Marcus Lee" in h.citation.speakers for h in hits)
    assert await kb.search(query, k=5, filters={"account_id": 999}) == []
    with pytest.raises(InvalidRequest, match="not a date"):
        await kb.search(query, filters={"date_from": "last week"})
    with pytest.raises(InvalidRequest, match="give a value"):
        await kb.search(query, filters={"account_id": None})


async def test_hybrid_finds_what_each_half_alone_ranks_second(tmp_path: Path) -> None:
    """Text alone puts the keyword-stuffed chunk first, vectors alone the paraphrase without the words;
    the chunk that both rank second is first after fusion (1/62 + 1/62 > 1/61 + 1/66)."""
    encoder = KeywordEncoder(
        {
            "zzstuffed": [0, 0, 0, 0, 0, 1],
            "zzparaphrase": [1],
            "zzanswer": [0.8, 0.6],
            "zzfill1": [0.5, 0, 0.866],
            "zzfill2": [0.4, 0, 0, 0.917],
            "zzfill3": [0.3, 0, 0, 0, 0.954],
        },
        query=[1],
    )
    kb = await Knowledge.open(KnowledgeSettings(), tmp_path, encoder=encoder)
    texts = {
        "stuffed": "zzstuffed renewal discount renewal discount renewal discount for the renewal discount team",
        "paraphrase": "zzparaphrase the customer asked whether the price cut carries over when they extend",
        "answer": "zzanswer on renewal they asked to keep the discount they had, which we allow once",
        "fill1": "zzfill1 the onsite team books tours through the portal in the evening",
        "fill2": "zzfill2 maintenance requests arrive by text and are routed to technicians",
        "fill3": "zzfill3 the board meets quarterly to review vendor contracts and budgets",
    }
    await kb.ingest([Document(doc_id, "note", text=text) for doc_id, text in texts.items()])
    query = "renewal discount"
    assert [h.document_id for h in await kb.search(query, k=2, mode="text")] == ["stuffed", "answer"]
    assert [h.document_id for h in await kb.search(query, k=2, mode="vector")] == ["paraphrase", "answer"]
    hybrid = await kb.search(query, k=3)
    assert [h.document_id for h in hybrid] == ["answer", "stuffed", "paraphrase"]
    assert hybrid[0].ranks == {"text": 2, "vector": 2}
    assert hybrid[0].score == pytest.approx(2 / (KnowledgeSettings().rrf_k + 2))
    await kb.close()


def test_fusion_orders_by_summed_reciprocal_ranks_then_id() -> None:
    fused = fuse([[("a", 9.0), ("b", 5.0)], [("c", 0.9), ("b", 0.8)]], 60)
    assert [c for c, _, _ in fused] == ["b", "a", "c"]
    assert fused[0][2] == [2, 2] and fused[1][2] == [1, 0]


def test_weighted_fusion_lets_one_half_count_more() -> None:
    rankings = [[("a", 9.0), ("b", 5.0)], [("c", 0.9), ("a", 0.1)]]
    assert [c for c, _, _ in fuse(rankings, 10)] == ["a", "c", "b"]
    text_only = fuse(rankings, 10, (1.0, 0.0))  # a weight of 0 keeps the ranks but not the votes
    assert [c for c, s, _ in text_only if s > 0] == ["a", "b"] and text_only[0][1] == pytest.approx(
        1 / 11 + 0
    )
    vector_heavy = fuse(rankings, 10, (0.05, 1.0))
    assert vector_heavy[0][0] == "c" and vector_heavy[0][1] == pytest.approx(1 / 11)


async def test_the_store_survives_a_restart(tmp_path: Path, encoder: CountingEncoder) -> None:
    settings = KnowledgeSettings(chunk_words=40)
    first = await Knowledge.open(settings, tmp_path, encoder=encoder)
    await first.ingest([*transcripts(), NOTE])
    before = await first.search("SOC 2 report for the security team", k=3)
    await first.close()

    encoder.reset()
    second = await Knowledge.open(settings, tmp_path, encoder=encoder)
    after = await second.search("SOC 2 report for the security team", k=3)
    assert [(h.chunk_id, round(h.score, 6)) for h in after] == [
        (h.chunk_id, round(h.score, 6)) for h in before
    ]
    assert encoder.calls == 1  # the query only: the chunks' vectors came back from the file
    assert (await second.ingest(transcripts())).unchanged == 3
    await second.close()


async def test_a_second_process_sees_writes_through_the_version(
    tmp_path: Path, encoder: CountingEncoder
) -> None:
    settings = KnowledgeSettings(chunk_words=40)
    writer = await Knowledge.open(settings, tmp_path, encoder=encoder)
    reader = await Knowledge.open(settings, tmp_path, encoder=encoder)
    assert await reader.search("price lock", k=3) == []
    await writer.ingest([NOTE])
    assert {h.document_id for h in await reader.search("price lock", k=3)} == {"note-7"}
    await writer.delete(["note-7"])
    assert await reader.search("price lock", k=3) == []
    await writer.close()
    await reader.close()


async def test_modes_and_argument_errors(kb: Knowledge) -> None:
    await kb.ingest([NOTE])
    text = await kb.search("price lock", k=1, mode="text")
    vector = await kb.search("price lock", k=1, mode="vector")
    assert text[0].ranks == {"text": 1} and vector[0].ranks == {"vector": 1}
    assert await kb.search("zebra quantum", mode="text") == []  # no word in common: the text half is empty
    with pytest.raises(InvalidRequest, match="unknown search mode"):
        await kb.search("x", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="k must be"):
        await kb.search("x", k=0)
    with pytest.raises(InvalidRequest, match="empty"):
        await kb.search("  ")
    with pytest.raises(InvalidRequest, match="twice"):
        await kb.ingest([NOTE, NOTE])


async def test_span_text_of_a_transcript_is_the_turn_lines() -> None:
    doc = Document.from_dict(transcripts()[1])
    (chunk,) = [c for c in chunk_document(doc, words=1000)]
    assert span_text(doc, chunk.span) == "\n".join(f"{t.speaker}: {t.text}" for t in doc.turns)


async def test_the_service_opens_the_embedded_store_in_the_data_folder(tmp_path: Path) -> None:
    services = Services(load_settings())
    kb = await services.get(KNOWLEDGE)
    assert (await kb.stats())["store"] == "embedded"
    assert (services.settings.data_dir / "knowledge" / "knowledge.db").is_file()
    await services.close()
