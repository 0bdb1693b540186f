"""In-memory vector indexes, one per namespace: exact numpy search, an inverted file for large ones.

Vectors are unit rows (MiniLM), so the inner product is the cosine. A namespace starts with an
exact ``FlatIndex`` (a matrix and one matrix-vector product per search). Above ``ANN_FROM`` vectors
an exact scan costs more than the 2 ms we allow for a search on a busy 2-core machine, so the
namespace moves to an ``IvfIndex`` (k-means groups, a few probed per search; rebuilt each time it
grows fourfold). See benchmarks/cache/README.md for the measurements.

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
    def items(self) -> tuple[np.ndarray, np.ndarray]: ...


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


class IvfIndex:
    """An inverted-file index: vectors grouped by their nearest of ``n`` centroids (spherical k-means),
    a search scans the centroids and then only the ``probe`` closest groups.

    numpy alone (an HNSW library, usearch 2.x, broke llama.cpp's model loading in the same process
    through a clash of C++ runtime symbols). Near duplicates, the only neighbours a cache serves,
    share a group or sit in the next one, so probing a few groups finds them; the benchmark measures
    how often the top hit is the exact one.
    """

    def __init__(self, centroids: np.ndarray, probe: int = 8) -> None:
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.probe = min(probe, len(self.centroids))
        self._lists = [FlatIndex(self.centroids.shape[1], capacity=16) for _ in range(len(self.centroids))]
        self._where: dict[int, int] = {}
        self.built_size = 0

    @classmethod
    def build(cls, labels: np.ndarray, vectors: np.ndarray, seed: int = 0) -> IvfIndex:
        """Train centroids on (a sample of) ``vectors`` and file every vector under its nearest."""
        index = cls(kmeans(vectors, groups_for(len(vectors)), seed=seed))
        nearest = np.argmax(vectors @ index.centroids.T, axis=1)
        for label, group, vector in zip(labels.tolist(), nearest.tolist(), vectors, strict=True):
            index._lists[group].add(label, vector)
            index._where[label] = group
        index.built_size = len(labels)
        return index

    def __len__(self) -> int:
        return len(self._where)

    def add(self, label: int, vector: np.ndarray) -> None:
        self.remove(label)
        group = int(np.argmax(self.centroids @ vector))
        self._lists[group].add(label, vector)
        self._where[label] = group

    def remove(self, label: int) -> None:
        group = self._where.pop(label, None)
        if group is not None:
            self._lists[group].remove(label)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not self._where or k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        near = self.centroids @ vector
        groups = np.argpartition(-near, self.probe - 1)[: self.probe]
        found = [self._lists[g].search(vector, k) for g in groups.tolist() if len(self._lists[g])]
        labels = np.concatenate([f[0] for f in found])
        sims = np.concatenate([f[1] for f in found])
        top = np.argsort(-sims, kind="stable")[:k]
        return labels[top], sims[top]

    def vector(self, label: int) -> np.ndarray | None:
        group = self._where.get(label)
        return None if group is None else self._lists[group].vector(label)

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        parts = [lst.items() for lst in self._lists if len(lst)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def groups_for(n: int) -> int:
    """Number of centroids for ``n`` vectors: about 2·sqrt(n) (283 at 20k, 632 at 100k)."""
    return max(16, int(2 * n**0.5))


def kmeans(
    vectors: np.ndarray, n: int, *, seed: int = 0, rounds: int = 8, sample: int = 32_768
) -> np.ndarray:
    """Spherical k-means on at most ``sample`` rows: unit centroids, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    rows = vectors if len(vectors) <= sample else vectors[rng.choice(len(vectors), sample, replace=False)]
    centroids = rows[rng.choice(len(rows), n, replace=False)].copy()
    for _ in range(rounds):
        nearest = np.argmax(rows @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, nearest, rows)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        sums[empty] = rows[rng.choice(len(rows), int(empty.sum()), replace=False)]
        norms[empty] = 1.0
        centroids = (sums / norms).astype(np.float32)
    return centroids


class Namespaces:
    """One index per namespace, upgraded from exact to HNSW when it grows past ``ann_from``."""

    def __init__(self, ann_from: int | None = ANN_FROM) -> None:
        self.ann_from = ann_from
        self._indexes: dict[str, VectorIndex] = {}

    def __len__(self) -> int:
        return sum(len(i) for i in self._indexes.values())

    def add(self, namespace: str, label: int, vector: np.ndarray) -> None:
        index = self._indexes.get(namespace)
        if index is None:
            index = self._indexes[namespace] = FlatIndex()
        index.add(label, vector)
        if self.ann_from is not None and len(index) > self.ann_from and self._outgrown(index):
            labels, vectors = index.items()
            self._indexes[namespace] = IvfIndex.build(labels, vectors)
            log.info("cache namespace grew to %d entries: (re)built its inverted-file index", len(labels))

    def remove(self, namespace: str, label: int) -> None:
        index = self._indexes.get(namespace)
        if index is not None:
            index.remove(label)
            if not len(index):
                del self._indexes[namespace]

    def size(self, namespace: str) -> int:
        index = self._indexes.get(namespace)
        return 0 if index is None else len(index)

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
    def _outgrown(index: VectorIndex) -> bool:
        """A flat index past the limit, or an inverted file four times larger than when it was built."""
        if isinstance(index, IvfIndex):
            return len(index) > 4 * index.built_size
        return True
