"""Ranking words: "top 5", "best", "worst", "which rep … most", "our best month".

"best" and "worst" follow the metric's polarity (the best churn is the lowest); "highest" and
"lowest" do not. A superlative asked about one thing ("which rep", "who", "best month") keeps one row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sophia.warehouse.ask.lexicon import LOWER_IS_BETTER
from sophia.warehouse.ask.matching import STOP, GroupMatch
from sophia.warehouse.ask.text import Question, number

__all__ = ["Ordering", "read_ordering"]

_DESC = {
    "top",
    "highest",
    "most",
    "largest",
    "biggest",
    "greatest",
    "leading",
    "max",
    "maximum",
    "more",
    "higher",
    "strongest",
    "best",
    "better",
    "outperform",
    "outperforms",
    "outperformed",
}
_ASC = {
    "bottom",
    "lowest",
    "least",
    "fewest",
    "smallest",
    "min",
    "minimum",
    "lower",
    "fewer",
    "worst",
    "weakest",
    "lagging",
    "poorest",
    "worse",
    "underperform",
    "underperforming",
    "struggling",
}
_POLAR = {
    "best",
    "better",
    "worst",
    "worse",
    "strongest",
    "weakest",
    "lagging",
    "poorest",
    "outperform",
    "outperforms",
    "outperformed",
    "underperform",
    "underperforming",
    "struggling",
}
_SUPERLATIVE = _DESC - {"more", "higher", "better", "top"} | _ASC - {"lower", "fewer", "worse", "bottom"}
_RANK = r"\b(rank|ranked|ranking|rankings|leaderboard|league table|sorted|sort)\b"
_NUM = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty)"
_GRAIN_WORD = r"(month|quarter|year|week|day)"


@dataclass
class Ordering:
    direction: str | None = None
    polar: bool = False
    limit: int | None = None
    superlative: bool = False
    grain: str | None = None
    unresolved: str | None = None
    words: list[str] = field(default_factory=list)

    @staticmethod
    def lower_is_better(metric: str) -> bool:
        return any(word in metric for word in LOWER_IS_BETTER)


def read_ordering(q: Question, groups: list[GroupMatch]) -> Ordering:
    """The ranking ``q`` asks for, given the dimensions it groups by."""
    out = Ordering()
    text = q.text
    for i, token in enumerate(q.tokens):
        if token in _DESC or token in _ASC:
            if token in ("more", "higher", "better", "fewer", "lower", "worse") and not groups:
                continue  # a comparison between named things, not a ranking
            out.direction = out.direction or ("desc" if token in _DESC else "asc")
            out.polar = out.polar or token in _POLAR
            out.superlative = out.superlative or token in _SUPERLATIVE or token == "top"
            out.words.append(token)
            q.consume(i, 1)
    if m := re.search(
        rf"\b(?:top|bottom|best|worst|highest|lowest|leading|largest|biggest|first) {_NUM}\b|\b{_NUM} (?:top|best|worst|highest|lowest|biggest|largest|leading|most|least)\b",
        text,
    ):
        out.limit = number(m.group(1) or m.group(2))
    elif re.search(r"\b(top|bottom)\b", text) and groups and groups[0].number == "plural":
        out.limit = 10
    if re.search(_RANK, text) and out.direction is None:
        out.direction = "desc"
        out.words.append("rank")
    if (
        m := re.search(
            rf"\b(?:which|what|whose|best|worst|highest|lowest|biggest|strongest|weakest|top) {_GRAIN_WORD}\b",
            text,
        )
    ) and out.direction is not None:
        out.grain = m.group(1)
        out.superlative = True
    for i, token in enumerate(q.tokens[:-1]):
        following = q.stemmed[i + 1]
        if (
            token in ("by", "per")
            and i not in q.consumed
            and (i + 1) not in q.consumed
            and following not in STOP
        ):
            out.unresolved = " ".join(q.tokens[i : i + 3])
            break
    return out
