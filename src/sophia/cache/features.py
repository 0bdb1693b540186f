"""What the verifier's first stage reads from a text: its words, numbers and names, and the guard.

The cross-encoder (``sophia.cache.cross_encoder``) judges meaning; these cheap word-level facts
back it with a hard rule it cannot override (``guard``): a neighbour that differs in a number or
a name is never served. Every check is symmetric in the two texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9]+")
_CAPITALISED = re.compile(r"(?<![.?!]\s)(?<!^)\b[A-Z][a-zA-Z0-9]+")
_SUFFIXES = ("ing", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    """A deliberately crude suffix strip, so that "learn" matches "learning" and "plans" "plan"."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True, slots=True)
class TextInfo:
    """What the guard needs to know about one text (computed once per text)."""

    norm: str
    words: tuple[str, ...]
    stems: frozenset[str]
    numbers: frozenset[str]
    capitals: frozenset[str]


@lru_cache(maxsize=4096)
def analyse(text: str) -> TextInfo:
    lowered = text.lower().replace("n't", " not")
    words = tuple(_WORD.findall(lowered))
    return TextInfo(
        norm=" ".join(words),
        words=words,
        stems=frozenset(stem(w) for w in words),
        numbers=frozenset(w for w in words if any(ch.isdigit() for ch in w)),
        capitals=frozenset(m.lower() for m in _CAPITALISED.findall(text.strip())),
    )


def guard(q: TextInfo, c: TextInfo) -> str | None:
    """Why a neighbour must not be served whatever the model says, or None.

    A cache answers for the user, so some differences are never worth the risk even where the
    QQP annotators were lenient: a number or year that differs ("Q3 2024" vs "Q3 2025"), or a
    name on one side that the other side does not mention ("Sunday" vs "Monday", "Python" vs
    "Java"); names are capitalised words after the first, matched case-insensitively by stem.
    """
    if q.numbers != c.numbers:
        return "numbers differ"
    if any(stem(w) not in c.stems for w in q.capitals) or any(stem(w) not in q.stems for w in c.capitals):
        return "names differ"
    return None
