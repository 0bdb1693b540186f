"""Words of the schema in a question: do they belong to the metric, or does the question need SQL?

A question naming a table or column that the chosen metric cannot reach ("contacts", "decision
makers", "portfolio units") is about data we have but no metric covers: SQL, written by the model.
So are questions that ask for rows rather than an aggregate ("list the deals…", "the median…").
"""

from __future__ import annotations

from sophia.warehouse.ask.catalog_view import CatalogView
from sophia.warehouse.ask.lexicon import DIMENSION_WORDS, ENTITY_WORDS, SQL_CUES
from sophia.warehouse.ask.matching import STOP, MetricScore, dimension_phrases
from sophia.warehouse.ask.text import Question, stems
from sophia.warehouse.ask.vocabulary import Vocabulary

__all__ = ["domain_cues", "schema_terms", "sql_reason"]

#: column words too common to say anything about where a question points
_GENERIC = frozenset(stems(
    "id on at is has name amount month date day started start ended end created type text turn seconds "
    "second status count value issued due opened paid left email role method plan priority category "
    "product feature region segment stage outcome competitor mrr starting ending new expansion churned "
    "contraction usage events csat title manager resolved"
))  # fmt: skip
_BUSINESS = frozenset(stems(
    "deal deals revenue customer customers account accounts rep reps team teams sales pipeline churn "
    "win won lost call calls ticket tickets support usage mrr arr bookings quota prospect prospects "
    "contract contracts renewal renewals subscription subscriptions invoice invoices payment payments "
    "objection objections competitor competitors region segment product feature company companies"
))  # fmt: skip


def schema_terms(vocabulary: Vocabulary) -> dict[tuple[str, ...], str]:
    """Stems of table and column names (generic words left out) -> "table.column" they come from."""
    terms: dict[tuple[str, ...], str] = {}
    for table, columns in vocabulary.columns.items():
        for word in stems(table.replace("_", " ")):
            if word not in _GENERIC and word not in STOP and len(word) > 2:
                terms.setdefault((word,), table)
        for column in columns:
            key = tuple(s for s in stems(column.replace("_", " ")) if s not in _GENERIC and s not in STOP)
            if key and len("".join(key)) > 2:
                terms.setdefault(key, f"{table}.{column}")
    return terms


def domain_cues(q: Question, view: CatalogView, vocabulary: Vocabulary) -> int:
    """How many words of ``q`` belong to the warehouse's domain (schema, dimensions, business nouns)."""
    count = sum(1 for s in q.stemmed if s in _BUSINESS)
    count += sum(1 for key in schema_terms(vocabulary) if q.find(list(key), free=False))
    for doc in view.dimensions.values():
        count += any(q.find(ps, free=False) for ps, _ in dimension_phrases(doc))
    return count


def sql_reason(q: Question, view: CatalogView, vocabulary: Vocabulary, best: MetricScore) -> str | None:
    """Why ``q`` needs SQL rather than the metric ``best`` (None: the metric may do)."""
    for cue in SQL_CUES:
        cue_stems = stems(cue)
        if any(not set(range(at, at + len(cue_stems))) & best.positions for at in q.find(cue_stems)):
            return f"asks for rows or facts no metric aggregates ({cue!r})"
    metric = view.metric(best.name)
    covered: set[str] = set()
    for phrase in metric.phrases:
        covered.update(stems(phrase))
    for dim in metric.dimensions:
        doc = view.dimensions.get(dim)
        if doc is None:
            continue
        for ps, _ in dimension_phrases(doc):
            covered.update(ps)
        covered.update(stems(" ".join(DIMENSION_WORDS.get(doc.column, ()))))
        covered.update(stems(" ".join(ENTITY_WORDS.get(doc.entity, ()))))
    for key, where in schema_terms(vocabulary).items():
        if q.find(list(key)) and not set(key) <= covered and not set(key) <= best_words(best):
            return f"asks about {where.replace('_', ' ')}, which {best.name} does not cover"
    return None


def best_words(best: MetricScore) -> set[str]:
    return set(stems(best.phrase))
