"""Training pairs for the verifier, built the way the cache meets them: from nearest neighbours.

A labelled QQP pair is only half the story. In a cache, the verifier judges a query against the
*nearest* stored questions, most of which are not the query's labelled partner. So the training
set is the union of

* every labelled pair of the split (``a``, ``b``, duplicate or not);
* each ``b`` against its ``k`` nearest ``a``s of the split (standard mode: ``a``s are loaded, ``b``s
  looked up), and
* each ``a`` against its ``k`` nearest other ``a``s (gateway mode, where ``a``s are looked up too).

A pair is positive when the two texts are the same question (identical after lower-casing and
collapsing whitespace) or the split's labels make them duplicates, directly or through a chain of
duplicate pairs (``closure=True``: if a~b and b~c are labelled duplicates, so are a and c);
otherwise negative. Neighbour pairs that nobody labelled are negatives, which is also how the
benchmark scores them, although many are in fact paraphrases (QQP labels only the pairs it
sampled). Without them (``neighbour_weight`` 0) the verifier never sees the near neighbours it
must reject and does worse than a plain cosine on the benchmark; with them (1, the default) it is
strict, and also rejects some chat rewordings (see benchmarks/cache/README.md). ``closure`` and
``neighbour_weight`` stay for the record.
Each pair carries the component (connected by labelled pairs) of each side, for grouped folds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sophia.cache.training.dataset import Embeddings, Pair, normalise, top_k


@dataclass
class PairSet:
    left: list[str]
    right: list[str]
    label: np.ndarray  # float32 0/1
    source: np.ndarray  # 0 labelled, 1 b->a neighbour, 2 a->a neighbour
    group_left: np.ndarray
    group_right: np.ndarray
    weight: np.ndarray  # float32 sample weights


def components(pairs: list[Pair], *, duplicates_only: bool = False) -> dict[str, int]:
    """Component id of every normalised text, connecting the two sides of each (duplicate) pair."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        a, b = find(normalise(p.a)), find(normalise(p.b))
        if p.duplicate or not duplicates_only:
            parent[a] = b
    ids: dict[str, int] = {}
    return {t: ids.setdefault(find(t), len(ids)) for t in list(parent)}


def build_pairs(
    pairs: list[Pair], emb: Embeddings, k: int, *, closure: bool = False, neighbour_weight: float = 1.0
) -> PairSet:
    duplicates = {frozenset((normalise(p.a), normalise(p.b))) for p in pairs if p.duplicate}
    comp = components(pairs)
    same = components(pairs, duplicates_only=True)
    seen: set[frozenset[str]] = set()
    left: list[str] = []
    right: list[str] = []
    source: list[int] = []

    def add(x: str, y: str, kind: int) -> None:
        key = frozenset((x, y))
        if x == y or key in seen:
            return
        seen.add(key)
        left.append(x)
        right.append(y)
        source.append(kind)

    for p in pairs:
        add(p.a, p.b, 0)
    if neighbour_weight > 0:
        _add_neighbours(pairs, emb, k, add)

    def positive(x: str, y: str) -> bool:
        nx, ny = normalise(x), normalise(y)
        if closure:
            return nx == ny or same[nx] == same[ny]
        return nx == ny or frozenset((nx, ny)) in duplicates

    label = np.array([positive(x, y) for x, y in zip(left, right, strict=True)], dtype=np.float32)
    kinds = np.array(source, dtype=np.int8)
    weight = np.where((kinds > 0) & (label == 0), neighbour_weight, 1.0).astype(np.float32)
    return PairSet(
        left,
        right,
        label,
        kinds,
        np.array([comp[normalise(x)] for x in left], dtype=np.int64),
        np.array([comp[normalise(y)] for y in right], dtype=np.int64),
        weight,
    )


def _add_neighbours(pairs: list[Pair], emb: Embeddings, k: int, add: Callable[[str, str, int], None]) -> None:
    """Each b against its k nearest a's (standard mode), each a against its k nearest other a's."""
    a_texts = sorted({p.a for p in pairs})
    a_emb = emb.of(a_texts)
    b_texts = sorted({p.b for p in pairs})
    idx, _ = top_k(emb.of(b_texts), a_emb, k)
    for i, b in enumerate(b_texts):
        for j in idx[i]:
            add(b, a_texts[j], 1)
    idx, _ = top_k(a_emb, a_emb, k + 1)
    for i, a in enumerate(a_texts):
        for j in idx[i]:
            add(a, a_texts[j], 2)
