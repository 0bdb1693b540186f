"""GPTCache on the benchmark's protocol, run by ``run.py`` with the peer's own Python.

    benchmarks/.peers/gptcache/bin/python benchmarks/cache/peer_gptcache.py WORK.npz OUT.json

GPTCache 0.1.44 as its similar-match examples set it up: SQLite scalar store, faiss vector store,
``SearchDistanceEvaluation`` (its distance-based similarity evaluation, max_distance 4.0) and
``Config(similarity_threshold=...)`` (0.8 is its default), and room for every entry (its data
manager's default ``max_size`` of 1,000 would evict most of the split). It is given the same all-MiniLM-L6-v2
vectors as Sophia (``embedding_func`` looks them up), so the comparison is about what each cache
does with a neighbour, not about the embedding model. Its answer for an entry is the entry's
question, so the parent can score every hit with the same rule as Sophia's.

WORK.npz holds ``a_texts``, ``b_texts`` (pairs in order), ``vectors`` and ``texts`` (every text
once) and ``thresholds_<mode>``; OUT.json gets, per mode and threshold, the index of the entry each
lookup returned (null for a miss) and the lookup times.
"""

from __future__ import annotations

import atexit
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gptcache import Cache, Config
from gptcache.adapter.api import get, put
from gptcache.manager import CacheBase, VectorBase, get_data_manager
from gptcache.processor.pre import get_prompt
from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation


def open_cache(folder: Path, vector_of: dict[str, np.ndarray], threshold: float) -> Cache:
    cache = Cache()
    cache.init(
        pre_embedding_func=get_prompt,
        embedding_func=lambda text, **_: vector_of[text],
        data_manager=get_data_manager(
            CacheBase("sqlite", sql_url=f"sqlite:///{folder / 'gptcache.db'}"),
            VectorBase("faiss", dimension=384, index_path=str(folder / "faiss.index"), top_k=1),
            max_size=10_000_000,  # its default (1,000, LRU) would evict most of the split
        ),
        similarity_evaluation=SearchDistanceEvaluation(),
        config=Config(similarity_threshold=threshold),
    )
    return cache


def new_folder() -> Path:
    # GPTCache writes its faiss index at interpreter exit: the folders go after that (atexit is LIFO)
    folder = Path(tempfile.mkdtemp(prefix="gptcache-bench-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def standard(a_texts: list[str], b_texts: list[str], vector_of: dict, threshold: float) -> dict:
    cache = open_cache(new_folder(), vector_of, threshold)
    unique = list(dict.fromkeys(a_texts))
    cache.import_data(questions=unique, answers=unique)
    hits, times = [], []
    for b in b_texts:
        started = time.perf_counter()
        found = get(b, cache_obj=cache)
        times.append(time.perf_counter() - started)
        hits.append(found)
    return {"hits": hits, "lookup_s": times}


def gateway(a_texts: list[str], b_texts: list[str], vector_of: dict, threshold: float) -> dict:
    """Every question is looked up first and stored on a miss: the a's, then the b's."""
    cache = open_cache(new_folder(), vector_of, threshold)
    hits, times = [], []
    for text in [*a_texts, *b_texts]:
        started = time.perf_counter()
        found = get(text, cache_obj=cache)
        times.append(time.perf_counter() - started)
        hits.append(found)
        if found is None:
            put(text, text, cache_obj=cache)
    return {"hits": hits, "lookup_s": times}


def main() -> int:
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    data = np.load(work, allow_pickle=False)
    texts = [str(t) for t in data["texts"]]
    vector_of = dict(zip(texts, data["vectors"].astype(np.float32), strict=True))
    a_texts = [str(t) for t in data["a_texts"]]
    b_texts = [str(t) for t in data["b_texts"]]
    modes = [str(m) for m in data["modes"]]
    result: dict[str, dict[str, dict]] = {}
    for mode in modes:
        run = standard if mode == "standard" else gateway
        result[mode] = {}
        for threshold in data[f"thresholds_{mode}"].tolist():
            started = time.perf_counter()
            result[mode][f"{threshold:g}"] = run(a_texts, b_texts, vector_of, float(threshold))
            print(f"  gptcache {mode} {threshold:g}: {time.perf_counter() - started:.0f}s", file=sys.stderr)
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
