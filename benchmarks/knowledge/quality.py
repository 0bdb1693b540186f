"""Transcript search quality on the demo warehouse: questions built from ``call_objections``.

Three families of questions (at least 60 in all, drawn with a fixed seed):

* who said what: "What did <prospect> at <account> say about <category>?" (no filter); gold: the
  turns where that person raised that category;
* by PMS vendor: "objections about <category> from <vendor> customers" with ``pms_vendor`` as a
  filter; gold: every such objection in those accounts' calls;
* competitors: "which prospects compared us to <competitor>?"; gold: every objection naming it;
* paraphrases: a concern in other words than the transcript's ("staff afraid of losing their jobs to
  automation" for "our leasing agents are nervous that this is about replacing them"), no names and
  few shared words; gold: every turn that says the paraphrased sentence. The names in the first
  three families favour full text; this family is what a vector search is for.

``--demo-seed`` picks the demo warehouse: the fusion's weights were tuned on seed 1 (``--sweep``)
and are reported on seed 0, whose transcripts, people and accounts differ.

A question is answered when one of the top 5 hits is a chunk of a gold call whose turn range holds
a gold turn (hit@5); MRR uses the rank of the first such hit.
"""

from __future__ import annotations

import random
import re
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
#: (objection sentence as in sophia.warehouse.demo.objections, a paraphrase sharing few of its words)
PARAPHRASES = (
    ("it's a lot more than we budgeted for this year.", "the cost is over their annual spending plan"),
    (
        "we're a small shop and this is priced for the big REITs.",
        "too costly for a small operator, aimed at large real estate investment trusts",
    ),
    (
        "we'd want to pay per lease signed, not per unit, given our occupancy.",
        "asked to be charged for each signed contract instead of per apartment",
    ),
    (
        "we got burned overpaying for a CRM two years ago, so finance is cautious.",
        "finance is wary after paying too much for a customer relationship tool before",
    ),
    (
        "our regional managers will say the money is better spent on onsite staff.",
        "would rather spend that budget on hiring people at the buildings",
    ),
    ("we'd need the implementation fee waived to make this work.", "wants us to drop the setup charge"),
    (
        "our IT team is two people; they can't babysit another integration.",
        "a tiny technology department cannot maintain yet another connector",
    ),
    (
        "we need single sign-on with our existing directory, that's non-negotiable.",
        "logging in through their current identity provider is a hard requirement",
    ),
    (
        "the payments piece has to reconcile with {pms} accounting, or our controller will revolt.",
        "rent collected must match the books or the controller gets upset",
    ),
    (
        "we tried an AI tool before and it kept quoting rents that were out of date in {pms}.",
        "a previous tool gave prospects stale rent figures",
    ),
    (
        "every integration project we've done with {pms} ran three months late.",
        "past connector projects were delivered well behind schedule",
    ),
    (
        "we can't have residents seeing one balance in your portal and another in {pms}.",
        "tenants could see mismatched amounts owed in two different systems",
    ),
    (
        "I'm not sure our residents want to talk to a bot.",
        "doubts that tenants want to chat with an automated assistant",
    ),
    (
        "Fair Housing is a real concern: how do we know the AI won't say something that gets us sued?",
        "afraid the assistant says something discriminatory and they face a lawsuit",
    ),
    (
        "our leasing agents are nervous that this is about replacing them.",
        "staff afraid of losing their jobs to automation",
    ),
    (
        "our older residents really prefer a human on the phone.",
        "elderly tenants would rather speak with a real person",
    ),
    (
        "we're not comfortable with resident conversations being used to train your models.",
        "tenant chats must not become training data",
    ),
    (
        "some states are passing rules on AI disclosures, and I don't want to be the test case.",
        "new state regulations on disclosing automated agents",
    ),
    (
        "our union sites are going to push back on anything that automates staff work.",
        "organized labor at some properties will resist automation",
    ),
    (
        "we need your SOC 2 Type II report before anything goes further.",
        "wants our independent audit attestation before continuing",
    ),
    (
        "where is the data stored, and can it stay in the country?",
        "data residency: keeping information inside national borders",
    ),
    (
        "we had a breach at a vendor last year, so the bar is higher now.",
        "a supplier was hacked previously so they are stricter now",
    ),
    (
        "we need the ability to delete a resident's data on request, across everything.",
        "erase a tenant's personal information whenever they ask",
    ),
    (
        "the AI shouldn't be able to see bank details, even by accident.",
        "the assistant must never access banking account numbers",
    ),
    (
        "Canadian privacy law applies to some of our residents, so PIPEDA compliance matters.",
        "privacy regulation in Canada covers part of their tenants",
    ),
    (
        "the timing is tough; we're in peak leasing season until September.",
        "the busy summer rental period makes now a bad moment",
    ),
    (
        "we're in the middle of acquiring a portfolio, so everyone is heads-down.",
        "the team is busy buying a group of buildings",
    ),
    (
        "we just had a leadership change and the new COO wants to review all vendors.",
        "a newly arrived executive is reassessing every supplier",
    ),
    ("interest rates have everything on hold for now.", "borrowing costs have frozen their plans"),
    (
        "we'd want to start after the holidays, not before.",
        "prefers to begin in January once the festive season is over",
    ),
    (
        "the owners are selling a few properties, so the scope might change soon.",
        "some buildings being sold could shrink the deal",
    ),
    (
        "{competitor} offered us a three-month free pilot.",
        "a rival offered a no-cost trial lasting a quarter",
    ),
    (
        "our sister company uses {competitor} and they're happy with it.",
        "an affiliated firm is satisfied with another vendor",
    ),
    (
        "{competitor} gives us a dedicated success manager at this size.",
        "the other vendor assigns them a personal account manager",
    ),
    (
        "{competitor} bundles texting and email for the same price.",
        "a competing product includes SMS and mail at no extra cost",
    ),
    (
        "the {competitor} team has been calling our CEO directly.",
        "rival salespeople phoning the chief executive",
    ),
    (
        "switching from {competitor} would mean retraining all our leasing agents.",
        "changing providers would require new training for the whole staff",
    ),
)
Question = tuple[str, dict[str, Any], set[tuple[int, int]], str]


def _demo(scale: float, work: Path, seed: int) -> Path:
    from sophia.warehouse.demo import build_duckdb

    path = work / f"demo-{scale}-seed{seed}.duckdb"
    if not path.exists():
        build_duckdb(path, scale=scale, seed=seed)
    return path


def _pattern(sentence: str) -> re.Pattern[str]:
    """A regex matching ``sentence`` with its placeholders filled in, any lead-in before it."""
    parts = re.split(r"\{\w+\}", sentence)
    return re.compile(".+?".join(re.escape(p) for p in parts), re.IGNORECASE)


def questions(path: Path, *, seed: int = 0) -> list[Question]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT o.call_id, o.turn, o.category, o.competitor, t.speaker_name, a.name, a.pms_vendor "
            "FROM call_objections o JOIN calls c USING (call_id) JOIN accounts a ON a.account_id = c.account_id "
            "JOIN call_transcript_turns t ON t.call_id = o.call_id AND t.turn = o.turn ORDER BY ALL"
        ).fetchall()
        turns = con.execute(
            "SELECT call_id, turn, text FROM call_transcript_turns WHERE speaker_role = 'prospect'"
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
        out.append((f"What did {speaker} at {account} say about {PHRASES[category]}?", {}, gold, "person"))
    for (category, pms), gold in rng.sample(sorted(by_vendor.items()), min(16, len(by_vendor))):
        out.append(
            (
                f"objections about {PHRASES[category]} from {pms} customers",
                {"pms_vendor": pms},
                gold,
                "vendor",
            )
        )
    for competitor, gold in sorted(by_competitor.items()):
        out.append((f"Which prospects compared us to {competitor}?", {}, gold, "competitor"))
        out.append((f"{competitor} came in cheaper", {"role": "prospect"}, gold, "competitor"))
    for sentence, question in PARAPHRASES:
        pattern = _pattern(sentence)
        said = {(call_id, turn) for call_id, turn, text in turns if pattern.search(text)}
        if said:
            out.append((question, {}, said, "paraphrase"))
    return out


def _answered(hits: list[Any], gold: set[tuple[int, int]]) -> int:
    """The 1-based rank of the first hit holding a gold turn, or 0."""
    for rank, hit in enumerate(hits, start=1):
        call_id = hit.metadata.get("call_id")
        start, end = hit.citation.turn_start, hit.citation.turn_end
        if any(c == call_id and start <= turn <= end for c, turn in gold):
            return rank
    return 0


def _rates(ranks: list[int]) -> dict[str, float]:
    return {
        "hit_at_5": round(sum(1 for r in ranks if r) / len(ranks), 3),
        "mrr_at_5": round(sum(1 / r for r in ranks if r) / len(ranks), 3),
    }


#: weighted RRF (text weight, vector weight, k) tried by --sweep
SWEEP = [(t, v, k) for k in (10, 30, 60) for t in (1.0,) for v in (0.25, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25)]


async def quality(
    scale: float,
    work: Path,
    cached: Callable[[Path], Any],
    *,
    demo_seed: int = 0,
    sweep: bool = False,
    chunk_words: int | None = None,
) -> dict[str, Any]:
    from sophia.knowledge.knowledge import Knowledge, fuse
    from sophia.settings import KnowledgeSettings
    from sophia.warehouse.demo import transcript_documents

    path = _demo(scale, work, demo_seed)
    docs = list(transcript_documents(path))
    asked = questions(path)
    encoder = cached(work / f"demo-{scale}-seed{demo_seed}.npz")
    settings = KnowledgeSettings() if chunk_words is None else KnowledgeSettings(chunk_words=chunk_words)
    out: dict[str, Any] = {
        "scale": scale,
        "demo_seed": demo_seed,
        "documents": len(docs),
        "questions": len(asked),
        "families": {f: sum(1 for q in asked if q[3] == f) for f in sorted({q[3] for q in asked})},
        "chunk_words": settings.chunk_words,
        "fusion": {
            "text_weight": settings.text_weight,
            "vector_weight": settings.vector_weight,
            "rrf_k": settings.rrf_k,
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        kb = await Knowledge.open(settings, Path(tmp), encoder=encoder)
        started = time.perf_counter()
        await kb.sync("calls", docs)
        encoder.save()
        out["chunks"] = (await kb.stats())["chunks"]
        out["ingest_seconds"] = round(time.perf_counter() - started, 1)
        details = []
        for mode in ("hybrid", "text", "vector"):
            ranks = []
            for text, filters, gold, _ in asked:
                hits = await kb.search(text, k=5, filters=filters, mode=mode)  # type: ignore[arg-type]
                ranks.append(_answered(hits, gold))
            out[mode] = _rates(ranks) | {
                family: _rates([r for r, q in zip(ranks, asked, strict=True) if q[3] == family])
                for family in out["families"]
            }
            details.append(ranks)
        if sweep:  # each half's 100 best once, then every weighting fused from them
            halves = []
            for text, filters, gold, _ in asked:
                by_text = await kb.search(text, k=settings.max_k, filters=filters, mode="text")
                by_vector = await kb.search(text, k=settings.max_k, filters=filters, mode="vector")
                halves.append((by_text, by_vector, gold))
            table = []
            for t, v, k in SWEEP:
                ranks = []
                for by_text, by_vector, gold in halves:
                    hits = {h.chunk_id: h for h in [*by_text, *by_vector]}
                    fused = fuse(
                        [[(h.chunk_id, 0.0) for h in by_text], [(h.chunk_id, 0.0) for h in by_vector]],
                        k,
                        (t, v),
                    )
                    ranks.append(_answered([hits[c] for c, _, _ in fused[:5]], gold))
                table.append({"text_weight": t, "vector_weight": v, "rrf_k": k} | _rates(ranks))
            for alpha in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):  # convex combination of normalised scores
                ranks = []
                for by_text, by_vector, gold in halves:
                    hits = {h.chunk_id: h for h in [*by_text, *by_vector]}
                    top_text = max((h.score for h in by_text), default=1.0) or 1.0
                    floor = min((h.score for h in by_vector), default=0.0)
                    text_score = {h.chunk_id: h.score / top_text for h in by_text}
                    vector_score = {h.chunk_id: h.score for h in by_vector}
                    combined = sorted(
                        hits,
                        key=lambda c: (
                            -(alpha * text_score.get(c, 0.0) + (1 - alpha) * vector_score.get(c, floor))
                        ),
                    )
                    ranks.append(_answered([hits[c] for c in combined[:5]], gold))
                table.append({"convex_text_alpha": alpha} | _rates(ranks))
            out["sweep"] = table
        await kb.close()
    out["per_question"] = [
        {
            "q": text,
            "family": family,
            "filters": filters,
            "gold": len(gold),
            "rank": dict(zip(("hybrid", "text", "vector"), r, strict=True)),
        }
        for (text, filters, gold, family), *r in zip(asked, *details, strict=True)
    ]
    return out
