"""The verifier: does a stored question really ask the same thing as the new one?

Nearest-neighbour search finds the closest stored questions; a cosine threshold alone cannot tell
"learn Python" from "learn Java" (on QQP: 64% precision at 46% recall). The verifier is a small
**cross-encoder** (``sophia.cache.cross_encoder``): the two questions are read together by the
blocks of the bundled all-MiniLM-L6-v2 (how many, and which are fine-tuned, is recorded in the
weight file), fine-tuned on the dev split of the QQP pairs, so every word of one side attends to
the other.

It runs in two stages, so that a lookup stays cheap:

1. **cheap filter**: a candidate below ``floor`` cosine, or one that differs in a number or a name
   (``features.guard``, a hard rule whatever the model says), scores 0 without running the model;
   a candidate with the same normalised text scores 1;
2. **cross-encoder** on at most ``judged`` remaining candidates (the closest by cosine), in one
   batch (a few milliseconds for one or two pairs of short questions; onnxruntime int8 when it
   is installed, numpy otherwise: see ``sophia.embedder``).

Scores are probabilities in [0, 1]; a neighbour is served when its score reaches the threshold.
The default threshold was chosen on a held-out part of the dev split (never on test) and is
stored, with the dev operating points, in ``verifier.npz`` (benchmarks/cache/README.md has the
test-split figures). Rebuild the file with ``make cache-verifier`` (``python -m sophia.cache.training.train``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sophia.cache.cross_encoder import CrossEncoder
from sophia.cache.features import analyse, guard
from sophia.embedder import get_encoder, trim_heap
from sophia.errors import ConfigError

if TYPE_CHECKING:
    from sophia.embedder import Encoder

WEIGHTS_FILE = "verifier.npz"
#: the layout written by ``sophia.cache.training.train``: 3 stores block matrices in int8 (``cross_encoder.pack``)
FORMAT = 3
#: layouts this code still reads (2: every block array in float16)
READABLE_FORMATS = (2, 3)


class Verifier:
    def __init__(self, model: CrossEncoder, threshold: float, info: dict[str, Any]) -> None:
        self.model = model
        self.threshold = threshold
        self.info = info
        self.floor = float(info.get("floor", 0.7))
        self.judged = int(info.get("judged", 2))

    @classmethod
    def load(cls, path: str | Path | None = None, encoder: Encoder | None = None) -> Verifier:
        """Load weights from ``path``, or the file shipped with the package.

        The cross-encoder runs on ``encoder``'s runtime: by default ``get_encoder()``, the installed
        MiniLM on onnxruntime (int8) when it is installed, else on numpy.
        """
        source = Path(path) if path is not None else resources.files("sophia.cache") / WEIGHTS_FILE
        try:
            with source.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            info = json.loads(bytes(arrays.pop("info")).decode())
        except (OSError, EOFError, ValueError, KeyError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot load the cache verifier from {source}: {exc}") from exc
        if not isinstance(info, dict) or info.get("format") not in READABLE_FORMATS:
            raise ConfigError(
                f"the cache verifier {source} has another format: rebuild it with `make cache-verifier`"
            )
        try:
            layers, frozen, threshold = int(info["layers"]), int(info["frozen"]), float(info["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"the cache verifier {source} lacks {exc}") from exc
        model = CrossEncoder(
            encoder or get_encoder(), arrays, layers, frozen, bool(info.get("symmetric", False))
        )
        return cls(model, threshold, info)

    def scores(self, query: str, q_emb: np.ndarray, candidates: list[str], c_emb: np.ndarray) -> np.ndarray:
        """Score of each candidate (texts and their unit embeddings) against one query.

        Candidates below the cosine floor or failing ``features.guard`` score 0; of the rest, the
        ``judged`` closest run through the cross-encoder in one batch, the others score 0.
        """
        out, todo = self.plan(query, q_emb, candidates, c_emb)
        if todo:
            out[todo] = self.model.probabilities([(query, candidates[i]) for i in todo])
        return out

    def plan(
        self, query: str, q_emb: np.ndarray, candidates: list[str], c_emb: np.ndarray
    ) -> tuple[np.ndarray, list[int]]:
        """The first stage: scores settled without the model, and the candidates it must judge."""
        out = np.zeros(len(candidates), dtype=np.float32)
        if not candidates:
            return out, []
        cos = np.asarray(c_emb, dtype=np.float32) @ np.asarray(q_emb, dtype=np.float32).reshape(-1)
        q = analyse(query)
        todo: list[int] = []
        for i in np.argsort(-cos, kind="stable"):
            if _same(query, candidates[i]):
                out[i] = 1.0
            elif (
                cos[i] >= self.floor and len(todo) < self.judged and guard(q, analyse(candidates[i])) is None
            ):
                todo.append(int(i))
        return out, todo

    def score_pairs(
        self, queries: list[str], q_emb: np.ndarray, candidates: list[str], c_emb: np.ndarray
    ) -> np.ndarray:
        """Scores of many (query, candidate) pairs at once, each judged on its own (training, benchmarks)."""
        out = np.zeros(len(queries), dtype=np.float32)
        cos = np.einsum("ij,ij->i", np.asarray(q_emb, np.float32), np.asarray(c_emb, np.float32))
        todo = []
        for i, (q, c) in enumerate(zip(queries, candidates, strict=True)):
            if _same(q, c):
                out[i] = 1.0
            elif cos[i] >= self.floor and guard(analyse(q), analyse(c)) is None:
                todo.append(i)
        for start in range(0, len(todo), 512):
            rows = todo[start : start + 512]
            out[rows] = self.model.probabilities([(queries[i], candidates[i]) for i in rows])
        return out


def _same(a: str, b: str) -> bool:
    """One question (the benchmark's rule): identical after lower-casing and collapsing whitespace."""
    return a.lower().split() == b.lower().split()


@lru_cache(maxsize=1)
def default_verifier() -> Verifier:
    """The verifier shipped with the package, loaded once per process."""
    verifier = Verifier.load()
    trim_heap()  # the weight file's arrays were only needed to build or check the model
    return verifier
