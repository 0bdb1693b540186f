"""The QQP question pairs of the cache benchmark: loading, embedding (cached on disk), candidates.

Used by the verifier's training (``sophia.cache.training.train``, dev split only) and by the quality
benchmark (``benchmarks/cache/run.py``). The file format and the scoring rule are those of
``shared/data/README.md``: one JSON object per line with ``id, split, a, b, duplicate``; a hit is
correct when it returns the pair's own ``a`` of a duplicate pair, or a text that is the same
question as the query (identical after lower-casing and collapsing whitespace).
"""

from __future__ import annotations

import gzip
import hashlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from sophia.embedder.minilm import get_minilm


@dataclass(frozen=True, slots=True)
class Pair:
    id: int
    split: str
    a: str
    b: str
    duplicate: bool


def load_pairs(path: str | Path, split: str | None = None) -> list[Pair]:
    """Every pair of the file (gzip or plain JSON lines), optionally only those of one split."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    pairs = []
    with opener(path, "rb") as fh:
        for line in fh:
            if line.strip():
                row = orjson.loads(line)
                if split is None or row["split"] == split:
                    pairs.append(Pair(row["id"], row["split"], row["a"], row["b"], bool(row["duplicate"])))
    return pairs


def same_question(x: str, y: str) -> bool:
    """The benchmark's notion of one question: identical after lower-casing and collapsing whitespace."""
    return normalise(x) == normalise(y)


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def stable(text: str, salt: str = "") -> int:
    """A hash of ``text`` that is the same in every process and on every machine (splits, samples)."""
    return int.from_bytes(hashlib.blake2b(f"{salt}{text}".encode(), digest_size=8).digest(), "big")


class Embeddings:
    """Unit MiniLM vectors of a set of texts, looked up by text (computed once, cached on disk)."""

    def __init__(self, texts: Sequence[str], matrix: np.ndarray) -> None:
        self.row = {t: i for i, t in enumerate(texts)}
        self.matrix = matrix

    def of(self, texts: Sequence[str]) -> np.ndarray:
        return self.matrix[[self.row[t] for t in texts]]

    @classmethod
    def compute(cls, texts: Sequence[str], cache_dir: Path | None = None, *, chunk: int = 2048) -> Embeddings:
        unique = sorted(set(texts))
        digest = hashlib.sha256("\n".join(unique).encode()).hexdigest()[:20]
        cached = cache_dir / f"minilm-{digest}.npy" if cache_dir is not None else None
        if cached is not None and cached.is_file():
            matrix = np.load(cached)
            if matrix.shape == (len(unique), 384):
                return cls(unique, matrix)
        encoder = get_minilm()
        matrix = np.empty((len(unique), encoder.dim), dtype=np.float32)
        started = time.perf_counter()
        for start in range(0, len(unique), chunk):
            matrix[start : start + chunk] = encoder.encode(unique[start : start + chunk])
            done = min(start + chunk, len(unique))
            rate = done / (time.perf_counter() - started)
            print(f"  embedded {done:,}/{len(unique):,} texts ({rate:.0f}/s)", file=sys.stderr, flush=True)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, matrix)
        return cls(unique, matrix)


def top_k(
    queries: np.ndarray, keys: np.ndarray, k: int, *, block: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosines of the ``k`` nearest ``keys`` of every query row, best first (exact search)."""
    n = len(queries)
    k = min(k, len(keys))
    idx = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        scores = queries[start : start + block] @ keys.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        idx[start : start + block] = np.take_along_axis(part, order, axis=1)
        sims[start : start + block] = np.take_along_axis(part_scores, order, axis=1)
    return idx, sims
