"""Upstream HTTP clients compared: CPU per proxied call for aiohttp, httpx and Sophia's h1 client.

Each client POSTs the same small chat body to an nginx that answers a fixed completion at once,
N times over `--concurrency` keep-alive connections; the figure is this process's CPU time (user +
system) per request, alternating the clients round by round. nginx must be listening on --url.
Run by `benchmarks/gateway/run.py --clients` or alone:

    .venv/bin/python benchmarks/gateway/clients.py --url http://127.0.0.1:PORT/v1/chat/completions
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import uvloop

from sophia.httpclient import HTTPClient

BODY = b'{"model":"bench-model","messages":[{"role":"user","content":"hello"}]}'
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench"}

Runner = Callable[[str, int, int], Awaitable[None]]


async def run_h1(url: str, n: int, concurrency: int) -> None:
    client = HTTPClient()
    target = client.target(url, HEADERS)

    async def worker(count: int) -> None:
        for _ in range(count):
            async with asyncio.timeout(5):
                resp = await client.post(target, BODY)
                await resp.read()
            resp.release()

    await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    await client.close()


async def run_aiohttp(url: str, n: int, concurrency: int) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:

        async def worker(count: int) -> None:
            for _ in range(count):
                async with asyncio.timeout(5):
                    resp = await session.post(url, data=BODY, headers=HEADERS)
                    await resp.read()
                resp.release()

        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))


async def run_httpx(url: str, n: int, concurrency: int) -> None:
    async with httpx.AsyncClient(timeout=5) as client:

        async def worker(count: int) -> None:
            for _ in range(count):
                resp = await client.post(url, content=BODY, headers=HEADERS)
                resp.read()

        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))


CLIENTS: dict[str, Runner] = {"sophia-h1": run_h1, "aiohttp": run_aiohttp, "httpx": run_httpx}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(url: str, n: int, concurrency: int, rounds: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in CLIENTS}
    for r in range(rounds):
        names = list(CLIENTS)
        names = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
        for name in names:
            uvloop.run(CLIENTS[name](url, n // 10, concurrency))  # warm-up
            c0, t0 = cpu_seconds(), time.perf_counter()
            uvloop.run(CLIENTS[name](url, n, concurrency))
            samples[name].append(((cpu_seconds() - c0) * 1e6 / n, (time.perf_counter() - t0) * 1e6 / n))
    return {
        name: {
            "cpu_us_per_request": statistics.median(c for c, _ in rows),
            "wall_us_per_request": statistics.median(w for _, w in rows),
        }
        for name, rows in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="nginx's /v1/chat/completions URL")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = measure(args.url, args.requests, args.concurrency, args.rounds)
    base = results["sophia-h1"]["cpu_us_per_request"]
    print("| client | CPU µs/request | vs sophia-h1 | wall µs/request |")
    print("| --- | --- | --- | --- |")
    for name, row in results.items():
        cpu = row["cpu_us_per_request"]
        print(f"| {name} | {cpu:.1f} | {cpu / base:.2f}x | {row['wall_us_per_request']:.1f} |")


if __name__ == "__main__":
    main()
