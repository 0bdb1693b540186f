"""Rewordings of training questions, for a verifier that also holds on chat questions.

QQP teaches the verifier what Quora's annotators called the same question, and its mined
neighbours (unlabelled near paraphrases, scored as negatives) make it strict about surface
changes: "How can I cancel my subscription?" against "How do I cancel my subscription?" scores
about 0.56. Chat users reword the opening of a question far more often than Quora titles do, so
the training part of dev can be extended with rewrites of its own questions:

* **same meaning** (positive): an interchangeable opening ("how do I" / "how can I", "what is" /
  "what's", "can I" / "is it possible to" / "am I able to", "what is X" / "can you explain what
  X is"), or a courtesy around the question ("please", "can you tell me ...");
* **other meaning** (negative): another question word ("how" / "why" / "when"), another modal
  ("can I" / "should I"), one word replaced by its opposite ("add" / "remove", "buy" / "sell",
  "before" / "after", ...), or one word swapped the way a labelled non-duplicate pair of the
  training part swaps it ("Python" / "Java", "week" / "month": ``substitutions``), so that the
  model does not learn "a changed word is fine".

Every rule is a fixed table; which rewrite a question gets is chosen by a stable hash, so the
pairs are the same on every rebuild. Only questions of the training part are rewritten (never
the held-out part, never test).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from sophia.cache.training.dataset import stable

#: openings with the same meaning, each group interchangeable (matched at the start, lower case)
SAME_OPENINGS: tuple[tuple[str, ...], ...] = (
    ("how do i ", "how can i ", "how could i "),
    ("how do you ", "how can you ", "how does one "),
    ("what is ", "what's "),
    ("where is ", "where's "),
    ("who is ", "who's "),
    ("can i ", "is it possible to ", "am i able to "),
    ("what is the best way to ", "what's the best way to ", "what is a good way to "),
    ("is there any way to ", "is there a way to ", "is it possible to "),
    ("what are some ", "what are a few ", "what are "),
)
#: openings with another meaning (a rewrite from one group to another of the same row)
OTHER_OPENINGS: tuple[tuple[str, ...], ...] = (
    ("how do i ", "why do i ", "when do i ", "where do i "),
    ("how can i ", "why can i not ", "when can i "),
    ("can i ", "should i ", "must i "),
    ("what is ", "what was "),
    ("why is ", "how is ", "when is "),
    ("is it ", "why is it ", "when is it "),
)
#: courtesy around a question that does not change it (prefix, suffix)
COURTESY: tuple[tuple[str, str], ...] = (
    ("please tell me: ", ""),
    ("quick question: ", ""),
    ("", " thanks!"),
    ("hi, ", ""),
    ("i'd like to know: ", ""),
)
#: single words and their opposites (both directions). Kept out on purpose: the opposites in
#: benchmarks/cache/chat_pairs.jsonl's near misses (open/close, connect/disconnect, learn/teach,
#: on/off, biggest/smallest), so that that check measures what the model generalises to.
OPPOSITES: tuple[tuple[str, str], ...] = (
    ("add", "remove"),
    ("start", "stop"),
    ("buy", "sell"),
    ("win", "lose"),
    ("increase", "decrease"),
    ("enable", "disable"),
    ("install", "uninstall"),
    ("lock", "unlock"),
    ("upload", "download"),
    ("import", "export"),
    ("before", "after"),
    ("more", "less"),
    ("best", "worst"),
    ("first", "last"),
    ("cheap", "expensive"),
    ("maximum", "minimum"),
    ("good", "bad"),
    ("advantages", "disadvantages"),
    ("positive", "negative"),
    ("rich", "poor"),
    ("hire", "fire"),
    ("join", "leave"),
    ("love", "hate"),
    ("gain", "lose"),
    ("male", "female"),
    ("husband", "wife"),
    ("boy", "girl"),
    ("men", "women"),
    ("old", "new"),
    ("high", "low"),
    ("fast", "slow"),
    ("easy", "hard"),
    ("true", "false"),
    ("legal", "illegal"),
    ("online", "offline"),
    ("inside", "outside"),
    ("success", "failure"),
    ("happy", "sad"),
    ("north", "south"),
    ("east", "west"),
    ("include", "exclude"),
    ("accept", "reject"),
    ("send", "receive"),
    ("subscribe", "unsubscribe"),
)
_OPPOSITE = {x: (y,) for a, b in OPPOSITES for x, y in ((a, b), (b, a))}
_WORD = re.compile(r"[A-Za-z]+")
_FUNCTION = frozenset(
    [
        "this",
        "that",
        "what",
        "which",
        "with",
        "from",
        "your",
        "their",
        "will",
        "would",
        "should",
        "could",
        "have",
        "does",
        "into",
        "about",
        "there",
        "these",
        "those",
        "some",
        "many",
        "much",
        "more",
        "most",
        "been",
        "were",
        "when",
        "where",
        "then",
        "than",
        "also",
        "just",
        "only",
        "very",
        "them",
        "they",
    ]
)
_LETTERS = re.compile(r"[a-z0-9]+")
_SURFACE = re.compile(r"[\w+#]+")
_ARTICLES = frozenset(("a", "an", "the"))


def _swap_opening(text: str, groups: Iterable[tuple[str, ...]], pick: int) -> str | None:
    low = text.lower()
    for group in groups:
        for opening in sorted(group, key=len, reverse=True):  # the longest opening that matches
            if low.startswith(opening):
                others = [o for o in group if o != opening]
                other = others[pick % len(others)]
                return _capital(re.sub(r"\bi\b", "I", other) + text[len(opening) :])
    return None


def _explain(text: str) -> str | None:
    """'What is X?' -> 'Can you explain what X is?' (short questions only)."""
    match = re.fullmatch(r"(?i)what is (.{3,60}?)\s*\?", text.strip())
    if match is None:
        return None
    return f"Can you explain what {match.group(1)} is?"


def _courtesy(text: str, pick: int) -> str:
    prefix, suffix = COURTESY[pick % len(COURTESY)]
    body = text.strip()
    if prefix:
        body = prefix + body[:1].lower() + body[1:]
    return _capital(body + suffix)


def _replace_word(text: str, table: Mapping[str, Sequence[str]], pick: int) -> str | None:
    """``text`` with one of its words that ``table`` knows replaced by one of its entries (None: no such word)."""
    words = [m for m in _WORD.finditer(text) if m.group(0).lower() in table]
    if not words:
        return None
    m = words[pick % len(words)]
    options = table[m.group(0).lower()]
    new = options[(pick >> 4) % len(options)]
    if m.group(0)[0].isupper():
        new = new.capitalize()
    return text[: m.start()] + new + text[m.end() :]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def same_meaning(text: str) -> str | None:
    """A rewording of ``text`` with the same meaning, or None when no rule applies.

    Another opening where one is known, else "can you explain", else (one question in four) a
    courtesy: every question could take one, and the model would learn little more from them.
    """
    h = stable(text, "same")
    out = _swap_opening(text, SAME_OPENINGS, h >> 8) or _explain(text)
    if out is None and h % 4 == 0:
        out = _courtesy(text, h >> 8)
    return out if out is not None and out.lower() != text.lower() else None


def other_meaning(text: str, swaps: Mapping[str, tuple[str, ...]] | None = None) -> str | None:
    """A near copy of ``text`` that asks something else, or None when no rule applies.

    A word to its opposite, another question word, or (with ``swaps``, from ``substitutions``) a
    word replaced the way a labelled non-duplicate pair replaced it: the hash picks the order.
    """
    h = stable(text, "other")
    tried = [
        _replace_word(text, _OPPOSITE, h >> 8),
        _swap_opening(text, OTHER_OPENINGS, h >> 8),
        _replace_word(text, swaps, h >> 8) if swaps else None,
    ]
    start = h % len(tried)
    out = next((t for t in tried[start:] + tried[:start] if t is not None), None)
    return out if out is not None and out.lower() != text.lower() else None


def substitutions(pairs: Iterable[tuple[str, str, bool]]) -> dict[str, tuple[str, ...]]:
    """Words that labelled pairs show to change a question: ``{word: replacements}``.

    From every (a, b, duplicate) pair whose two sides differ in exactly one word (same length;
    letters only, 4+ letters, no function word, on both sides): the swap is kept when only
    non-duplicate pairs make it ("learn Python" / "learn Java"), and dropped when a duplicate pair
    makes it too (a synonym, or noise).
    """
    seen: dict[tuple[str, str], set[bool]] = {}
    for a, b, duplicate in pairs:
        x, y = _LETTERS.findall(a.lower()), _LETTERS.findall(b.lower())
        if len(x) != len(y):
            continue
        diff = [(u, v) for u, v in zip(x, y, strict=True) if u != v]
        if len(diff) == 1 and all(len(w) >= 4 and w.isalpha() and w not in _FUNCTION for w in diff[0]):
            seen.setdefault(diff[0], set()).add(duplicate)
            seen.setdefault(diff[0][::-1], set()).add(duplicate)
    table: dict[str, list[str]] = {}
    for (u, v), labels in sorted(seen.items()):
        if labels == {False}:
            table.setdefault(u, []).append(v)
    return {u: tuple(vs) for u, vs in table.items()}


def surface(text: str) -> tuple[str, ...]:
    """The words of ``text`` without case, punctuation and articles: two texts with the same
    surface ask the same question (a mined neighbour with the same surface is no negative)."""
    return tuple(w for w in _SURFACE.findall(text.lower().replace("'", "")) if w not in _ARTICLES)


def rewrite_pairs(
    texts: Iterable[str], limit: int, swaps: Mapping[str, tuple[str, ...]] | None = None
) -> list[tuple[str, str, float]]:
    """Up to ``limit`` positive and ``limit`` negative (original, rewrite, label) pairs, stably sampled."""
    if limit <= 0:
        return []
    ordered = sorted(set(texts), key=lambda t: stable(t, "rewrite"))
    positives: list[tuple[str, str, float]] = []
    negatives: list[tuple[str, str, float]] = []
    for text in ordered:
        if len(positives) < limit and (same := same_meaning(text)) is not None:
            positives.append((text, same, 1.0))
        if len(negatives) < limit and (other := other_meaning(text, swaps)) is not None:
            negatives.append((text, other, 0.0))
        if len(positives) >= limit and len(negatives) >= limit:
            break
    return positives + negatives
