"""The in-memory side of a store: bm25s over the chunks' texts, and the filter postings.

Both stores build one ``ChunkIndex`` from their chunk table (sorted by chunk id, so positions and
ties are the same everywhere); the embedded store keeps its vector matrix in the same order. The
full-text half of a search is therefore the same code on either store, and filters become a
boolean mask computed from postings (key, value) -> positions instead of a scan of every chunk.

A chunk's tokens are kept as token-id arrays between rebuilds, so a change re-tokenises only the
chunks it touches; bm25s itself is rebuilt from the ids (it has no incremental update).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sophia.knowledge.filters import Filters, chunk_fields, date_key

_TOKEN = re.compile(r"\w\w+")
_SUFFIXES = ("ations", "ation", "ing", "ies", "ed", "es", "ly", "ate", "s", "e")
_STEMS: dict[str, str] = {}


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_STOP = _stopwords()


def stem(word: str) -> str:
    """A light suffix stripper (price / prices / pricing / priced -> pric), memoised per word."""
    out = _STEMS.get(word)
    if out is None:
        out = word
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                out = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
                break
        if len(_STEMS) < 500_000:
            _STEMS[word] = out
    return out


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of two characters or more, English stop words out, stemmed."""
    return [stem(w) for w in _TOKEN.findall(text.lower()) if w not in _STOP]


@dataclass(frozen=True)
class Entry:
    """One chunk as the index holds it."""

    chunk_id: str
    tokens: np.ndarray  # token ids in the index's vocabulary (int32)
    fields: Mapping[str, Sequence[str]]
    day: str


class Vocabulary:
    """Token -> id; grows only, so an entry's token ids stay valid across rebuilds."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def encode(self, text: str) -> np.ndarray:
        ids = self.ids
        return np.fromiter((ids.setdefault(t, len(ids)) for t in tokenize(text)), dtype=np.int32)

    def lookup(self, text: str) -> list[int]:
        return [i for t in tokenize(text) if (i := self.ids.get(t)) is not None]


def make_entry(
    vocab: Vocabulary,
    chunk_id: str,
    text: str,
    source: str,
    kind: str,
    document_id: str,
    metadata: Mapping[str, Any],
) -> Entry:
    fields = chunk_fields(source, kind, document_id, metadata)
    return Entry(chunk_id, vocab.encode(text), fields, date_key(metadata.get("date")))


class ChunkIndex:
    """bm25s and the filter postings over a fixed list of entries (sorted by chunk id)."""

    def __init__(self, entries: Iterable[Entry], vocab: Vocabulary) -> None:
        self.entries = sorted(entries, key=lambda e: e.chunk_id)
        self.vocab = vocab
        self.ids = [e.chunk_id for e in self.entries]
        self.position = {cid: n for n, cid in enumerate(self.ids)}
        self.days = np.array([e.day for e in self.entries], dtype="<U10")
        postings: dict[tuple[str, str], list[int]] = {}
        for n, entry in enumerate(self.entries):
            for key, values in entry.fields.items():
                for value in values:
                    postings.setdefault((key, value), []).append(n)
        self.postings = {k: np.asarray(v, dtype=np.int64) for k, v in postings.items()}
        self.vocab_size = len(vocab.ids)  # tokens added later are not in this index
        self.vectors: np.ndarray | None = None  # the embedded store's matrix, row n = position n
        self.bm25 = self._bm25()

    def __len__(self) -> int:
        return len(self.ids)

    def _bm25(self) -> Any:
        if not any(len(e.tokens) for e in self.entries):
            return None  # nothing to match (bm25s cannot index a corpus without tokens)
        import bm25s

        retriever = bm25s.BM25()
        vocab = {token: n for token, n in self.vocab.ids.items() if n < self.vocab_size}
        corpus = [e.tokens.tolist() for e in self.entries]
        retriever.index((corpus, vocab), create_empty_token=False, show_progress=False)
        return retriever

    def mask(self, filters: Filters) -> np.ndarray | None:
        """Which positions pass ``filters`` (None: all of them)."""
        if not filters:
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        for key, values in filters.equals:
            allowed = np.zeros(len(self.ids), dtype=bool)
            for value in values:
                hits = self.postings.get((key, value))
                if hits is not None:
                    allowed[hits] = True
            keep &= allowed
        if filters.date_from is not None:
            keep &= (self.days != "") & (self.days >= filters.date_from)
        if filters.date_to is not None:
            keep &= (self.days != "") & (self.days <= filters.date_to)
        return keep

    def text_search(self, query: str, mask: np.ndarray | None, n: int) -> list[tuple[str, float]]:
        """The ``n`` best chunks by BM25 among those ``mask`` keeps (score > 0), best first."""
        if self.bm25 is None:
            return []
        ids = sorted({i for i in self.vocab.lookup(query) if i < self.vocab_size})
        if not ids:
            return []
        scores = np.asarray(self.bm25.get_scores_from_ids(ids), dtype=np.float32)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        return top(scores, n, self.ids)


def top(scores: np.ndarray, n: int, ids: Sequence[str], *, floor: float = 0.0) -> list[tuple[str, float]]:
    """The ``n`` highest scores above ``floor``, best first, ties by position (= chunk id order)."""
    candidates = np.flatnonzero(scores > floor)
    if len(candidates) > n:
        # a partition would cut ties arbitrarily: keep everything tied with the n-th score
        threshold = np.partition(scores[candidates], len(candidates) - n)[len(candidates) - n]
        candidates = candidates[scores[candidates] >= threshold]
    order = np.lexsort((candidates, -scores[candidates]))[:n]
    return [(ids[int(candidates[k])], float(scores[candidates[k]])) for k in order]
