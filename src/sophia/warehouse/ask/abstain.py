"""When the data cannot answer: off-topic questions, data the schema lacks, times outside the data.

Each check names what is missing, and each is checked against the schema first: a "by industry"
question abstains only when no column of the warehouse could be an industry.
"""

from __future__ import annotations

import re
from datetime import date

from sophia.warehouse.ask.lexicon import MISSING, OFF_TOPIC
from sophia.warehouse.ask.plans import Abstain
from sophia.warehouse.ask.text import Question, stems
from sophia.warehouse.ask.timerange import TimeSpec
from sophia.warehouse.ask.vocabulary import Vocabulary

__all__ = ["missing_data", "off_topic", "out_of_range"]

_DOMAIN = "sales, customers, revenue, product usage and support"
_FORECAST = r"\b(forecast|forecasts|forecasted|predict|prediction|predicted|projection|projected|will .{0,40}\b(be|hit|reach|close|churn|make|grow)|going to (be|hit|reach|close|churn)|expected to|next year's)\b"


def _phrase_at(q: Question, phrases: tuple[str, ...]) -> tuple[str, int] | None:
    for phrase in phrases:
        hits = q.find(stems(phrase), free=False)
        if hits:
            return phrase, hits[0]
    return None


def off_topic(q: Question, domain_cues: int) -> Abstain | None:
    """A topic no business warehouse holds (weather, sports…), asked without any word of the domain."""
    for phrases, topic in OFF_TOPIC:
        if _phrase_at(q, phrases) and domain_cues == 0:
            return Abstain(
                f"the question is about {topic}; the warehouse holds {_DOMAIN} data only", "off_topic"
            )
    return None


def missing_data(q: Question, vocabulary: Vocabulary, dimensions: set[str]) -> Abstain | None:
    """Data the question needs that no column of the warehouse holds (salaries, industry, quotas…)."""
    columns = vocabulary.all_columns() | {d.rsplit("__", 1)[-1] for d in dimensions}
    for phrases, what, providers in MISSING:
        found = _phrase_at(q, phrases)
        if found is None or any(set(p.split("_")) <= set(c.split("_")) for p in providers for c in columns):
            continue
        phrase, at = found
        grouping = at > 0 and q.stemmed[at - 1] in ("by", "per", "each", "which", "across")
        return Abstain(
            f"the warehouse has no data on {what} (asked for: {phrase!r})",
            "missing_attribute" if grouping else "missing_data",
        )
    return None


def out_of_range(q: Question, time: TimeSpec, vocabulary: Vocabulary, today: date) -> Abstain | None:
    """A forecast, a future period, or a period wholly before or after the data."""
    first, last = vocabulary.data_start, vocabulary.data_end
    last_known = min(last, today) if last else today
    if time.future or (time.start is not None and time.start > today):
        return Abstain(f"that period is in the future: the data ends {last_known.isoformat()}", "future")
    if re.search(_FORECAST, q.text):
        return Abstain(
            f"a forecast: the warehouse holds history only (up to {last_known.isoformat()}), no projections",
            "future",
        )
    if time.start is None and time.end is None:
        return None
    if first is not None and time.end is not None and time.end <= first:
        return Abstain(f"the data starts {first.isoformat()}: nothing before it is recorded", "out_of_range")
    if last is not None and time.start is not None and time.start > last:
        return Abstain(f"the data ends {last.isoformat()}: nothing after it is recorded yet", "out_of_range")
    return None
