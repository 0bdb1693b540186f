"""Crawl throughput against a local site at zero politeness: pages per second with one and two workers.

    .venv/bin/python benchmarks/collect/crawl.py                    # 400 pages, 1 then 2 worker processes
    .venv/bin/python benchmarks/collect/crawl.py --pages 60 --out /tmp/c.json   # smoke

What runs: a generated site (``--pages`` article pages of ~300 words, each linking to 6 others, plus
robots.txt) served by an aiohttp process on loopback; each crawl is queued on arq over the local Redis
and worked by ``sophia collect worker`` processes (each runs ``collect.workers`` = 8 page jobs at once),
with ``collect.delay`` 0 and ``host_concurrency`` 16: nothing but the work slows it. Every page goes
the whole way (safe fetch, robots check, extraction, page store, MiniLM, knowledge index), as in use.
The workers are started and warmed (a 20-page crawl of another part of the site) before the clock
starts; the figure is pages fetched / seconds from queueing the crawl to its end. Each run has a
fresh Sophia home (SQLite page and knowledge stores, shared by the workers of that run).

On 2 cores the site server and the workers share the CPU; the two-worker figure says how far a
second process helps there, not how a second machine would.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent
REDIS = "redis://127.0.0.1:6379/0"
WORDS = [
    "leasing",
    "occupancy",
    "renewals",
    "maintenance",
    "residents",
    "portfolio",
    "pricing",
    "integration",
    "screening",
    "tours",
    "concessions",
    "delinquency",
    "turnover",
    "amenities",
    "payments",
    "owners",
    "investors",
    "acquisition",
    "multifamily",
    "student",
    "senior",
    "housing",
    "rent",
    "growth",
    "vacancy",
    "operators",
    "regional",
    "managers",
    "software",
    "adoption",
    "automation",
    "marketing",
    "applications",
]

SERVER = r"""
import sys, random
from aiohttp import web
n, port = int(sys.argv[1]), int(sys.argv[2])
words = sys.argv[3].split(",")
def page(section, k):
    rng = random.Random(hash((section, k)) & 0xffffffff)
    links = " ".join(f'<a href="/{section}/{rng.randrange(n)}">more</a>' for _ in range(6))
    paras = "".join("<p>" + " ".join(rng.choice(words) for _ in range(50)) + ".</p>" for _ in range(6))
    return (f"<html><head><title>{section} page {k}</title></head><body><nav>{links}</nav>"
            f"<article><h1>{section.title()} report {k}</h1>{paras}</article></body></html>")
async def handle(request):
    parts = request.path.strip("/").split("/")
    if request.path == "/robots.txt":
        return web.Response(text="User-agent: *\nDisallow: /private\n")
    if len(parts) == 2 and parts[1].isdigit():
        return web.Response(text=page(parts[0], int(parts[1])), content_type="text/html")
    return web.Response(status=404)
app = web.Application(); app.router.add_get("/{tail:.*}", handle)
web.run_app(app, host="127.0.0.1", port=port, print=None)
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def crawl_once(config: Path, start: str, max_pages: int) -> tuple[float, Any]:
    from sophia.collect.crawl import CrawlSpec
    from sophia.collect.service import open_crawler
    from sophia.container import Services
    from sophia.settings import load_settings

    services = Services(load_settings(str(config)))
    await services.open()
    try:
        service = await open_crawler(services, worker=False)
        t0 = time.perf_counter()
        crawl_id = await service.crawler.start(CrawlSpec(start, max_pages=max_pages, max_depth=50, delay=0.0))
        progress = await service.crawler.wait(crawl_id, 1800, every=0.05)
        elapsed = time.perf_counter() - t0
        await service.close()
        return elapsed, progress
    finally:
        await services.close()


def run(workers: int, pages: int, port: int, tmp: Path) -> dict[str, Any]:
    home = tmp / f"home-{workers}"
    config = tmp / f"sophia-{workers}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "home": str(home),
                "cache": {"enabled": False},
                "collect": {
                    "allow": [f"127.0.0.1:{port}"],
                    "delay": 0.0,
                    "host_concurrency": 16,
                    "workers": 8,
                    "queue_url": REDIS,
                    "queue_name": f"sophia:bench:{uuid.uuid4().hex[:8]}",
                },
            }
        )
    )
    env = {**os.environ, "SOPHIA_CONFIG": str(config), "OPENBLAS_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sophia", "collect", "worker"], env=env, stdout=subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    try:
        warm_s, _ = asyncio.run(crawl_once(config, f"http://127.0.0.1:{port}/warm/0", 20))
        elapsed, progress = asyncio.run(crawl_once(config, f"http://127.0.0.1:{port}/site/0", pages))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    fetched = progress.stats["fetched"] + progress.stats["duplicates"] + progress.stats["unchanged"]
    return {
        "workers": workers,
        "pages_seen": progress.seen,
        "pages_fetched": fetched,
        "failed": progress.stats["failed"],
        "seconds": round(elapsed, 2),
        "pages_per_second": round(fetched / elapsed, 2),
        "warmup_seconds": round(warm_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    random.seed(0)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(args.pages * 4), str(port), ",".join(WORDS)])
    time.sleep(1.5)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = [run(w, args.pages, port, Path(tmp)) for w in (1, 2)]
    finally:
        server.terminate()
        server.wait(10)
    report = {
        "date": dt.date.today().isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "runs": runs,
        "two_vs_one": round(runs[1]["pages_per_second"] / runs[0]["pages_per_second"], 2),
    }
    print(json.dumps(report, indent=1))
    out = args.out or ROOT / "results" / f"{report['date']}-crawl.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
