"""The cache benchmarks' oracle: is the question a cache served the question that was asked?

The rule is shared/data/README.md's, corrected: two questions are the same when they are identical
after lower-casing, removing punctuation and collapsing whitespace (``norm``), or when the split
labels the two (normalised) texts a duplicate pair. Labels are taken as given, pair by pair: no
transitive closure (a~b and b~c do not make a~c), because the labels are noisy and a chain of
them drifts. ``run.py`` scores with ``norm``; ``budget.py`` with ``Labels.same`` and ``Oracle``.

Also here, so that they are tested apart from the model: the Wilson interval of a realised error
and the static threshold a budget run is compared with (``best_static``). The interval is written
out here rather than taken from ``sophia.cache.risk``: the benchmark must not grade the cache
with the cache's own arithmetic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

_WORDS = re.compile(r"[^\W_]+")
#: the normal quantile of a two-sided 95% interval
Z95 = 1.959963984540054


def norm(text: str) -> str:
    """Lower-case words (letters and digits) joined by one space: punctuation and spacing go."""
    return " ".join(_WORDS.findall(text.lower()))


class Labels:
    """The labelled duplicate pairs of a split (or of the chat pairs), as normalised text pairs."""

    def __init__(self, duplicates: Iterable[tuple[str, str]]) -> None:
        self._pairs = {frozenset((norm(a), norm(b))) for a, b in duplicates}

    def __len__(self) -> int:
        return len(self._pairs)

    def labelled(self, q: str, c: str) -> bool:
        return frozenset((norm(q), norm(c))) in self._pairs

    def same(self, q: str, c: str) -> bool:
        """One question: the same normalised text, or a labelled duplicate pair in either order."""
        a, b = norm(q), norm(c)
        return a == b or frozenset((a, b)) in self._pairs


class Oracle:
    """A comparator for ``ResponseCache`` (``sophia.cache.compare.Comparator``) over benchmark questions.

    Each benchmark entry's body is its own question, so "would the stored answer have done?" is
    "is the stored question the same question?", asked of the labels: checks and shadow comparisons
    then teach the cache exactly what the benchmark grades it by.
    """

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.asked = 0

    async def same(self, fresh: bytes, cached: bytes) -> bool | None:
        self.asked += 1
        return self.labels.same(fresh.decode(), cached.decode())


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the proportion k/n ((0, 1) when nothing was observed)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def best_static(rows: Sequence[dict[str, Any]], error: float) -> dict[str, Any] | None:
    """B1(δ): of the static-threshold rows whose realised error is at most ``error``, the one serving
    the most semantic hits (ties: the lower error, then the higher threshold); None when none is."""
    eligible = [r for r in rows if r["error"] <= error + 1e-12]
    if not eligible:
        return None
    return max(eligible, key=lambda r: (r["served"], -r["error"], r["threshold"]))
