"""Do two answers say the same thing? The label behind every check the cache learns from.

When the cache checks a would-be hit (``sophia.cache.risk``), the model answers the question anew
and the comparator says whether the stored answer would have done. It must be cheap (it runs on
every check and on every miss that had a rejected candidate) and lean towards "different" when in
doubt: a false "same" hides a wrong answer from the budget, a false "different" only makes the
cache more careful. Tiers, in order:

1. the same text, or the same after normalisation (lower-case, words only) → same;
2. a different set of numbers, a tool call against a text, a different finish reason or different
   tool calls → different;
3. the MiniLM cosine of the two answers ≥ ``answer_similarity`` → same; else different.

A comparator is anything with ``async def same(fresh: bytes, cached: bytes) -> bool | None``
(None: cannot tell, e.g. the fresh answer is not a chat completion; no row is written). Tests and
the benchmark plug in their own (the benchmark's is an oracle over labelled question pairs).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import orjson

_WORDS = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LIST_MARKER = re.compile(r"(?m)^[ \t]*(?:[-*][ \t]+)?\d{1,2}[.)][ \t]")


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


def numbers(text: str) -> frozenset[str]:
    """The figures an answer states (list markers such as "2." at a line's start are not figures)."""
    return frozenset(n.replace(",", "") for n in _NUMBER.findall(_LIST_MARKER.sub(" ", text)))


class AnswerComparator:
    """The default comparator: exact, normalised, then embedding similarity with the numbers rule."""

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
        if normalise(fresh.text) == normalise(cached.text):
            return True
        if numbers(fresh.text) != numbers(cached.text) or not fresh.text.strip() or not cached.text.strip():
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
