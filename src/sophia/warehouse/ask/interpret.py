"""``interpret``: a question in, a metric query, a request for the model, or an abstention out.

The order is the order of trust: first what cannot be answered (off topic, missing data, times
outside the data), then what the question fixes without doubt (time range, values of the warehouse
named in it), then the metric and the group-by read from what is left. Any doubt that a model could
settle becomes ``NeedsModel`` carrying everything understood so far; it never becomes an abstention.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sophia.warehouse.ask.abstain import missing_data, off_topic, out_of_range
from sophia.warehouse.ask.catalog_view import CatalogView
from sophia.warehouse.ask.matching import GroupMatch, MetricScore, cue_stems, find_groups, score_metrics
from sophia.warehouse.ask.ordering import Ordering, read_ordering
from sophia.warehouse.ask.plans import Abstain, Interpretation, MetricAnswerPlan, NeedsModel
from sophia.warehouse.ask.schema_terms import domain_cues, sql_reason
from sophia.warehouse.ask.text import Question
from sophia.warehouse.ask.timerange import TimeSpec, parse_time
from sophia.warehouse.ask.vocabulary import ValueMatch, Vocabulary

__all__ = ["interpret"]

#: a metric needs at least this score (words plus similarity) to be answered without a model
MIN_SCORE = 0.95
_AND = re.compile(r"\b(and|plus|as well as|along with|together with|vs|versus|&)\b|,")


def interpret(question: str, catalog: Any, *, vocabulary: Vocabulary, today: date) -> Interpretation:
    """Read ``question`` against the metric ``catalog`` and the warehouse's ``vocabulary``."""
    view = CatalogView.of(catalog)
    q = Question.of(question)
    if not q.tokens:
        return Abstain("the question is empty", "unclear")
    view.correct_typos(q, vocabulary)
    time = parse_time(q, today)
    values = vocabulary.match(q, skip=view.metric_phrase_positions(q))
    for value in values:
        q.consume(value.start, value.length)
    cues = cue_stems(q)
    scores = score_metrics(q, view, cues)
    cue_count = domain_cues(q, view, vocabulary) + len(values) + sum(1 for s in scores if s.lexical >= 1)
    refusal = off_topic(q, cue_count) or missing_data(q, vocabulary, set(view.dimensions))
    refusal = refusal or out_of_range(q, time, vocabulary, today)
    if refusal is not None:
        return refusal
    hints = _hints(time, values)
    best = scores[0]
    candidates = [s.name for s in scores[:5]]
    sql = sql_reason(q, view, vocabulary, best)
    if sql:
        return NeedsModel("sql", candidates, hints, sql)
    if best.score < MIN_SCORE:
        if cue_count == 0 and best.semantic < 0.3:
            return Abstain(
                "the question names nothing the warehouse holds (no metric, table or value of its data)",
                "unclear",
            )
        detail = f"no metric matches the question well (best: {best.name})"
        if best.score >= 0.5:
            return NeedsModel("metric", candidates, hints, detail)
        return NeedsModel("sql", candidates, hints, detail)
    metrics = _metrics(q, scores)
    return _plan(q, view, metrics, scores, time, values, hints, candidates)


def _metrics(q: Question, scores: list[MetricScore]) -> list[MetricScore]:
    """The best metric, plus others named in full on their own words when the question joins them."""
    chosen = [scores[0]]
    if not _AND.search(q.text):
        return chosen
    for other in scores[1:]:
        if other.full and other.lexical >= 1 and not any(other.positions & c.positions for c in chosen):
            chosen.append(other)
    return sorted(chosen, key=lambda m: min(m.positions, default=0))  # in the order the question names them


def _plan(
    q: Question,
    view: CatalogView,
    metrics: list[MetricScore],
    scores: list[MetricScore],
    time: TimeSpec,
    values: list[ValueMatch],
    hints: dict[str, Any],
    candidates: list[str],
) -> Interpretation:
    names = [m.name for m in metrics]
    for m in metrics:
        q.consume_positions(m.positions)
    allowed = view.shared_dimensions(names)
    groups = find_groups(q, [view.dimensions[d] for d in sorted(allowed) if d in view.dimensions])
    ordering = read_ordering(q, groups)
    grain = time.grain or ordering.grain
    group_by = [g.dimension for g in groups]
    if grain:
        time_dim = f"metric_time__{grain}"
        if time_dim not in allowed:
            return NeedsModel("metric", candidates, hints, f"{names[0]} cannot be grouped by {grain}")
        group_by.append(time_dim)
    unplaced = [v for v in values if v.placed(allowed) is None]
    if unplaced:
        missing = ", ".join(f"{v.dimension} = {v.value!r}" for v in unplaced)
        return NeedsModel("sql", candidates, hints, f"{', '.join(names)} cannot be filtered on {missing}")
    if ordering.unresolved:
        return NeedsModel("metric", candidates, hints, f"cannot tell what {ordering.unresolved!r} groups by")
    where = _where(values, allowed)
    order_by, limit = _order(names[0], groups, ordering, grain)
    from sophia.warehouse.metrics import MetricQuery

    query = MetricQuery(
        metrics=names,
        group_by=group_by,
        where=where,
        start=time.start.isoformat() if time.start else None,
        end=time.end.isoformat() if time.end else None,
        order_by=order_by,
        limit=limit,
    )
    matched = {
        "metrics": {m.name: m.phrase for m in metrics},
        "group_by": {g.dimension: g.phrase for g in groups},
        "filters": {v.placed(allowed) or v.dimension: v.phrase for v in values},
        "time": time.phrases,
        "ordering": ordering.words,
    }
    confidence = min(1.0, 0.5 + 0.2 * metrics[0].lexical + 0.3 * max(0.0, metrics[0].semantic))
    if len(scores) > 1 and scores[1].score >= scores[0].score - 0.05 and scores[1].name not in names:
        confidence = min(confidence, 0.6)
    return MetricAnswerPlan(query, _explain(query), round(confidence, 2), matched)


def _where(values: list[ValueMatch], allowed: set[str]) -> list[str]:
    by_dimension: dict[str, list[str]] = {}
    for v in values:
        items = by_dimension.setdefault(v.placed(allowed) or v.dimension, [])
        if v.value not in items:
            items.append(v.value)
    where = []
    for dimension, items in by_dimension.items():
        quoted = ", ".join("'" + item.replace("'", "''") + "'" for item in items)
        op = f"= {quoted}" if len(items) == 1 else f"IN ({quoted})"
        where.append(f"{{{{ Dimension('{dimension}') }}}} {op}")
    return where


def _order(
    metric: str, groups: list[GroupMatch], ordering: Ordering, grain: str | None
) -> tuple[list[str], int | None]:
    if ordering.direction is None or not (groups or ordering.grain):
        return [], None
    descending = ordering.direction == "desc"
    if ordering.polar:
        descending = not descending if ordering.lower_is_better(metric) else descending
    limit = ordering.limit
    if (
        limit is None
        and ordering.superlative
        and (ordering.grain or (groups and groups[0].number == "singular"))
    ):
        limit = 1
    return [("-" if descending else "") + metric], limit


def _hints(time: TimeSpec, values: list[ValueMatch]) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    if time.start or time.end:
        hints["start"] = time.start.isoformat() if time.start else None
        hints["end"] = time.end.isoformat() if time.end else None
    if time.grain:
        hints["grain"] = time.grain
    if values:
        hints["filters"] = [{"dimension": v.dimension, "op": "=", "value": v.value} for v in values]
    return hints


def _explain(query: Any) -> str:
    parts = [", ".join(query.metrics)]
    if query.group_by:
        parts.append("by " + ", ".join(query.group_by))
    if query.where:
        parts.append("where " + " and ".join(query.where))
    if query.start or query.end:
        parts.append(f"from {query.start or 'the start'} to {query.end or 'the end'} (end excluded)")
    if query.order_by:
        parts.append(
            "ordered by " + ", ".join(query.order_by) + (f", top {query.limit}" if query.limit else "")
        )
    return " ".join(parts)
