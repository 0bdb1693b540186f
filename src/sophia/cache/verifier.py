"""The verifier: does a stored question really ask the same thing as the new one?

Nearest-neighbour search finds the closest stored questions; a cosine threshold alone cannot tell
"learn Python" from "learn Java" (on QQP: 64% precision at 46% recall). The verifier is a small
MLP over pair features (``sophia.cache.features``: the two MiniLM embeddings, word overlap, rare
words that differ and how far their nearest counterparts are, numbers, negations), behind two
hard guards (a differing number or name is never served, whatever the model says). It runs on
numpy alone, well under a millisecond per candidate, and its weights ship with the package in
``verifier.npz`` (rebuilt by ``python -m sophia.cache.train``, from the dev split only).

The score is a probability-like number in [0, 1]; a neighbour is served when its score reaches the
threshold. The default threshold was picked on the dev split (out-of-fold) and is stored in the file.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sophia.cache.features import SCALAR_NAMES, Lexicon, analyse, guard, pair_matrix
from sophia.cache.mlp import MLP
from sophia.errors import ConfigError

WEIGHTS_FILE = "verifier.npz"
FORMAT = 1


class Verifier:
    def __init__(self, lexicon: Lexicon, model: MLP, threshold: float, info: dict[str, Any]) -> None:
        self.lexicon = lexicon
        self.model = model
        self.threshold = threshold
        self.info = info

    @classmethod
    def load(cls, path: str | Path | None = None) -> Verifier:
        """Load weights from ``path``, or the file shipped with the package."""
        source = Path(path) if path is not None else resources.files("sophia.cache") / WEIGHTS_FILE
        try:
            with source.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"cannot load the cache verifier from {source}: {exc}") from exc
        info = json.loads(bytes(arrays.pop("info")).decode())
        if info.get("format") != FORMAT or tuple(info.get("scalars", ())) != SCALAR_NAMES:
            raise ConfigError(
                f"the cache verifier {source} was built for another feature set: "
                "rebuild it with `python -m sophia.cache.train`"
            )
        lexicon = Lexicon(
            str(arrays["lex_words"]).split("\n"),
            arrays["lex_idf"],
            arrays["lex_vectors"],
            float(arrays["lex_unknown_idf"]),
        )
        return cls(lexicon, MLP.from_arrays(arrays, "mlp_"), float(info["threshold"]), info)

    def features(
        self, queries: list[str], q_emb: np.ndarray, candidates: list[str], c_emb: np.ndarray
    ) -> np.ndarray:
        scalars, dense = pair_matrix(queries, candidates, q_emb, c_emb, self.lexicon)
        return np.concatenate([scalars, dense], axis=1)

    def scores(self, query: str, q_emb: np.ndarray, candidates: list[str], c_emb: np.ndarray) -> np.ndarray:
        """Score of each candidate (texts and their unit embeddings) against one query.

        A candidate that differs in a number or a name (``features.guard``) scores 0.
        """
        if not candidates:
            return np.empty(0, dtype=np.float32)
        q_rows = np.broadcast_to(q_emb.reshape(1, -1), (len(candidates), q_emb.size))
        x = self.features([query] * len(candidates), q_rows, candidates, c_emb)
        scores = self.model.predict(x).astype(np.float32)
        q = analyse(query)
        for i, text in enumerate(candidates):
            if guard(q, analyse(text)) is not None:
                scores[i] = 0.0
        return scores

    def score_pairs(
        self, queries: list[str], q_emb: np.ndarray, candidates: list[str], c_emb: np.ndarray
    ) -> np.ndarray:
        """Scores of many (query, candidate) pairs at once (training and benchmarks)."""
        out = np.empty(len(queries), dtype=np.float32)
        for start in range(0, len(queries), 4096):
            end = start + 4096
            x = self.features(queries[start:end], q_emb[start:end], candidates[start:end], c_emb[start:end])
            out[start:end] = self.model.predict(x)
        for i, (q, c) in enumerate(zip(queries, candidates, strict=True)):
            if guard(analyse(q), analyse(c)) is not None:
                out[i] = 0.0
        return out


@lru_cache(maxsize=1)
def default_verifier() -> Verifier:
    """The verifier shipped with the package, loaded once per process."""
    return Verifier.load()
