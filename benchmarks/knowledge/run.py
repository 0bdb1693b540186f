"""The knowledge room's benchmarks: search latency at scale, ingest throughput, transcript search quality.

    .venv/bin/python benchmarks/knowledge/run.py                       # all three, full size (slow: see README)
    .venv/bin/python benchmarks/knowledge/run.py --chunks 10000 --ingest-chunks 64 --demo-scale 0.05   # smoke
    .venv/bin/python benchmarks/knowledge/run.py --parts quality

* latency: N synthetic chunks (varied sales-call sentences, account/date metadata) in the embedded
  store; p50/p95/p99 of ``search`` per mode, with and without filters, plus the index build and
  the reload after a restart. Chunk embeddings are computed once and cached in .work/ (git-ignored).
* ingest: the same documents ingested with batch sizes 1, 16, 32, 64 (the real MiniLM, no cache):
  chunks per second end to end, and each batch size against batch 1.
* quality: the demo warehouse's transcripts (``sophia.warehouse.demo``), 60+ questions built from
  its ``call_objections`` ground truth; hit@5 (a top-5 hit whose turn range holds a gold turn) and
  MRR for hybrid, text-only and vector-only in one run.

Writes results/<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from quality import quality  # noqa: E402
from synthetic import synthetic_documents  # noqa: E402

from sophia.embedder import describe, get_encoder  # noqa: E402
from sophia.knowledge.knowledge import Knowledge  # noqa: E402
from sophia.settings import KnowledgeSettings  # noqa: E402

WORK = ROOT / ".work"
QUERIES = [
    "what did they say about pricing",
    "objections about AI talking to residents",
    "integration with Yardi guest cards",
    "security review and SOC 2 report",
    "competitor quote was lower",
    "when can we start the rollout",
    "maintenance requests after hours",
    "discount for signing this quarter",
    "tour bookings went up",
    "board is skeptical",
]


class CachedEncoder:
    """The real MiniLM behind a disk cache keyed by the text's SHA-1 (chunk vectors cost minutes)."""

    def __init__(self, path: Path, *, borrow: bool = False) -> None:
        self.path = path
        self.inner = get_encoder()
        self.vectors: dict[str, np.ndarray] = {}
        self.misses = 0
        self.borrow = borrow  # missing vectors: a real one plus noise (latency only; never saved)
        self.borrowed = 0
        if path.exists():
            data = np.load(path)
            self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = [(k, t) for k, t in zip(keys, texts, strict=True) if k not in self.vectors]
        if missing and self.borrow and len(self.vectors) >= 1000:
            pool = np.stack(list(self.vectors.values())[:20_000])
            rng = np.random.default_rng(len(self.vectors) + self.borrowed)
            picked = pool[rng.integers(0, len(pool), len(missing))]
            noisy = picked + rng.normal(0, 0.05, picked.shape).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            self.borrowed += len(missing)
            found = [self.vectors.get(k) for k in keys]
            fresh = iter(noisy)
            return np.stack([v if v is not None else next(fresh) for v in found])
        if missing:
            self.misses += len(missing)
            fresh = self.inner.encode([t for _, t in missing])
            self.vectors.update({k: v for (k, _), v in zip(missing, fresh, strict=True)})
        return np.stack([self.vectors[k] for k in keys])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.vectors), dtype="<U40")
        np.savez(self.path, keys=keys, vectors=np.stack(list(self.vectors.values())))


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1000
    return {f"p{q}": round(float(np.percentile(ms, q)), 2) for q in (50, 95, 99)} | {"n": len(samples)}


async def latency(
    chunks: int, rounds: int, *, prepare_only: bool = False, borrow: bool = False
) -> dict[str, Any]:
    cache = CachedEncoder(
        WORK / "synthetic.npz", borrow=borrow
    )  # keyed by text: a larger run reuses a smaller one
    docs = synthetic_documents(chunks)
    with tempfile.TemporaryDirectory() as tmp:
        settings = KnowledgeSettings()
        kb = await Knowledge.open(settings, Path(tmp), encoder=cache)
        ingest_s = 0.0
        for k in range(0, len(docs), 5000):
            started = time.perf_counter()
            await kb.ingest(docs[k : k + 5000])
            ingest_s += time.perf_counter() - started
            if (
                cache.misses and not cache.borrowed
            ):  # new vectors are kept as they come: a long first run can be resumed
                cache.save()
                print(f"embedded {cache.misses} new chunks, {k + 5000} documents in", flush=True)
        if prepare_only:
            await kb.close()
            return {"chunks": len(docs), "embedded_now": cache.misses}
        started = time.perf_counter()
        await kb.search("warm up the index", k=5)
        build_s = time.perf_counter() - started
        await kb.close()
        # a restart, with the plain encoder: every query below is encoded for real
        encoder = get_encoder()
        started = time.perf_counter()
        kb = await Knowledge.open(settings, Path(tmp), encoder=encoder)
        await kb.search("warm up the index", k=5)
        reload_s = time.perf_counter() - started
        out: dict[str, Any] = {
            "chunks": (await kb.stats())["chunks"],
            "ingest_seconds_cached_vectors": round(ingest_s, 1),
            "embedded_now": cache.misses,
            "vectors_borrowed": cache.borrowed,
            "index_build_seconds": round(build_s, 2),
            "restart_load_seconds": round(reload_s, 2),
        }
        cases = {
            "none": None,
            "account": {"account_id": 7},
            "date+region": {"date_from": "2025-06-01", "region": "West"},
        }
        for mode in ("hybrid", "text", "vector"):
            for name, filters in cases.items():
                samples = []
                for r in range(rounds):
                    query = f"{QUERIES[r % len(QUERIES)]} {r}"  # a new query each time: no cache anywhere
                    started = time.perf_counter()
                    await kb.search(query, k=5, filters=filters, mode=mode)  # type: ignore[arg-type]
                    samples.append(time.perf_counter() - started)
                out[f"{mode}/{name}"] = percentiles(samples)
        await kb.close()
    return out


async def ingest(chunks: int, batches: list[int]) -> dict[str, Any]:
    docs = synthetic_documents(chunks, seed=1)
    encoder = get_encoder()
    out: dict[str, Any] = {"chunks": chunks, "encoder": describe(encoder)}
    for batch in batches:
        with tempfile.TemporaryDirectory() as tmp:
            kb = await Knowledge.open(KnowledgeSettings(batch_size=batch), Path(tmp), encoder=encoder)
            result = await kb.ingest(docs)
            await kb.close()
        out[f"batch_{batch}"] = {
            "chunks_per_second": round(result.chunks / result.seconds, 1),
            "seconds": round(result.seconds, 1),
        }
    first = batches[0]
    base = out[f"batch_{first}"]["chunks_per_second"]
    for batch in batches:
        row = out[f"batch_{batch}"]
        row[f"vs_batch_{first}"] = round(row["chunks_per_second"] / base, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="latency,ingest,quality")
    parser.add_argument("--chunks", type=int, default=100_000, help="chunks for the latency part")
    parser.add_argument("--rounds", type=int, default=200, help="searches per mode and filter case")
    parser.add_argument("--ingest-chunks", type=int, default=512)
    parser.add_argument("--batches", default="1,16,32,64")
    parser.add_argument("--demo-scale", type=float, default=0.2, help="scale of the demo warehouse (quality)")
    parser.add_argument(
        "--borrow-vectors",
        action="store_true",
        help="latency: chunks without a cached MiniLM vector get a cached one plus noise instead of being "
        "embedded (search costs the same; say so when reporting)",
    )
    parser.add_argument(
        "--demo-seed", type=int, default=0, help="seed of the demo warehouse (quality; tuned on 1)"
    )
    parser.add_argument(
        "--chunk-words",
        type=int,
        default=None,
        help="quality: knowledge.chunk_words (default: the setting's)",
    )
    parser.add_argument("--sweep", action="store_true", help="quality: also try every fusion weighting")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    parts = args.parts.split(",")
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    if "prepare" in parts:  # embed and cache the latency part's chunks only (resumable; no figures)
        print(asyncio.run(latency(args.chunks, args.rounds, prepare_only=True)))
        return
    if "latency" in parts:
        report["latency"] = asyncio.run(latency(args.chunks, args.rounds, borrow=args.borrow_vectors))
        print(json.dumps(report["latency"], indent=1))
    if "ingest" in parts:
        report["ingest"] = asyncio.run(ingest(args.ingest_chunks, [int(b) for b in args.batches.split(",")]))
        print(json.dumps(report["ingest"], indent=1))
    if "quality" in parts:
        report["quality"] = asyncio.run(
            quality(
                args.demo_scale,
                WORK,
                CachedEncoder,
                demo_seed=args.demo_seed,
                sweep=args.sweep,
                chunk_words=args.chunk_words,
            )
        )
        print(
            json.dumps(
                {k: v for k, v in report["quality"].items() if k not in ("per_question", "sweep")}, indent=1
            )
        )
        for row in report["quality"].get("sweep", []):
            print(row)
    out = args.out or ROOT / "results" / f"{report['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    random.seed(0)
    main()
