#!/usr/bin/env python3
"""Semantic-cache quality and speed: Sophia's cache and GPTCache on the QQP pairs, in one run.

    .venv/bin/python benchmarks/cache/run.py [--split test] [--skip-peer] [--latency-entries 100000]

Protocol (shared/data/README.md): *standard* mode loads every ``a`` of the split into an empty
cache and looks up every ``b``; *gateway* mode looks every question up first and stores it on a
miss (the ``a``s, then the ``b``s). A hit is correct when it returns the pair's own ``a`` of a
duplicate pair, or a text that is the same question as the query (``oracle.norm``: identical after
lower-casing, removing punctuation and collapsing whitespace). Both caches get the same
all-MiniLM-L6-v2 vectors (computed once, cached in benchmarks/.work/), so the comparison is about
what each does with the neighbours. Sophia runs through its public ``ResponseCache`` API on the
embedded (SQLite) store; GPTCache in its own venv (benchmarks/.peers/gptcache, see README.md).

Latency: a ``ResponseCache`` filled with ``--latency-entries`` entries (dev questions), then
lookups of test questions: the whole lookup with the embedding, the index search alone, the
verifier alone; and the exact numpy scan against the inverted-file index at that size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from oracle import norm  # benchmarks/cache/oracle.py: the script's own folder is on sys.path

from sophia.cache import CacheContext, CacheSettings, ResponseCache
from sophia.cache.observations import Observation
from sophia.cache.store_local import LocalStore
from sophia.cache.training.dataset import Embeddings, Pair, load_pairs
from sophia.cache.training.dataset import normalise as closure_key  # the text key of ``components``
from sophia.cache.training.pairs import components
from sophia.cache.verifier import default_verifier
from sophia.settings.cache import ModelCacheSettings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORK = ROOT / "benchmarks" / ".work" / "cache"
DATA = ROOT.parent / "shared" / "data" / "cache" / "qqp_pairs.jsonl.gz"
PEER = ROOT / "benchmarks" / ".peers" / "gptcache" / "bin" / "python"
SOPHIA_THRESHOLDS = (0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
#: GPTCache's similarity_threshold (0.8, its default, is cosine >= 0.6 here; 0.9 is 0.8; 0.95 is 0.9)
GPTCACHE_THRESHOLDS = {"standard": (0.8, 0.9, 0.95, 0.975), "gateway": (0.8, 0.95)}
MODEL = "bench/model"


def request(text: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}]}


async def open_cache(folder: Path, threshold: float, budget: float | None = None) -> ResponseCache:
    # semantic_sample=1: every question is looked up (the quality benchmark measures the semantic layer)
    models = {MODEL: ModelCacheSettings(max_error_rate=budget)} if budget is not None else {}
    settings = CacheSettings(
        threshold=threshold, max_entries=10_000_000, ttl=None, semantic_sample=1, models=models
    )
    cache = ResponseCache(settings, LocalStore(f"sqlite:///{folder / 'cache.db'}"))
    await cache.start()
    return cache


async def ask(cache: ResponseCache, text: str, vector: np.ndarray) -> tuple[str | None, float | None]:
    """Look ``text`` up; the hit's question (each entry's body is its question) and verifier score."""
    ctx = CacheContext(model=MODEL, tenant="bench", embedding=vector)
    hit = await cache.lookup(request(text), ctx)
    if hit is None:
        return None, None
    return hit.body.decode(), 1.0 if hit.score is None else hit.score


async def put(cache: ResponseCache, text: str, vector: np.ndarray) -> None:
    ctx = CacheContext(model=MODEL, tenant="bench", embedding=vector)
    await cache.store(request(text), ctx, text.encode(), 10, 100, "bench/upstream", 0.001)


async def sophia_standard(pairs: list[Pair], emb: Embeddings) -> dict[str, Any]:
    """One pass with threshold 0: every b's best-scored neighbour and its score (any threshold after)."""
    with tempfile.TemporaryDirectory() as folder:
        cache = await open_cache(Path(folder), 0.0)
        for text in dict.fromkeys(p.a for p in pairs):
            await put(cache, text, emb.of([text])[0])
        hits, scores, times = [], [], []
        for p in pairs:
            started = time.perf_counter()
            found, score = await ask(cache, p.b, emb.of([p.b])[0])
            times.append(time.perf_counter() - started)
            hits.append(found)
            scores.append(score)
        await cache.close()
    return {"hits": hits, "scores": scores, "lookup_s": times}


async def sophia_gateway(pairs: list[Pair], emb: Embeddings, threshold: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        cache = await open_cache(Path(folder), threshold)
        hits = []
        for text in [*(p.a for p in pairs), *(p.b for p in pairs)]:
            vector = emb.of([text])[0]
            found, _ = await ask(cache, text, vector)
            hits.append(found)
            if found is None:
                await put(cache, text, vector)
        await cache.close()
    return {"hits": hits}


def score_standard(pairs: list[Pair], hits: list[str | None]) -> dict[str, float]:
    """The README's rule; plus, as context only, precision when hits on a labelled duplicate count too."""
    correct = [
        h is not None and (norm(h) == norm(p.b) or (p.duplicate and norm(h) == norm(p.a)))
        for p, h in zip(pairs, hits, strict=True)
    ]
    same = _duplicate_groups(pairs)
    linked = [
        ok or (h is not None and same.get(closure_key(h), -1) == same[closure_key(p.b)])
        for ok, p, h in zip(correct, pairs, hits, strict=True)
    ]
    n_hits = sum(h is not None for h in hits)
    dups = sum(p.duplicate for p in pairs)
    return {
        "hit_rate": n_hits / len(pairs),
        "precision": sum(correct) / max(n_hits, 1),
        "recall": sum(c and p.duplicate for c, p in zip(correct, pairs, strict=True)) / dups,
        "hits": n_hits,
        "false_hits": n_hits - sum(correct),
        "precision_label_closure": sum(linked) / max(n_hits, 1),
    }


_GROUPS: dict[int, dict[str, int]] = {}


def _duplicate_groups(pairs: list[Pair]) -> dict[str, int]:
    """Texts linked by the split's duplicate labels, directly or through a chain (a~b, b~c: a~c)."""
    key = id(pairs)
    if key not in _GROUPS:
        _GROUPS[key] = components(pairs, duplicates_only=True)
    return _GROUPS[key]


def score_gateway(pairs: list[Pair], hits: list[str | None]) -> dict[str, float]:
    """Lookups of the a's (then b's); an a's hit is correct only on the same question."""
    n = len(pairs)
    a_hits, b_hits = hits[:n], hits[n:]
    a_correct = [h is not None and norm(h) == norm(p.a) for p, h in zip(pairs, a_hits, strict=True)]
    same = _duplicate_groups(pairs)
    a_linked = [
        ok or (h is not None and same.get(closure_key(h), -1) == same[closure_key(p.a)])
        for ok, p, h in zip(a_correct, pairs, a_hits, strict=True)
    ]
    b = score_standard(pairs, b_hits)
    n_hits = sum(h is not None for h in hits)
    good = sum(a_correct) + b["hits"] - b["false_hits"]
    linked = sum(a_linked) + b["precision_label_closure"] * b["hits"]
    return {
        "hit_rate": n_hits / (2 * n),
        "precision": good / max(n_hits, 1),
        "recall": b["recall"],
        "hits": n_hits,
        "false_hits": n_hits - good,
        "a_false_hits": sum(h is not None for h in a_hits) - sum(a_correct),
        "precision_label_closure": linked / max(n_hits, 1),
    }


def at_threshold(hits: list[str | None], scores: list[float | None], t: float) -> list[str | None]:
    return [h if s is not None and s >= t else None for h, s in zip(hits, scores, strict=True)]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def run_peer(pairs: list[Pair], emb: Embeddings, modes: list[str]) -> dict[str, Any] | None:
    if not PEER.exists():
        print(f"GPTCache venv missing ({PEER}): see benchmarks/cache/README.md", file=sys.stderr)
        return None
    texts = sorted({t for p in pairs for t in (p.a, p.b)})
    with tempfile.TemporaryDirectory() as folder:
        work, out = Path(folder) / "work.npz", Path(folder) / "out.json"
        np.savez(
            work,
            texts=np.array(texts),
            vectors=emb.of(texts),
            a_texts=np.array([p.a for p in pairs]),
            b_texts=np.array([p.b for p in pairs]),
            thresholds_standard=np.array(GPTCACHE_THRESHOLDS["standard"]),
            thresholds_gateway=np.array(GPTCACHE_THRESHOLDS["gateway"]),
            modes=np.array(modes),
        )
        try:
            subprocess.run([str(PEER), str(HERE / "peer_gptcache.py"), str(work), str(out)], check=True)
        except subprocess.CalledProcessError as exc:
            print(f"GPTCache run failed ({exc}); its figures are left out", file=sys.stderr)
            return None
        return json.loads(out.read_text())


def peer_version() -> str:
    try:
        out = subprocess.run(
            [str(PEER), "-c", "import importlib.metadata as m; print(m.version('gptcache'))"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def warm_rows(n: int, seed: int = 11) -> list[Observation]:
    """``n`` labelled rows for the alias (the verifier's calibration, noisy), so that a ``--budget`` run
    decides with the learned rule on a full-size model, as a warm production alias does."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-6, 8, n)
    wrong = rng.random(n) < 1 / (1 + np.exp(z - 1))
    return [
        Observation(MODEL, "ns", "e", "shadow", 0.0, float(a), 0.85, 4.0, 0.2, int(b), origin="bench")
        for a, b in zip(z, wrong, strict=True)
    ]


async def latency(
    entries: list[str], emb: Embeddings, queries: list[str], budget: float | None = None
) -> dict[str, Any]:
    """Lookup times with ``len(entries)`` entries in one namespace (the embedding included)."""
    from sophia.cache.index import FlatIndex, IvfIndex

    vectors = emb.of(entries)
    verifier = default_verifier()
    with tempfile.TemporaryDirectory() as folder:
        cache = await open_cache(Path(folder), verifier.threshold, budget)
        if budget is not None:
            for row in warm_rows(cache.settings.observations_kept):
                cache.learner.keep(row)
            await cache.learner.refit()
        started = time.perf_counter()
        for text, vector in zip(entries, vectors, strict=True):
            await put(cache, text, vector)
        fill_s = time.perf_counter() - started
        namespace = next(iter(cache.table.by_id.values())).namespace
        index_kind = type(cache.table.vectors._indexes[namespace]).__name__
        whole, search, verify, embed = [], [], [], []
        ran = 0  # lookups in which the cross-encoder ran (the rest stop at the first stage)
        q_vectors = emb.of(queries)
        for text, q in zip(queries, q_vectors, strict=True):
            t0 = time.perf_counter()
            await cache.lookup(request(text), CacheContext(model=MODEL, tenant="bench"))
            whole.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await cache.embed(text)
            embed.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            found = cache.table.nearest(namespace, q, cache.settings.candidates)
            search.append(time.perf_counter() - t0)
            texts = [e.text for e, _ in found]
            c_emb = np.stack([cache.table.vector(e) for e, _ in found])
            t0 = time.perf_counter()
            verifier.scores(text, q, texts, c_emb)
            verify.append(time.perf_counter() - t0)
            ran += bool(verifier.plan(text, q, texts, c_emb)[1])
        await cache.close()
    flat = FlatIndex()
    for label, vector in enumerate(vectors):
        flat.add(label, vector)
    ivf = IvfIndex.build(np.arange(len(vectors)), vectors)
    flat_t, ivf_t, agree, close, close_agree = [], [], 0, 0, 0
    for q in q_vectors:
        t0 = time.perf_counter()
        exact, sims = flat.search(q, 4)
        flat_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        approx, _ = ivf.search(q, 4)
        ivf_t.append(time.perf_counter() - t0)
        same = int(len(approx) > 0 and approx[0] == exact[0])
        agree += same
        if sims[0] >= 0.8:  # a neighbour close enough to be served: what the cache needs found
            close += 1
            close_agree += same
    return {
        "entries": len(entries),
        "queries": len(queries),
        "index": index_kind,
        "fill_s": round(fill_s, 1),
        "lookup_with_embedding": percentiles(whole),
        "embedding": percentiles(embed),
        "index_search": percentiles(search),
        "verifier_4_candidates": percentiles(verify),
        "verifier_ran_model": round(ran / len(queries), 3),
        "flat_numpy_search": percentiles(flat_t),
        "ivf_search": percentiles(ivf_t),
        "ivf_top1_recall": agree / len(queries),
        "ivf_top1_recall_cos_0_8": close_agree / close if close else None,
    }


def sophia_points(pairs: list[Pair], std: dict[str, Any], thresholds: list[float]) -> list[dict[str, Any]]:
    return [
        {"threshold": t, **score_standard(pairs, at_threshold(std["hits"], std["scores"], t))}
        for t in thresholds
    ]


def table(rows: list[dict[str, Any]], title: str) -> str:
    lines = [f"### {title}", "", "| cache | operating point | precision | recall | hit rate | false hits |"]
    lines.append("|---|---|---|---|---|---|")
    for r in rows:
        lines.append(
            f"| {r['cache']} | {r['point']} | {r['precision']:.1%} | {r['recall']:.1%} | "
            f"{r['hit_rate']:.1%} | {r['false_hits']:,} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    pairs = load_pairs(args.data, split=args.split)
    texts = sorted({t for p in pairs for t in (p.a, p.b)})
    emb = Embeddings.compute(texts, WORK)
    verifier = default_verifier()
    default_t = verifier.threshold
    thresholds = sorted({*SOPHIA_THRESHOLDS, default_t})
    modes = args.modes.split(",")
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}, {__import__('os').cpu_count()} cores",
        "split": args.split,
        "pairs": len(pairs),
        "duplicates": sum(p.duplicate for p in pairs),
        "default_threshold": default_t,
        "verifier": {
            k: verifier.info.get(k)
            for k in ("layers", "frozen", "floor", "judged", "epochs", "target_precision", "target_gateway")
        },
        "gptcache_version": peer_version(),
    }
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    if "standard" in modes:
        print("sophia standard …", file=sys.stderr)
        std = await sophia_standard(pairs, emb)
        result["sophia_standard"] = sophia_points(pairs, std, thresholds)
        result["sophia_standard_lookup"] = percentiles(std["lookup_s"])
        rows["standard"] += [
            {
                "cache": "Sophia",
                "point": f"{p['threshold']:g}" + (" (default)" if p["threshold"] == default_t else ""),
                **p,
            }
            for p in result["sophia_standard"]
        ]
    if "gateway" in modes:
        result["sophia_gateway"] = []
        for t in sorted({default_t, *args.gateway_thresholds}):
            print(f"sophia gateway {t:g} …", file=sys.stderr)
            g = await sophia_gateway(pairs, emb, t)
            point = {"threshold": t, **score_gateway(pairs, g["hits"])}
            result["sophia_gateway"].append(point)
            rows["gateway"].append(
                {"cache": "Sophia", "point": f"{t:g}" + (" (default)" if t == default_t else ""), **point}
            )
    if not args.skip_peer:
        print("gptcache …", file=sys.stderr)
        peer = run_peer(pairs, emb, modes)
        if peer is not None:
            for mode in modes:
                score = score_standard if mode == "standard" else score_gateway
                points = []
                for t, out in peer[mode].items():
                    point = {
                        "similarity_threshold": float(t),
                        **score(pairs, out["hits"]),
                        **percentiles(out["lookup_s"]),
                    }
                    points.append(point)
                    label = f"similarity_threshold {t}" + (" (default)" if float(t) == 0.8 else "")
                    rows[mode].append({"cache": "GPTCache", "point": label, **point})
                result[f"gptcache_{mode}"] = points
    if args.latency_entries:
        print(f"latency at {args.latency_entries:,} entries …", file=sys.stderr)
        dev = load_pairs(args.data, split="dev")
        dev_texts = sorted({t for p in dev for t in (p.a, p.b)})
        dev_emb = Embeddings.compute(dev_texts, WORK)
        rng = np.random.default_rng(7)
        chosen = sorted(
            rng.choice(len(dev_texts), size=min(args.latency_entries, len(dev_texts)), replace=False)
        )
        entries = [dev_texts[i] for i in chosen]
        queries = [p.b for p in pairs[: args.latency_queries]]
        merged = Embeddings([*entries, *queries], np.concatenate([dev_emb.of(entries), emb.of(queries)]))
        result["latency"] = await latency(entries, merged, queries, args.budget)
        result["latency"]["budget"] = args.budget
    result["tables"] = {m: table(r, f"{args.split} split, {m} mode") for m, r in rows.items() if r}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--split", default="test", choices=("test", "dev"))
    parser.add_argument("--modes", default="standard,gateway")
    parser.add_argument("--gateway-thresholds", type=float, nargs="*", default=[0.5, 0.85, 0.95])
    parser.add_argument("--skip-peer", action="store_true", help="do not run GPTCache")
    parser.add_argument("--latency-entries", type=int, default=100_000, help="0 to skip the latency part")
    parser.add_argument("--latency-queries", type=int, default=1000)
    parser.add_argument(
        "--budget", type=float, default=None, help="latency with a wrong-answer budget (a warm alias model)"
    )
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default: results/DATE.json)")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    out = args.out or HERE / "results" / f"{result['date']}-{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for text in result["tables"].values():
        print(text + "\n")
    if "latency" in result:
        print(json.dumps(result["latency"], indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
