"""The cache's model work: a question's vector, two answers' vectors (the comparator's last tier) and
the verifier's scores of candidates.

Everything heavy runs on the process's model thread (``sophia.embedder.run_model``), never on the event
loop; optional work (answers' vectors for a label) is skipped while that thread is backed up. A test may
pass ``embed`` (text -> vector): then everything stays in-process.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

import numpy as np

from sophia.cache.verifier import Verifier, default_verifier

#: model calls queued beyond which a request skips the semantic layer (it would wait, not help)
MAX_BACKLOG = 4


class CacheCompute:
    def __init__(self, embed: Callable[[str], Any] | None = None, verifier: Verifier | None = None) -> None:
        self.stand_in = embed
        self._verifier = verifier

    @property
    def verifier(self) -> Verifier:
        """The verifier, loaded at the first semantic lookup (not at start-up: it is the heavy part)."""
        if self._verifier is None:
            self._verifier = default_verifier()
        return self._verifier

    async def embed(self, text: str) -> np.ndarray:
        """The unit MiniLM vector of ``text``, computed on the process's model thread."""
        return (await self.embed_timed(text))[0]

    async def embed_timed(self, text: str) -> tuple[np.ndarray, float]:
        """The vector and the seconds it took to compute (not to wait for the model thread)."""
        if self.stand_in is not None:
            started = perf_counter()
            vector = np.asarray(self.stand_in(text), dtype=np.float32).reshape(-1)
            return vector, perf_counter() - started
        from sophia.embedder import get_encoder, run_model

        vectors, seconds = await run_model(lambda: get_encoder().encode([text]))
        return vectors[0], seconds

    async def embed_answers(self, texts: list[str]) -> np.ndarray | None:
        """Unit vectors of two answers (the comparator's last tier), on the model thread; None while
        that thread is backed up (a label is optional work: it never queues ahead of lookups)."""
        if self.busy():
            return None
        if self.stand_in is not None:
            return np.stack([np.asarray(self.stand_in(t), dtype=np.float32).reshape(-1) for t in texts])
        from sophia.embedder import get_encoder, run_model

        vectors, _ = await run_model(lambda: get_encoder().encode(texts))
        return np.asarray(vectors)

    def busy(self) -> bool:
        """Is the model thread backed up? Then optional semantic work is skipped, not queued."""
        if self.stand_in is not None:
            return False
        from sophia.embedder import model_backlog

        return model_backlog() >= MAX_BACKLOG

    async def scores(
        self, query: str, vector: np.ndarray, texts: list[str], c_emb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[int], float]:
        """The verifier's scores, the cross-encoder's spread between reading orders, the candidates
        it judged (or found the same text) and its compute seconds: settled on the loop when no
        candidate needs the cross-encoder, else computed on the model thread (never on the loop)."""
        verifier = self.verifier
        scores, todo = verifier.plan(query, vector, texts, c_emb)
        spreads = np.zeros(len(texts), dtype=np.float32)
        judged = [i for i in range(len(texts)) if scores[i] >= 1.0]
        spent = 0.0
        if todo:
            pairs = [(query, texts[i]) for i in todo]
            if self.stand_in is not None:  # a test's stand-in encoder: stay in-process
                probabilities, spread = verifier.model.judge(pairs)
            else:
                from sophia.embedder import run_model

                (probabilities, spread), spent = await run_model(verifier.model.judge, pairs)
            scores[todo] = probabilities
            spreads[todo] = spread
            judged += todo
        return scores, spreads, judged, spent
