"""Transcript search quality on the demo warehouse: questions built from ``call_objections``.

Three families of questions (at least 60 in all, drawn with a fixed seed):

* who said what: "What did <prospect> at <account> say about <category>?" (no filter); gold: the
  turns where that person raised that category;
* by PMS vendor: "objections about <category> from <vendor> customers" with ``pms_vendor`` as a
  filter; gold: every such objection in those accounts' calls;
* competitors: "which prospects compared us to <competitor>?"; gold: every objection naming it.

A question is answered when one of the top 5 hits is a chunk of a gold call whose turn range holds
a gold turn (hit@5); MRR uses the rank of the first such hit.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PHRASES = {
    "price": "pricing and what it costs",
    "integration": "integrating with their property management system",
    "ai_adoption": "letting AI talk to their residents",
    "security": "security and data privacy",
    "timing": "the timing of the rollout",
    "competitor": "a competing product",
}
Question = tuple[str, dict[str, Any], set[tuple[int, int]]]


def _demo(scale: float, work: Path) -> Path:
    from sophia.warehouse.demo import build_duckdb

    path = work / f"demo-{scale}.duckdb"
    if not path.exists():
        build_duckdb(path, scale=scale)
    return path


def questions(path: Path, *, seed: int = 0) -> list[Question]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT o.call_id, o.turn, o.category, o.competitor, t.speaker_name, a.name, a.pms_vendor "
            "FROM call_objections o JOIN calls c USING (call_id) JOIN accounts a ON a.account_id = c.account_id "
            "JOIN call_transcript_turns t ON t.call_id = o.call_id AND t.turn = o.turn ORDER BY ALL"
        ).fetchall()
    rng = random.Random(seed)
    by_person: dict[tuple[str, str, str], set[tuple[int, int]]] = {}
    by_vendor: dict[tuple[str, str], set[tuple[int, int]]] = {}
    by_competitor: dict[str, set[tuple[int, int]]] = {}
    for call_id, turn, category, competitor, speaker, account, pms in rows:
        by_person.setdefault((speaker, account, category), set()).add((call_id, turn))
        by_vendor.setdefault((category, pms), set()).add((call_id, turn))
        if competitor:
            by_competitor.setdefault(competitor, set()).add((call_id, turn))
    out: list[Question] = []
    for (speaker, account, category), gold in rng.sample(sorted(by_person.items()), min(40, len(by_person))):
        out.append((f"What did {speaker} at {account} say about {PHRASES[category]}?", {}, gold))
    for (category, pms), gold in rng.sample(sorted(by_vendor.items()), min(16, len(by_vendor))):
        out.append((f"objections about {PHRASES[category]} from {pms} customers", {"pms_vendor": pms}, gold))
    for competitor, gold in sorted(by_competitor.items()):
        out.append((f"Which prospects compared us to {competitor}?", {}, gold))
        out.append((f"{competitor} came in cheaper", {"role": "prospect"}, gold))
    return out


def _answered(hits: list[Any], gold: set[tuple[int, int]]) -> int:
    """The 1-based rank of the first hit holding a gold turn, or 0."""
    for rank, hit in enumerate(hits, start=1):
        call_id = hit.metadata.get("call_id")
        start, end = hit.citation.turn_start, hit.citation.turn_end
        if any(c == call_id and start <= turn <= end for c, turn in gold):
            return rank
    return 0


async def quality(scale: float, work: Path, cached: Callable[[Path], Any]) -> dict[str, Any]:
    from sophia.knowledge.knowledge import Knowledge
    from sophia.settings import KnowledgeSettings
    from sophia.warehouse.demo import transcript_documents

    path = _demo(scale, work)
    docs = list(transcript_documents(path))
    asked = questions(path)
    encoder = cached(work / f"demo-{scale}.npz")
    out: dict[str, Any] = {"scale": scale, "documents": len(docs), "questions": len(asked)}
    with tempfile.TemporaryDirectory() as tmp:
        kb = await Knowledge.open(KnowledgeSettings(), Path(tmp), encoder=encoder)
        started = time.perf_counter()
        await kb.sync("calls", docs)
        encoder.save()
        out["chunks"] = (await kb.stats())["chunks"]
        out["ingest_seconds"] = round(time.perf_counter() - started, 1)
        details = []
        for mode in ("hybrid", "text", "vector"):
            ranks = []
            for text, filters, gold in asked:
                hits = await kb.search(text, k=5, filters=filters, mode=mode)  # type: ignore[arg-type]
                ranks.append(_answered(hits, gold))
            out[mode] = {
                "hit_at_5": round(sum(1 for r in ranks if r) / len(ranks), 3),
                "mrr_at_5": round(sum(1 / r for r in ranks if r) / len(ranks), 3),
            }
            details.append(ranks)
        await kb.close()
    out["per_question"] = [
        {
            "q": text,
            "filters": filters,
            "gold": len(gold),
            "rank": dict(zip(("hybrid", "text", "vector"), r, strict=True)),
        }
        for (text, filters, gold), *r in zip(asked, *details, strict=True)
    ]
    return out
