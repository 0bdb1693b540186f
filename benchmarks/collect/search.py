"""Search over collected pages at 10k pages: ``Collector.search`` (what ``search_collected`` runs) p50/p95/p99.

    .venv/bin/python benchmarks/collect/search.py                  # 10,000 pages, 200 searches per case
    .venv/bin/python benchmarks/collect/search.py --pages 1000 --rounds 50 --out /tmp/s.json   # smoke

The pages are the knowledge benchmark's synthetic notes (~120 words of sales-call sentences each, one
chunk) stored as ``web`` documents of 50 domains with dates: their MiniLM vectors come from that
benchmark's cache (``benchmarks/knowledge/.work/synthetic.npz``; missing ones are embedded and kept).
Every query is new (a counter appended), so no cache anywhere answers it; the query's own MiniLM
encoding is part of each search, as in the tool. Cases: no filter, one domain, a date range.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent
KNOWLEDGE = ROOT.parent / "knowledge"
sys.path.insert(0, str(KNOWLEDGE))

from run import QUERIES, CachedEncoder  # noqa: E402
from synthetic import synthetic_documents  # noqa: E402

from sophia.collect.collector import Collector  # noqa: E402
from sophia.knowledge import Document  # noqa: E402
from sophia.knowledge.knowledge import Knowledge  # noqa: E402
from sophia.settings import CollectSettings, KnowledgeSettings  # noqa: E402


def pages(n: int) -> list[Document]:
    out = []
    for k, doc in enumerate(synthetic_documents(n)):
        domain = f"site{k % 50}.example.com"
        url = f"https://{domain}/notes/{k}"
        out.append(
            Document(
                f"web:{url}",
                kind="web",
                title=doc["title"],
                text=doc["text"],
                source="web",
                url=url,
                metadata={"domain": domain, "url": url, "date": doc["metadata"]["date"]},
            )
        )
    return out


async def measure(n: int, rounds: int) -> dict[str, Any]:
    cache = CachedEncoder(KNOWLEDGE / ".work" / "synthetic.npz")
    with tempfile.TemporaryDirectory() as tmp:
        kb = await Knowledge.open(KnowledgeSettings(), Path(tmp) / "kb", encoder=cache)
        docs = pages(n)
        started = time.perf_counter()
        for k in range(0, len(docs), 2000):
            await kb.ingest(docs[k : k + 2000])
        ingest_s = time.perf_counter() - started
        if cache.misses:
            cache.save()
        await kb.close()
        from sophia.embedder import get_encoder

        kb = await Knowledge.open(KnowledgeSettings(), Path(tmp) / "kb", encoder=get_encoder())
        collector = await Collector.open(CollectSettings(), Path(tmp), kb)
        await collector.search("warm up", k=5)
        out: dict[str, Any] = {
            "pages": (await kb.stats())["documents"],
            "chunks": (await kb.stats())["chunks"],
            "ingest_seconds_cached_vectors": round(ingest_s, 1),
            "embedded_now": cache.misses,
        }
        cases: dict[str, dict[str, Any]] = {
            "none": {},
            "domain": {"domain": "site7.example.com"},
            "date range": {"date_from": "2025-01-01", "date_to": "2025-06-30"},
        }
        for name, filters in cases.items():
            samples = []
            for r in range(rounds):
                query = f"{QUERIES[r % len(QUERIES)]} {r}"
                t0 = time.perf_counter()
                hits = await collector.search(query, k=5, filters=filters)
                samples.append(time.perf_counter() - t0)
                assert all(h.citation.url for h in hits)
            ms = np.array(samples) * 1000
            out[name] = {f"p{q}": round(float(np.percentile(ms, q)), 2) for q in (50, 95, 99)} | {"n": rounds}
        await collector.close()
        await kb.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    report = {
        "date": dt.date.today().isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "search": asyncio.run(measure(args.pages, args.rounds)),
    }
    print(json.dumps(report, indent=1))
    out = args.out or ROOT / "results" / f"{report['date']}-search.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
