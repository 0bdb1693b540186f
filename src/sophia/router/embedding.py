"""Question embeddings for training and evaluation: all-MiniLM-L6-v2, optionally cached on disk.

Serving never calls this: the gateway embeds one question per request with the encoder it shares
with the semantic cache. Training embeds thousands at once, so a disk cache keyed by a hash of
each text (``cache_dir``) makes re-training and re-evaluation cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

#: texts -> unit float32 rows, (len(texts), dim)
Embed = Callable[[Sequence[str]], np.ndarray]

ENCODER = "all-MiniLM-L6-v2"
BATCH = 256
_CACHE_FILE = "minilm_questions.npz"


def minilm_embed(texts: Sequence[str]) -> np.ndarray:
    """Embed with Sophia's numpy MiniLM (loaded once per process)."""
    from sophia.embedder.minilm import get_minilm

    encoder = get_minilm()
    parts = [encoder.encode(list(texts[i : i + BATCH])) for i in range(0, len(texts), BATCH)]
    return np.concatenate(parts) if parts else np.zeros((0, encoder.dim), dtype=np.float32)


def _key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


def cached(embed: Embed, cache_dir: Path) -> Embed:
    """``embed`` with a disk cache in ``cache_dir`` (one ``.npz`` of hashes and vectors)."""

    def run(texts: Sequence[str]) -> np.ndarray:
        store = cache_dir / _CACHE_FILE
        known: dict[bytes, np.ndarray] = {}
        if store.exists():
            with np.load(store, allow_pickle=False) as saved:
                known = dict(zip((bytes(k) for k in saved["keys"]), saved["vectors"], strict=True))
        keys = [_key(t) for t in texts]
        todo = dict(sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items()))
        if todo:
            vectors = embed(list(todo.values()))
            known.update(zip(todo, vectors, strict=True))
            cache_dir.mkdir(parents=True, exist_ok=True)
            ordered = sorted(known)
            tmp = store.with_suffix(".tmp.npz")
            np.savez(tmp, keys=np.array(ordered, dtype="S20"), vectors=np.stack([known[k] for k in ordered]))
            tmp.replace(store)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([known[k] for k in keys]).astype(np.float32)

    return run
