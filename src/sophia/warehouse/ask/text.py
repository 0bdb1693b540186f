"""Words of a question as the matchers compare them: lower case, punctuation out, crude stems.

The stemmer is deliberately small (plural and verb endings, a few derivations): it only has to make
"converts", "conversion" and "converting" meet, and "reps" meet "rep", on both sides of a match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["NUMBER_WORDS", "Question", "normalize", "number", "stem", "stems", "words"]

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50,
    "hundred": 100, "a couple": 2, "a few": 3, "several": 3, "a dozen": 12, "dozen": 12,
}  # fmt: skip

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SUFFIXES = (
    ("ations", ""), ("ation", ""), ("ions", ""), ("ion", ""), ("ments", ""), ("ment", ""),
    ("ness", ""), ("ities", ""), ("ity", ""), ("ings", ""), ("ing", ""), ("ers", ""), ("er", ""),
    ("ies", "y"), ("ied", "y"), ("ives", "ive"), ("ses", "s"), ("ed", ""), ("es", ""), ("s", ""),
    ("ly", ""),
)  # fmt: skip
_IRREGULAR = {
    "won": "win", "lost": "lose", "losing": "lose", "loss": "lose", "losses": "lose", "people": "person",
    "better": "good", "best": "good", "worse": "bad", "worst": "bad", "sold": "sell", "sales": "sale",
    "closing": "close", "closed": "close", "closes": "close", "companies": "company", "analyses": "analysis",
    "quarterly": "quarter", "monthly": "month", "yearly": "year", "weekly": "week", "daily": "day",
    "converts": "convert", "conversion": "convert", "conversions": "convert", "converting": "convert",
    "retained": "retain", "retention": "retain", "retaining": "retain", "renewal": "renew",
    "renewals": "renew", "renewed": "renew", "churned": "churn", "churning": "churn", "churns": "churn",
    "expansion": "expand", "expansions": "expand", "contraction": "contract", "usage": "use", "used": "use",
    "uses": "use", "using": "use", "users": "user", "resolution": "resolve", "resolved": "resolve",
    "customers": "customer", "customer's": "customer", "accounts": "account", "us": "us", "as": "as",
    "is": "is", "has": "has", "was": "was", "this": "this", "his": "his", "its": "its", "series": "series",
    "analysis": "analysis", "status": "status", "news": "news", "bus": "bus", "less": "less",
    "sms": "sms", "pms": "pms", "arr": "arr", "mrr": "mrr", "nrr": "nrr", "grr": "grr", "csat": "csat",
}  # fmt: skip


def normalize(text: str) -> str:
    """Lower case, dashes, slashes and underscores as spaces, other punctuation out, single spaces."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"[-_/]+", " ", text)
    text = re.sub(r"[^a-z0-9'$%.,<>=& ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def words(text: str) -> list[str]:
    """The words of ``text`` after ``normalize``."""
    return _WORD.findall(normalize(text))


@lru_cache(maxsize=8192)
def stem(word: str) -> str:
    """A crude stem: enough for plurals, verb forms and a few derivations to meet."""
    word = word.lower().removesuffix("'s")
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)] + replacement
            if len(base) >= 2 and base[-1] == base[-2] and base[-1] not in "ls":
                base = base[:-1]  # "planned" -> "plan"
            return base
    return word


def stems(text: str) -> list[str]:
    """``stem`` of every word of ``text``."""
    return [stem(w) for w in words(text)]


def number(token: str) -> int | None:
    """An integer written in digits or as a word ("5", "five", "a dozen"), else None."""
    token = token.strip().lower().replace(",", "")
    if token.isdigit():
        return int(token)
    return NUMBER_WORDS.get(token)


@dataclass
class Question:
    """A question as the matchers see it: its original text, normalized text and word stems.

    ``consumed`` marks word positions already explained (a time phrase, a filter value), so later
    matchers do not read them again as a metric or a dimension.
    """

    original: str
    text: str
    tokens: list[str]
    stemmed: list[str]
    spans: list[tuple[int, int]]
    consumed: set[int]

    @classmethod
    def of(cls, original: str) -> Question:
        text = normalize(original)
        found = list(_WORD.finditer(text))
        tokens = [m.group() for m in found]
        spans = [m.span() for m in found]
        return cls(original, text, tokens, [stem(t) for t in tokens], spans, set())

    def consume_chars(self, start: int, end: int) -> None:
        """Consume the words that overlap the characters ``start:end`` of ``text``."""
        self.consumed.update(i for i, (a, b) in enumerate(self.spans) if a < end and b > start)

    def free_chars(self, start: int, end: int) -> bool:
        """True when no word overlapping ``text[start:end]`` is consumed yet."""
        return not any(i in self.consumed for i, (a, b) in enumerate(self.spans) if a < end and b > start)

    def find(self, phrase_stems: list[str], *, free: bool = True) -> list[int]:
        """Start positions where the stems ``phrase_stems`` occur in a row (not yet consumed when ``free``)."""
        n = len(phrase_stems)
        hits = []
        for i in range(len(self.stemmed) - n + 1):
            if self.stemmed[i : i + n] == phrase_stems and (
                not free or not any(j in self.consumed for j in range(i, i + n))
            ):
                hits.append(i)
        return hits

    def consume(self, start: int, length: int) -> None:
        self.consumed.update(range(start, start + length))

    def consume_positions(self, positions: set[int]) -> None:
        self.consumed.update(positions)

    def remaining(self) -> str:
        """The words not consumed yet, in order."""
        return " ".join(t for i, t in enumerate(self.tokens) if i not in self.consumed)

    def has(self, *stems_: str) -> bool:
        return any(s in self.stemmed for s in stems_)
