"""What the router looks at: the question itself, its embedding, and a few cheap numbers.

Benchmark prompts (and many production ones) wrap the question in a long shared few-shot
prefix and a fixed instruction. An encoder that reads only the first 256 word pieces
(all-MiniLM-L6-v2) would then give every prompt of a task the same vector. So the router
represents the *question*:

1. **The last user turn.** A chat request's ``messages`` give it directly; a RouterBench prompt
   is the Python repr of a list of turns (``"['...']"``) and is parsed as such.
2. **Minus the boilerplate learnt from the training prompts** (``Boilerplate``), stored in the
   trained artifact so that serving strips exactly what training stripped:

   * per task, the longest common prefix and suffix of its prompts, cut back to a line boundary;
   * blocks (paragraphs between blank lines) and single lines that recur in at least
     ``min_share`` of a task's prompts: few-shot examples, "Answer:", answer-format orders.

   What remains is the question; if nothing remains, the turn is kept whole.

The cheap features (``CHEAP_NAMES``) are length and shape numbers that cost microseconds.
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_BLANK_LINE = re.compile(r"\n[ \t]*\n")
#: a prefix or suffix shorter than this is not worth stripping (it may be the start of a question)
MIN_AFFIX_CHARS = 24
#: a Python-literal list longer than this is not parsed (``ast`` on huge input is slow)
MAX_LITERAL_CHARS = 1_000_000

CHEAP_NAMES = ("log_question_chars", "question_lines", "digit_share", "code_marks")


def turns(prompt: str) -> list[str]:
    """The turns of a prompt: a RouterBench-style Python list literal of strings, else the text itself."""
    text = prompt.strip()
    if len(text) < MAX_LITERAL_CHARS and text[:1] == "[" and text[-1:] == "]":
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return [prompt]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value
    return [prompt]


def content_text(content: Any) -> str:
    """The text of a chat message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)
        )
    return ""


def last_user_turn(prompt: str | Sequence[Mapping[str, Any]]) -> str:
    """The last user message of a chat ``messages`` list, or the last turn of a prompt string."""
    if isinstance(prompt, str):
        return turns(prompt)[-1]
    for message in reversed(prompt):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return content_text(prompt[-1].get("content")) if prompt else ""


def _blocks(text: str) -> list[str]:
    return [b.strip() for b in _BLANK_LINE.split(text) if b.strip()]


def _shared_start(texts: Sequence[str]) -> str:
    """Longest string every text starts with (character by character)."""
    if not texts:
        return ""
    low, high = min(texts), max(texts)  # the shared start of all is that of the extremes
    i = 0
    while i < min(len(low), len(high)) and low[i] == high[i]:
        i += 1
    return low[:i]


def _common_prefix(texts: Sequence[str]) -> str:
    """Longest common prefix, cut back to just after a line break (never mid-line)."""
    prefix = _shared_start(texts)
    cut = prefix.rfind("\n")
    return prefix[: cut + 1] if cut >= 0 else ""


def _common_suffix(texts: Sequence[str]) -> str:
    """Longest common suffix, cut forward to a line break (it starts at the start of a line)."""
    suffix = _shared_start([t[::-1] for t in texts])[::-1]
    cut = suffix.find("\n")
    return suffix[cut:] if cut >= 0 else ""


#: a learnt prefix or suffix, and the task whose prompts share it
Affix = tuple[str, str]


def _longest_first(affixes: Iterable[Affix]) -> tuple[Affix, ...]:
    return tuple(sorted(affixes, key=lambda a: (-len(a[0]), a)))


@dataclass(frozen=True)
class Boilerplate:
    """Text shared by many training prompts, removed before embedding (see the module docstring)."""

    prefixes: tuple[Affix, ...] = ()
    suffixes: tuple[Affix, ...] = ()
    blocks: frozenset[str] = frozenset()
    lines: frozenset[str] = frozenset()

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        groups: Sequence[str] | None = None,
        min_share: float = 0.1,
        min_count: int = 3,
    ) -> Boilerplate:
        """Learn the boilerplate of ``texts`` (last user turns), task by task when ``groups`` is given."""
        by_group: dict[str, list[str]] = {}
        for text, group in zip(texts, groups if groups is not None else [""] * len(texts), strict=True):
            by_group.setdefault(group, []).append(text)
        prefixes: set[Affix] = set()
        suffixes: set[Affix] = set()
        blocks: set[str] = set()
        lines: set[str] = set()
        for group, members in by_group.items():
            if len(members) < min_count:
                continue
            floor = max(min_count, math.ceil(min_share * len(members)))
            prefix, suffix = _common_prefix(members), _common_suffix(members)
            if len(prefix.strip()) >= MIN_AFFIX_CHARS:
                prefixes.add((prefix, group))
            if len(suffix.strip()) >= MIN_AFFIX_CHARS:
                suffixes.add((suffix, group))
            block_counts = Counter(b for t in members for b in set(_blocks(t)))
            blocks.update(b for b, n in block_counts.items() if n >= floor)
            # lines are counted in what the affixes and blocks leave, so few-shot lines do not pile up
            partial = cls(_longest_first(prefixes), _longest_first(suffixes), frozenset(blocks))
            line_counts = Counter(
                ln for t in members for ln in set(partial.strip(t).splitlines()) if ln.strip()
            )
            lines.update(ln.strip() for ln, n in line_counts.items() if n >= floor)
        return cls(
            _longest_first(prefixes),
            _longest_first(suffixes),
            frozenset(blocks),
            frozenset(lines),
        )

    def strip(self, text: str) -> str:
        """The question left in ``text`` once the learnt boilerplate is removed (``text`` if none is left)."""
        return self.match(text)[0]

    def match(self, text: str) -> tuple[str, str | None]:
        """``(question, task)``: the stripped text, and the task whose prefix (else suffix) it carried."""
        body, task = text, None
        for prefix, group in self.prefixes:
            if body.startswith(prefix):
                body, task = body[len(prefix) :], group
                break
        for suffix, group in self.suffixes:
            if body.endswith(suffix) and len(suffix) < len(body):
                body, task = body[: -len(suffix)], task or group
                break
        kept = []
        for block in _blocks(body):
            if block in self.blocks:
                continue
            block_lines = [ln for ln in block.splitlines() if ln.strip() and ln.strip() not in self.lines]
            if block_lines:
                kept.append("\n".join(block_lines))
        question = "\n\n".join(kept).strip()
        return question or text.strip(), task

    def question(self, prompt: str | Sequence[Mapping[str, Any]]) -> str:
        """The question of a prompt string or a chat ``messages`` list."""
        return self.strip(last_user_turn(prompt))

    def to_json(self) -> dict[str, Any]:
        return {
            "prefixes": [list(a) for a in self.prefixes],
            "suffixes": [list(a) for a in self.suffixes],
            "blocks": sorted(self.blocks),
            "lines": sorted(self.lines),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Boilerplate:
        """Inverse of ``to_json``; ``ValueError`` on a wrong shape."""
        affixes = {}
        for name in ("prefixes", "suffixes"):
            items = value.get(name, [])
            if not all(
                isinstance(a, list) and len(a) == 2 and all(isinstance(x, str) for x in a) for a in items
            ):
                raise ValueError(f"boilerplate {name}: expected [text, task] pairs")
            affixes[name] = _longest_first((a[0], a[1]) for a in items)
        texts = {}
        for name in ("blocks", "lines"):
            items = value.get(name, [])
            if not all(isinstance(x, str) for x in items):
                raise ValueError(f"boilerplate {name}: expected strings")
            texts[name] = frozenset(items)
        return cls(affixes["prefixes"], affixes["suffixes"], texts["blocks"], texts["lines"])


_CODE = re.compile(r"```|\bdef |\bclass |\breturn\b|[{};]\s*$", re.MULTILINE)


def cheap_features(question: str) -> np.ndarray:
    """The ``CHEAP_NAMES`` numbers of one question (float32). Only the question's own shape: the
    length of the whole prompt mostly measures the few-shot template, which the task already says."""
    chars = max(len(question), 1)
    digits = sum(c.isdigit() for c in question)
    return np.array(
        [
            math.log1p(len(question)),
            math.log1p(question.count("\n") + 1),
            digits / chars,
            min(len(_CODE.findall(question)), 5) / 5,
        ],
        dtype=np.float32,
    )
