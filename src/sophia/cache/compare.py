"""Do two answers say the same thing? The label behind every check the cache learns from.

When the cache checks a would-be hit (``sophia.cache.risk``), the model answers the question anew
and the comparator says whether the stored answer would have done. It must be cheap (it runs on
every check and on every miss that had a rejected candidate) and lean towards "different" when in
doubt: a false "same" hides a wrong answer from the budget, a false "different" only makes the
cache more careful. Tiers, in order:

1. the same text, or the same after normalisation (lower-case, words only) → same;
2. a different set of numbers, a tool call against a text, a different finish reason or different
   tool calls → different;
3. a small edit: the answers differ by one or two words on either side, filler aside ("open" for "close",
   "key" for "value", "learn" for "teach") → different. An embedding barely moves when one word changes,
   and in an otherwise identical answer that word is the fact that changed (measured: the MiniLM cosine of
   two such answers is 0.84-0.94, over the 0.9 bound in 4 of 30 near-miss pairs);
4. the MiniLM cosine of the two answers ≥ ``answer_similarity`` → same; else different.

A comparator is anything with ``async def same(fresh: bytes, cached: bytes) -> bool | None``
(None: cannot tell, e.g. the fresh answer is not a chat completion; no row is written). Tests and
the benchmark plug in their own (the benchmark's is an oracle over labelled question pairs).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import orjson

_WORDS = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LIST_MARKER = re.compile(r"(?m)^[ \t]*(?:[-*][ \t]+)?\d{1,2}[.)][ \t]")
#: words whose presence changes no fact: a small edit made of these alone is left to the embedding
_FILLER = frozenset(["a", "an", "the", "and", "then", "so", "just", "please", "also"])
#: at most this many words removed and this many added (filler aside): a small edit
SMALL_EDIT = 2


class Comparator(Protocol):
    async def same(self, fresh: bytes, cached: bytes) -> bool | None: ...


def normalise(text: str) -> str:
    """Lower-case words (letters and digits), one space between them: punctuation and spacing go."""
    return " ".join(_WORDS.findall(text.lower()))


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    tools: str  # canonical JSON of the tool calls ("" when none)
    finish: str


def answer_of(body: bytes) -> Answer | None:
    """The first choice of a chat completion (None for anything else)."""
    try:
        doc = orjson.loads(body)
        choice = doc["choices"][0]
        message = choice.get("message") or {}
        text = message.get("content") or ""
        if not isinstance(text, str):
            text = orjson.dumps(text).decode()
        calls = message.get("tool_calls") or []
        tools = (
            orjson.dumps(
                [(c.get("function") or {}).get("name", "") for c in calls], option=orjson.OPT_SORT_KEYS
            ).decode()
            + orjson.dumps(
                [(c.get("function") or {}).get("arguments", "") for c in calls], option=orjson.OPT_SORT_KEYS
            ).decode()
            if calls
            else ""
        )
        return Answer(text, tools, str(choice.get("finish_reason") or ""))
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return None


def small_edit(a: str, b: str) -> bool:
    """Do two normalised answers differ by a word or two (on either side) that is not filler?"""
    ca, cb = Counter(a.split()), Counter(b.split())
    removed = [w for w in (ca - cb).elements() if w not in _FILLER]
    added = [w for w in (cb - ca).elements() if w not in _FILLER]
    return bool(removed or added) and len(removed) <= SMALL_EDIT and len(added) <= SMALL_EDIT


def numbers(text: str) -> frozenset[str]:
    """The figures an answer states (list markers such as "2." at a line's start are not figures)."""
    return frozenset(n.replace(",", "") for n in _NUMBER.findall(_LIST_MARKER.sub(" ", text)))


class AnswerComparator:
    """The default comparator: exact, normalised, the numbers and small-edit rules, then embedding similarity."""

    def __init__(
        self, embed: Callable[[list[str]], Awaitable[np.ndarray | None]], answer_similarity: float = 0.9
    ) -> None:
        self._embed = embed
        self.answer_similarity = answer_similarity

    def settled(self, fresh: Answer, cached: Answer) -> bool | None:
        """The verdict when no embedding is needed, else None."""
        if fresh == cached:
            return True
        if fresh.tools != cached.tools or fresh.finish != cached.finish:
            return False
        a, b = normalise(fresh.text), normalise(cached.text)
        if a == b:
            return True
        if numbers(fresh.text) != numbers(cached.text) or not a or not b or small_edit(a, b):
            return False
        return None

    async def same(self, fresh: bytes, cached: bytes) -> bool | None:
        a, b = answer_of(fresh), answer_of(cached)
        if a is None or b is None:
            return None
        verdict = self.settled(a, b)
        if verdict is not None:
            return verdict
        vectors = await self._embed([a.text, b.text])
        if vectors is None:  # the encoder is busy: no label rather than a wait
            return None
        return bool(float(vectors[0] @ vectors[1]) >= self.answer_similarity)
