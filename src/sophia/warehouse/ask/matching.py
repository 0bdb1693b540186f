"""Scoring a question against the catalog: which metrics it asks for and which dimensions it groups by.

Metrics score on words first (the question's stems against each metric's name, label and synonyms,
everyday phrasing rewritten by ``lexicon.METRIC_CUES``), MiniLM similarity second: words decide when
they match, the vectors break ties and catch paraphrases no list has ("keep our customers" ~ retention).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sophia.warehouse.ask.catalog_view import CatalogView, DimensionDoc, encode
from sophia.warehouse.ask.lexicon import DIMENSION_WORDS, ENTITY_WORDS, METRIC_CUES
from sophia.warehouse.ask.text import Question, stem, stems

__all__ = ["GroupMatch", "MetricScore", "find_groups", "score_metrics"]

STOP = frozenset(stems(
    "a an the of for in on at to by per with from and or vs versus what which who how many much is are was were "
    "do does did we our us me my you your show tell give get list please can could would i it its their there "
    "this that these those be been have has had all each every any total number count overall "
    "across among between over under than more most less least top bottom best worst highest lowest so far "
    "have got compared compare compare breakdown broken down split group grouped look looking like since "
    "about into just only also still yet ever now today quick whats hows s t up out"
))  # fmt: skip
_TRIGGERS = frozenset(
    stems(
        "by per each every across among which what who whose for top bottom best worst highest lowest most least leading compare comparing between breakdown split against vs versus"
    )
)
_FILLERS = frozenset(stems("the our their its a an each every different various individual sales"))
_ENTITY_PRIORITY = (
    "deal",
    "account",
    "rep",
    "team",
    "call",
    "ticket",
    "support_ticket",
    "subscription",
    "invoice",
    "contact",
)


@dataclass
class MetricScore:
    name: str
    score: float
    lexical: float
    semantic: float
    positions: set[int] = field(default_factory=set)
    phrase: str = ""
    full: bool = False


@dataclass
class Cues:
    """What the everyday phrases of a question stand for: stems with the positions that said them,
    and each phrase's whole target (a metric phrase inside one target counts as said in full)."""

    stems: dict[str, set[int]] = field(default_factory=dict)
    targets: list[tuple[tuple[str, ...], set[int], float]] = field(default_factory=list)

    def __contains__(self, item: str) -> bool:
        return item in self.stems

    def __getitem__(self, item: str) -> set[int]:
        return self.stems[item]


def cue_stems(q: Question) -> Cues:
    """The ``METRIC_CUES`` phrases said in ``q`` and what they stand for."""
    out = Cues()
    for phrase, targets in METRIC_CUES.items():
        ps = stems(phrase)
        for start in q.find(ps):
            positions = set(range(start, start + len(ps)))
            for target in targets.split("|"):
                out.targets.append((tuple(stems(target)), positions, 0.85 * min(3, len(ps)) + 0.1))
                for s in stems(target):
                    out.stems.setdefault(s, set()).update(positions)
    return out


def score_metrics(q: Question, view: CatalogView, cues: Cues) -> list[MetricScore]:
    """Every metric scored against ``q``, best first."""
    free = {i: s for i, s in enumerate(q.stemmed) if i not in q.consumed and s not in STOP}
    by_stem: dict[str, list[int]] = {}
    for i, s in free.items():
        by_stem.setdefault(s, []).append(i)
    core = " ".join(q.tokens[i] for i in sorted(free)) or q.text
    texts = [p for m in view.metrics for p in (*m.phrases, f"{m.label}: {m.description}")]
    owners = [m.name for m in view.metrics for _ in range(len(m.phrases) + 1)]
    matrix = view.vectors("metrics", texts)
    sims = matrix @ encode([core])[0] if len(texts) else np.zeros(0)
    semantic: dict[str, float] = {}
    for owner, sim in zip(owners, sims, strict=True):
        semantic[owner] = max(semantic.get(owner, -1.0), float(sim))
    scores = []
    for metric in view.metrics:
        best = MetricScore(metric.name, 0.0, 0.0, semantic.get(metric.name, 0.0))
        for phrase in metric.phrases:
            ps = [s for s in stems(phrase) if s not in STOP] or stems(phrase)
            matched, positions, unmatched = 0.0, set(), 0
            literal = {s: by_stem[s][0] for s in ps if s in by_stem}
            for s in ps:
                if s in literal:
                    matched += 1
                    positions.add(literal[s])
                elif s in cues and not cues[s] & set(literal.values()):
                    matched += 0.5
                    positions.update(cues[s])
                else:
                    unmatched += 1
            lexical = matched - 0.5 * unmatched if matched else 0.0
            full_stems = tuple(stems(phrase))
            for target, said, weight in cues.targets:
                if target in (tuple(ps), full_stems) and weight > lexical:
                    lexical, positions, unmatched = weight, said, 0
            if lexical > best.lexical:
                full = unmatched == 0 and any(q.find(stems(phrase)))
                best = MetricScore(
                    metric.name, 0.0, lexical, best.semantic, positions, phrase, full or unmatched == 0
                )
        best.score = best.lexical + 2.0 * max(0.0, best.semantic - 0.35)
        scores.append(best)
    return sorted(scores, key=lambda s: (-s.score, len(s.name)))


@dataclass
class GroupMatch:
    dimension: str
    start: int
    length: int
    phrase: str
    #: "singular" when a single thing was asked for ("which rep", "who"), for limit 1 on a superlative
    number: str = "plural"


def dimension_phrases(doc: DimensionDoc) -> list[tuple[list[str], bool]]:
    """(stems, is_entity_noun) of every way to name ``doc``."""
    out: list[tuple[list[str], bool]] = [
        (stems(p), False) for p in doc.phrases if p.split()[0] != doc.entity or doc.column != "name"
    ]
    out += [(stems(p), False) for p in DIMENSION_WORDS.get(doc.column, ())]
    if doc.column in ("name", "manager_name"):
        nouns = ENTITY_WORDS.get(doc.entity, (doc.entity,)) if doc.column == "name" else ("manager",)
        out += [(stems(p), True) for p in nouns]
    return [(s, e) for s, e in out if s]


def find_groups(q: Question, dims: list[DimensionDoc]) -> list[GroupMatch]:
    """Dimensions ``q`` groups by: a dimension's words after "by", "per", "which", "top 5"…, or plural."""
    found: list[GroupMatch] = []
    for i in range(len(q.tokens)):
        if i in q.consumed:
            continue
        best: tuple[int, int, DimensionDoc, bool] | None = None
        for doc in dims:
            for ps, is_entity in dimension_phrases(doc):
                if q.stemmed[i : i + len(ps)] != ps or any(j in q.consumed for j in range(i, i + len(ps))):
                    continue
                rank = len(ps) * 10 - _priority(doc)
                qualifier = q.stemmed[i - 1] if i else ""
                if qualifier == stem(doc.entity) or (doc.entity == "team" and qualifier == "team"):
                    rank += 15
                if best is None or rank > best[0]:
                    best = (rank, len(ps), doc, is_entity)
        if best is None:
            continue
        _, length, doc, is_entity = best
        qualified = i > 0 and q.stemmed[i - 1] == stem(doc.entity) and doc.column != "name"
        start = i - 1 if qualified else i  # "team region": the qualifier is part of the phrase
        last = q.tokens[i + length - 1]
        plural = last.endswith("s") and not last.endswith("'s") and q.stemmed[i + length - 1] != last
        trigger = _triggered(q, start)
        who = q.tokens[i] == "who"
        if not (
            trigger
            or who
            or (plural and not (is_entity and doc.column == "name" and doc.entity not in ("rep", "team")))
        ):
            continue
        if is_entity and doc.entity not in ("rep", "team") and not trigger:
            continue
        number = (
            "plural"
            if plural
            else "singular"
            if (who or q.stemmed[_trigger_at(q, start)] in ("which", "what"))
            else "plural"
        )
        found.append(
            GroupMatch(doc.name, start, i + length - start, " ".join(q.tokens[start : i + length]), number)
        )
        q.consume(start, i + length - start)
    return found


def _priority(doc: DimensionDoc) -> int:
    entity = doc.entity
    hops = doc.name.count("__") - 1
    return (
        _ENTITY_PRIORITY.index(entity) if entity in _ENTITY_PRIORITY else len(_ENTITY_PRIORITY)
    ) + 3 * hops


def _trigger_at(q: Question, start: int) -> int:
    j = start - 1
    while j >= 0 and (
        q.stemmed[j] in _FILLERS or q.tokens[j].isdigit() or q.tokens[j] in ("five", "ten", "three")
    ):
        j -= 1
    return max(j, 0)


def _triggered(q: Question, start: int) -> bool:
    if start == 0:
        return False
    j = _trigger_at(q, start)
    return q.stemmed[j] in _TRIGGERS or q.tokens[j] in ("vs", "against", "versus")
