"""In-memory vector indexes, one per namespace: exact numpy search, HNSW for large namespaces.

Vectors are unit rows (MiniLM), so the inner product is the cosine. A namespace starts with an
exact ``FlatIndex`` (a matrix and one matrix-vector product per search). Above ``ANN_FROM`` vectors
an exact scan costs more than the 2 ms we allow for a search on a busy 2-core machine, so the
namespace moves to an HNSW graph (``usearch``, when installed; see benchmarks/cache/README.md for
the measurements behind the crossover).

Labels are integers chosen by the caller (the stores map them to entry ids).
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

DIM = 384
#: vectors in one namespace above which the HNSW graph replaces the exact scan
ANN_FROM = 20_000


class VectorIndex(Protocol):
    def __len__(self) -> int: ...
    def add(self, label: int, vector: np.ndarray) -> None: ...
    def remove(self, label: int) -> None: ...
    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...
    def vector(self, label: int) -> np.ndarray | None: ...


class FlatIndex:
    """Exact search over a growing matrix; removal moves the last row into the hole."""

    def __init__(self, dim: int = DIM, capacity: int = 64) -> None:
        self._matrix = np.empty((capacity, dim), dtype=np.float32)
        self._labels = np.empty(capacity, dtype=np.int64)
        self._row: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._row)

    def add(self, label: int, vector: np.ndarray) -> None:
        if label in self._row:
            self._matrix[self._row[label]] = vector
            return
        n = len(self._row)
        if n == len(self._labels):
            self._matrix = np.concatenate([self._matrix, np.empty_like(self._matrix)])
            self._labels = np.concatenate([self._labels, np.empty_like(self._labels)])
        self._matrix[n] = vector
        self._labels[n] = label
        self._row[label] = n

    def remove(self, label: int) -> None:
        row = self._row.pop(label, None)
        if row is None:
            return
        last = len(self._row)
        if row != last:
            moved = int(self._labels[last])
            self._matrix[row] = self._matrix[last]
            self._labels[row] = moved
            self._row[moved] = row

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Labels and cosines of the ``k`` nearest vectors, best first."""
        n = len(self._row)
        if n == 0 or k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        sims = self._matrix[:n] @ vector
        if n > k:
            top = np.argpartition(-sims, k - 1)[:k]
            top = top[np.argsort(-sims[top], kind="stable")]
        else:
            top = np.argsort(-sims, kind="stable")
        return self._labels[top].copy(), sims[top].astype(np.float32)

    def vector(self, label: int) -> np.ndarray | None:
        row = self._row.get(label)
        return None if row is None else self._matrix[row].copy()

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self._row)
        return self._labels[:n].copy(), self._matrix[:n].copy()


class HnswIndex:
    """An HNSW graph (usearch) with inner-product distance; exact enough for a cache (see README)."""

    def __init__(self, dim: int = DIM) -> None:
        from usearch.index import Index

        self._index = Index(
            ndim=dim, metric="ip", dtype="f32", connectivity=16, expansion_add=128, expansion_search=64
        )
        self._labels: set[int] = set()

    def __len__(self) -> int:
        return len(self._labels)

    def add(self, label: int, vector: np.ndarray) -> None:
        if label in self._labels:
            self._index.remove(label)
        self._index.add(label, np.ascontiguousarray(vector, dtype=np.float32))
        self._labels.add(label)

    def remove(self, label: int) -> None:
        if label in self._labels:
            self._labels.discard(label)
            self._index.remove(label)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not self._labels or k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        matches = self._index.search(np.ascontiguousarray(vector, dtype=np.float32), min(k, len(self)))
        return matches.keys.astype(np.int64), (1.0 - matches.distances).astype(np.float32)

    def vector(self, label: int) -> np.ndarray | None:
        if label not in self._labels:
            return None
        return np.asarray(self._index.get(label), dtype=np.float32).reshape(-1)


def hnsw_available() -> bool:
    """Whether usearch is installed, without importing it: once imported, usearch stops llama.cpp
    from loading a model in the same process (usearch 2.x, llama-cpp-python 0.3.36), so it is only
    imported when a namespace really grows past ``ann_from``."""
    import importlib.util

    return importlib.util.find_spec("usearch") is not None


class Namespaces:
    """One index per namespace, upgraded from exact to HNSW when it grows past ``ann_from``."""

    def __init__(self, ann_from: int | None = ANN_FROM) -> None:
        self.ann_from = ann_from if ann_from is not None and hnsw_available() else None
        self._indexes: dict[str, VectorIndex] = {}

    def __len__(self) -> int:
        return sum(len(i) for i in self._indexes.values())

    def add(self, namespace: str, label: int, vector: np.ndarray) -> None:
        index = self._indexes.get(namespace)
        if index is None:
            index = self._indexes[namespace] = FlatIndex()
        index.add(label, vector)
        if self.ann_from is not None and isinstance(index, FlatIndex) and len(index) > self.ann_from:
            self._indexes[namespace] = self._upgrade(index)

    def remove(self, namespace: str, label: int) -> None:
        index = self._indexes.get(namespace)
        if index is not None:
            index.remove(label)
            if not len(index):
                del self._indexes[namespace]

    def search(self, namespace: str, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        index = self._indexes.get(namespace)
        if index is None:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        return index.search(vector, k)

    def vector(self, namespace: str, label: int) -> np.ndarray | None:
        index = self._indexes.get(namespace)
        return None if index is None else index.vector(label)

    def clear(self) -> None:
        self._indexes.clear()

    @staticmethod
    def _upgrade(flat: FlatIndex) -> HnswIndex:
        labels, vectors = flat.items()
        hnsw = HnswIndex(vectors.shape[1])
        hnsw._index.add(labels, vectors)
        hnsw._labels.update(int(x) for x in labels)
        log.info("cache namespace grew to %d entries: switched to an HNSW index", len(labels))
        return hnsw
