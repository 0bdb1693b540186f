"""The values the warehouse holds, so a question's "Yardi customers" or "in the West" becomes a filter.

The MCP tool runs ``vocabulary_queries(catalog)`` on the warehouse (one ``SELECT DISTINCT`` per
categorical dimension, the schema's columns, the span of the data) and passes the rows to
``build_vocabulary``. Matching a value is exact on its words (case and punctuation aside) or on an
alias from ``lexicon.VALUE_ALIASES``; a value that is an ordinary word ("new", "demo", "payments")
counts only next to a word naming its column ("new deals", "the demo stage", "payments feature").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sophia.warehouse.ask.lexicon import DIMENSION_WORDS, ENTITY_WORDS, VALUE_ALIASES, WEAK_COLUMNS
from sophia.warehouse.ask.text import Question, stems
from sophia.warehouse.ask.text import words as textwords

__all__ = ["COLUMNS_KEY", "SPAN_KEY", "ValueMatch", "Vocabulary", "build_vocabulary", "vocabulary_queries"]

COLUMNS_KEY = "__columns__"  # rows (table, column) of the schema
SPAN_KEY = "__time_span__"  # rows (first day, last day), one per fact table
#: dimension columns worth listing (a name column only for people and teams: account names are many)
_CATEGORICAL = frozenset(DIMENSION_WORDS) | {"name", "manager_name"}
_NAMED_ENTITIES = frozenset({"rep", "team"})
#: single words that are values of a column and ordinary English too: they need their column's word nearby
_COMMON = frozenset({"funnel", "knock", "new", "open", "paid", "void", "high", "low", "medium", "urgent"})
_MAX_VALUES = 500


@dataclass(frozen=True)
class ValueMatch:
    """A value found in the question, the words that named it, and every dimension that holds it
    (the same column seen through different joins: ``deal__competitor``, ``call__deal__competitor``)."""

    dimensions: tuple[str, ...]
    value: str
    start: int
    length: int
    phrase: str

    @property
    def dimension(self) -> str:
        return self.dimensions[0]

    def placed(self, allowed: set[str]) -> str | None:
        """The dimension to filter on among ``allowed``: the fewest joins away."""
        usable = [d for d in self.dimensions if d in allowed]
        return min(usable, key=lambda d: (d.count("__"), d)) if usable else None


@dataclass
class Vocabulary:
    """Distinct values by dimension, the schema's columns by table, and the span of the data."""

    values: dict[str, list[str]] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    data_start: date | None = None
    data_end: date | None = None
    _index: list[tuple[list[str], tuple[str, ...], str, bool]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        grouped: dict[tuple[tuple[str, ...], str, str], list[str]] = {}
        for dimension, values in self.values.items():
            path, _, column = dimension.rpartition("__")
            entity = path.split("__")[-1]
            for value in values:
                for phrase in _phrases(value, column):
                    grouped.setdefault((tuple(stems(phrase)), f"{entity}__{column}", value), []).append(
                        dimension
                    )
                if entity in _NAMED_ENTITIES and column == "name" and " " in value:
                    first = value.split()[0]
                    if sum(v.split()[0] == first for v in values) == 1:
                        grouped.setdefault((tuple(stems(first)), f"{entity}__{column}", value), []).append(
                            dimension
                        )
        self._index = [
            (list(phrase), tuple(dims), value, where.split("__")[-1] in WEAK_COLUMNS)
            for (phrase, where, value), dims in grouped.items()
        ]
        self._index.sort(key=lambda item: (-len(item[0]), min(d.count("__") for d in item[1])))

    def words(self) -> set[str]:
        """The words of every value (for typo correction)."""
        return {w for values in self.values.values() for v in values for w in textwords(v) if len(w) >= 4}

    def all_columns(self) -> set[str]:
        return {c.lower() for cols in self.columns.values() for c in cols}

    def match(self, q: Question, skip: Iterable[int] = ()) -> list[ValueMatch]:
        """The values named in ``q`` (longest first, each word used once, none at positions ``skip``)."""
        found: list[ValueMatch] = []
        taken: set[int] = set(skip)
        for phrase, dimensions, value, weak in self._index:
            for start in q.find(phrase):
                span = set(range(start, start + len(phrase)))
                if span & taken or not _plausible(q, start, len(phrase), dimensions[0], value, weak):
                    continue
                taken |= span
                words = " ".join(q.tokens[start : start + len(phrase)])
                found.append(ValueMatch(dimensions, value, start, len(phrase), words))
        return found


def _plausible(q: Question, start: int, length: int, dimension: str, value: str, weak: bool) -> bool:
    """A value that is an ordinary word counts only next to a word naming its column (or, for a
    competitor, after "vs", "against", "lost to")."""
    if length == 1 and q.tokens[start] in _COMMON:
        weak = weak or not re.search(rf"\b{re.escape(value)}\b", q.original)  # not capitalized as a name
    if not weak:
        return True
    path, _, column = dimension.rpartition("__")
    entity = path.split("__")[-1]
    cues = [*DIMENSION_WORDS.get(column, ()), *ENTITY_WORDS.get(entity, ())]
    if column == "competitor":
        cues += ["against", "vs", "versus", "lose to", "lost to", "competing with"]
    window = set(q.stemmed[max(0, start - 3) : start]) | set(q.stemmed[start + length : start + length + 3])
    return any(all(s in window for s in stems(cue)) for cue in cues if cue != "who")


def _phrases(value: str, column: str) -> list[str]:
    out = [value]
    if "_" in value:
        out.append(value.replace("_", " "))
    out.extend(VALUE_ALIASES.get(column, {}).get(value, ()))
    if value.lower().endswith(" ai") and len(value) > 6:
        out.append(value[:-3])  # "Rent Manager AI" -> "Rent Manager"
    return out


def build_vocabulary(rows_by_dimension: Mapping[str, Sequence[Sequence[Any]]]) -> Vocabulary:
    """A ``Vocabulary`` from the rows of ``vocabulary_queries``: {dimension: [[value], …]} plus the
    schema (``COLUMNS_KEY``: [[table, column], …]) and the span (``SPAN_KEY``: [[first, last]])."""
    values: dict[str, list[str]] = {}
    columns: dict[str, list[str]] = {}
    start: date | None = None
    end: date | None = None
    for key, rows in rows_by_dimension.items():
        if key == COLUMNS_KEY:
            for table, column in rows:
                columns.setdefault(str(table), []).append(str(column))
        elif key == SPAN_KEY:
            firsts = sorted(d for d in (_date(row[0]) for row in rows) if d is not None)
            lasts = [d for d in (_date(row[1]) for row in rows) if d is not None]
            # the median first day: a table of long-lived things (accounts created years before) does
            # not move the start of the activity data
            start = firsts[(len(firsts) - 1) // 2] if firsts else None
            end = max(lasts) if lasts else None
        else:
            distinct = {str(row[0]) for row in rows if row and row[0] is not None and str(row[0]).strip()}
            values[key] = sorted(distinct)[:_MAX_VALUES]
    return Vocabulary(values=values, columns=columns, data_start=start, data_end=end)


def _date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def vocabulary_queries(catalog: Any) -> dict[str, str]:
    """SQL per key for ``build_vocabulary``: the distinct values of every categorical dimension of the
    catalog, the schema's columns, and the first and last day of the data."""
    from sophia.warehouse.ask.catalog_view import CatalogView

    view = CatalogView.of(catalog)
    queries: dict[str, str] = {}
    for dimension in view.all_dimensions():
        entity, _, column = dimension.rpartition("__")
        if entity == "metric_time" or column not in _CATEGORICAL:
            continue
        if column == "name" and entity not in _NAMED_ENTITIES:
            continue
        located = view.column_of(dimension)
        if located is not None:
            table, expr = located
            queries[dimension] = (
                f"SELECT DISTINCT {expr} FROM {table} WHERE {expr} IS NOT NULL ORDER BY 1 LIMIT {_MAX_VALUES}"
            )
    queries[COLUMNS_KEY] = (
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1, 2"
    )
    span = view.time_span_sql()
    if span:
        queries[SPAN_KEY] = span
    return queries
