"""Pair features for the verifier: does a cached question ask the same thing as the new one?

Two kinds, both cheap (tens of microseconds per pair in Python):

* **from the sentence embeddings** of the two texts (all-MiniLM-L6-v2, unit rows): the cosine,
  and the element-wise product and absolute difference (the classic siamese-pair features);
* **from the words**: overlap of words, content words and character trigrams; how rare the words
  are that only one side has (IDF learnt on the training split); numbers, negations and
  question words that differ; and, for the words only one side has, how close their nearest
  word on the other side is in a small static word-vector table (a 64-d projection of MiniLM
  embeddings of single words). "learn Python" vs "learn Java" differs in one rare word whose
  nearest counterpart is merely related, which is exactly what a cosine threshold misses.

Every feature is symmetric in the two texts, so ``f(q, c) == f(c, q)``.
The ``Lexicon`` (IDF table and word vectors) ships inside the verifier's weight file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")
_CAPITALISED = re.compile(r"(?<![.?!]\s)(?<!^)\b[A-Z][a-zA-Z0-9]+")


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _word_set(
    """a an the and or but if then else of to in on at by for with from into onto about as is are was
    were be been being am do does did doing have has had having i me my mine we us our you your he him
    his she her it its they them their this that these those there here so such than too very can could
    should would will shall may might must just also any some all each every more most other own same
    s t d ll m re ve get got getting up out over under again further once only both few nor now"""
)
QUESTION_WORDS = _word_set("what why how when where who whom whose which")
NEGATIONS = _word_set("not no never none nothing nobody neither nor cannot without")
_SUFFIXES = ("ing", "ed", "es", "ly", "s")

#: names of the scalar features, in order (the dense embedding features follow them)
SCALAR_NAMES = (
    "cosine",
    "log_len_min",
    "log_len_max",
    "len_ratio",
    "word_jaccard",
    "content_jaccard",
    "idf_overlap",
    "trigram_jaccard",
    "bigram_jaccard",
    "only_count_min",
    "only_count_max",
    "only_idf_min",
    "only_idf_max",
    "only_idf_top",
    "unmatched_min",
    "unmatched_max",
    "unmatched_idf_max",
    "nearest_sim_min",
    "nearest_sim_mean",
    "unknown_only",
    "numbers_differ",
    "numbers_only",
    "negation_differ",
    "qwords_differ",
    "first_word_same",
    "capitals_only",
    "identical",
)
#: a word whose nearest counterpart is below this cosine counts as unmatched
UNMATCHED_BELOW = 0.6


def stem(word: str) -> str:
    """A deliberately crude suffix strip, so that "learn" matches "learning" and "plans" "plan"."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True, slots=True)
class TextInfo:
    """What the word features need to know about one text (computed once per text)."""

    norm: str
    words: tuple[str, ...]
    stems: frozenset[str]
    content: frozenset[str]  # stems of content words
    numbers: frozenset[str]
    question_words: frozenset[str]
    negations: int
    trigrams: frozenset[str]
    bigrams: frozenset[tuple[str, str]]
    capitals: frozenset[str]


@lru_cache(maxsize=4096)
def analyse(text: str) -> TextInfo:
    lowered = text.lower().replace("n't", " not")
    words = tuple(_WORD.findall(lowered))
    norm = " ".join(words)
    stemmed = [stem(w) for w in words]
    stems = frozenset(stemmed)
    content = frozenset(stem(w) for w in words if w not in STOPWORDS and w not in QUESTION_WORDS)
    padded = f" {norm} "
    return TextInfo(
        norm=norm,
        words=words,
        stems=stems,
        content=content,
        numbers=frozenset(w for w in words if any(ch.isdigit() for ch in w)),
        question_words=frozenset(w for w in words if w in QUESTION_WORDS),
        negations=sum(1 for w in words if w in NEGATIONS),
        trigrams=frozenset(padded[i : i + 3] for i in range(len(padded) - 2)),
        bigrams=frozenset(pairwise(stemmed)),
        capitals=frozenset(m.lower() for m in _CAPITALISED.findall(text.strip())),
    )


class Lexicon:
    """IDF weights and unit word vectors for a vocabulary of stems (unknown stems: max IDF, no vector)."""

    def __init__(self, words: list[str], idf: np.ndarray, vectors: np.ndarray, unknown_idf: float) -> None:
        self.index = {w: i for i, w in enumerate(words)}
        self.idf = idf.astype(np.float32)
        self.vectors = vectors.astype(np.float32)
        self.unknown_idf = float(unknown_idf)
        self.dim = int(vectors.shape[1])

    def weight(self, word: str) -> float:
        i = self.index.get(word)
        return self.unknown_idf if i is None else float(self.idf[i])

    def rows(self, words: list[str]) -> np.ndarray:
        """Vectors of the known words among ``words`` (unknown ones are left out)."""
        idx = [i for i in (self.index.get(w) for w in words) if i is not None]
        return self.vectors[idx]


def guard(q: TextInfo, c: TextInfo) -> str | None:
    """Why a neighbour must not be served whatever the model says, or None.

    A cache answers for the user, so some differences are never worth the risk even where the
    QQP annotators were lenient: a number or year that differs ("Q3 2024" vs "Q3 2025"), or a
    name on one side that the other side does not mention ("Sunday" vs "Monday", "Python" vs
    "Java"); names are capitalised words after the first, matched case-insensitively by stem.
    """
    if q.numbers != c.numbers:
        return "numbers differ"
    if any(stem(w) not in c.stems for w in q.capitals) or any(stem(w) not in q.stems for w in c.capitals):
        return "names differ"
    return None


def _jaccard(a: frozenset, b: frozenset) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _side(only: list[str], other: list[str], lex: Lexicon) -> tuple[float, int, float, list[float], int]:
    """For the words one side alone has: IDF mass, unmatched count, top unmatched IDF, nearest sims."""
    idf_mass = sum(lex.weight(w) for w in only)
    unknown = sum(1 for w in only if w not in lex.index)
    other_rows = lex.rows(other)
    nearest: list[float] = []
    unmatched, unmatched_idf = 0, 0.0
    for w in only:
        i = lex.index.get(w)
        best = float((other_rows @ lex.vectors[i]).max()) if i is not None and len(other_rows) else 0.0
        nearest.append(best)
        if best < UNMATCHED_BELOW:
            unmatched += 1
            unmatched_idf = max(unmatched_idf, lex.weight(w))
    return idf_mass, unmatched, unmatched_idf, nearest, unknown


def scalar_features(q: TextInfo, c: TextInfo, cosine: float, lex: Lexicon) -> list[float]:
    """The scalar features of one pair, in the order of ``SCALAR_NAMES``."""
    lq, lc = len(q.words), len(c.words)
    q_only, c_only = sorted(q.content - c.content), sorted(c.content - q.content)
    shared = q.content & c.content
    q_mass, q_unm, q_unm_idf, q_near, q_unknown = _side(q_only, sorted(c.content), lex)
    c_mass, c_unm, c_unm_idf, c_near, c_unknown = _side(c_only, sorted(q.content), lex)
    shared_mass = sum(lex.weight(w) for w in shared)
    total_mass = shared_mass + q_mass + c_mass
    near = q_near + c_near
    top_only = max((lex.weight(w) for w in q_only + c_only), default=0.0)
    return [
        cosine,
        float(np.log1p(min(lq, lc))),
        float(np.log1p(max(lq, lc))),
        min(lq, lc) / max(lq, lc, 1),
        _jaccard(q.stems, c.stems),
        _jaccard(q.content, c.content),
        shared_mass / total_mass if total_mass else 1.0,
        _jaccard(q.trigrams, c.trigrams),
        _jaccard(q.bigrams, c.bigrams),
        float(min(len(q_only), len(c_only))),
        float(max(len(q_only), len(c_only))),
        min(q_mass, c_mass),
        max(q_mass, c_mass),
        top_only,
        float(min(q_unm, c_unm)),
        float(max(q_unm, c_unm)),
        max(q_unm_idf, c_unm_idf),
        min(near) if near else 1.0,
        sum(near) / len(near) if near else 1.0,
        float(q_unknown + c_unknown),
        float(bool(q.numbers or c.numbers) and q.numbers != c.numbers),
        float(len(q.numbers ^ c.numbers)),
        float((q.negations > 0) != (c.negations > 0)),
        float(q.question_words != c.question_words),
        float(bool(q.words) and bool(c.words) and q.words[0] == c.words[0]),
        float(len(q.capitals ^ c.capitals)),
        float(q.norm == c.norm),
    ]


def diff_vectors(q: TextInfo, c: TextInfo, lex: Lexicon) -> np.ndarray:
    """Symmetric features of the words that differ: |mean(q-only) - mean(c-only)| and their product."""
    q_rows = lex.rows(sorted(q.content - c.content))
    c_rows = lex.rows(sorted(c.content - q.content))
    mq = q_rows.mean(axis=0) if len(q_rows) else np.zeros(lex.dim, np.float32)
    mc = c_rows.mean(axis=0) if len(c_rows) else np.zeros(lex.dim, np.float32)
    return np.concatenate([np.abs(mq - mc), mq * mc])


def pair_matrix(
    queries: list[str],
    candidates: list[str],
    q_emb: np.ndarray,
    c_emb: np.ndarray,
    lex: Lexicon,
) -> tuple[np.ndarray, np.ndarray]:
    """Scalar features (n, len(SCALAR_NAMES)) and dense features (n, 2*384 + 2*lex.dim) of n pairs."""
    n = len(queries)
    scalars = np.empty((n, len(SCALAR_NAMES)), dtype=np.float32)
    words = np.empty((n, 2 * lex.dim), dtype=np.float32)
    cos = np.einsum("ij,ij->i", q_emb, c_emb)
    for i in range(n):
        q, c = analyse(queries[i]), analyse(candidates[i])
        scalars[i] = scalar_features(q, c, float(cos[i]), lex)
        words[i] = diff_vectors(q, c, lex)
    dense = np.concatenate([q_emb * c_emb, np.abs(q_emb - c_emb), words], axis=1)
    return scalars, dense
