#!/usr/bin/env python3
"""Warehouse speed benchmark: the 22 TPC-H queries through `run_sql` (BI MCP server) against DuckDB direct.

One process holds both sides on the same DuckDB database instance (harness.py). Each round clears
Sophia's result cache, then for every query runs, back to back: DuckDB direct fetching the first page
(the same LIMIT as run_sql's page) and fetching every row, `run_sql` once (cold: a result cache miss)
and `run_sql` again ``--hits`` times (result cache hits); the side that goes first alternates between
rounds. Reported per query as medians over rounds, and as geometric means over the 22 with their
spread over rounds: cold / direct page (the target's figure: the same rows returned), cold / direct
all rows, and cold / hit. Then where the time goes for the query with the highest cold ratio
(breakdown.py). See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from breakdown import breakdown
from harness import Sides, load_queries, page_sql, sides
from tpch import database_path, ensure_database, scale_name

from sophia.warehouse.backends.base import to_json

#: the targets of issue 23
COLD_TARGET = 1.1  # geomean of run_sql cold / direct, at most
HIT_TARGET = 50.0  # geomean of run_sql cold / run_sql hit, at least


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


async def check_answers(s: Sides, queries: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Warm both sides (buffer pool, plans) and check run_sql returns the rows DuckDB returns."""
    checked = {}
    for name, sql in queries.items():
        _, every = s.direct(sql)
        _, page = s.direct(page_sql(sql, s.page))
        _, result = await s.run_sql(sql)
        same = result["rows"] == [[to_json(v) for v in row] for row in page]
        if not same:
            print(f"warning: {name}: run_sql's rows differ from DuckDB's first page", file=sys.stderr)
        checked[name] = {"rows": len(every), "page_rows": result["row_count"], "same_rows": same,
                         "truncated": result["truncated"]}  # fmt: skip
    return checked


def direct_times(s: Sides, sql: str) -> dict[str, Any]:
    """DuckDB direct: the first page (the same LIMIT as run_sql's page), then every row."""
    page, _ = s.direct(page_sql(sql, s.page))
    every, _ = s.direct(sql)
    return {"direct_page_ms": page * 1000, "direct_all_ms": every * 1000}


async def one_round(
    s: Sides, queries: dict[str, str], hits: int, direct_first: bool
) -> dict[str, dict[str, Any]]:
    s.clear_result_cache()
    out: dict[str, dict[str, Any]] = {}
    for name, sql in queries.items():
        row = direct_times(s, sql) if direct_first else {}
        cold, result = await s.run_sql(sql)
        if result["cache"] != "miss":
            raise RuntimeError(f"{name}: the cold call was a cache {result['cache']}")
        hit_times = []
        for _ in range(hits):
            seconds, repeat = await s.run_sql(sql)
            if repeat["cache"] != "hit":
                raise RuntimeError(f"{name}: the repeated call was a cache {repeat['cache']}")
            hit_times.append(seconds)
        row |= {"sophia_cold_ms": cold * 1000, "sophia_hit_ms": statistics.median(hit_times) * 1000}
        if not direct_first:
            row |= direct_times(s, sql)
        out[name] = row
    return out


def summarise(rounds: list[dict[str, dict[str, Any]]], checked: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ratios = {"cold_vs_page": ("sophia_cold_ms", "direct_page_ms"), "cold_vs_all": ("sophia_cold_ms", "direct_all_ms"),
              "cold_vs_hit": ("sophia_cold_ms", "sophia_hit_ms")}  # fmt: skip
    per_query: dict[str, dict[str, Any]] = {}
    for name in rounds[0]:
        row: dict[str, Any] = dict(checked[name])
        for field in ("direct_page_ms", "direct_all_ms", "sophia_cold_ms", "sophia_hit_ms"):
            row[field] = round(statistics.median(r[name][field] for r in rounds), 3)
        for ratio, (top, bottom) in ratios.items():
            row[ratio] = round(statistics.median(r[name][top] / r[name][bottom] for r in rounds), 3)
        added = (r[name]["sophia_cold_ms"] - r[name]["direct_page_ms"] for r in rounds)
        row["added_ms"] = round(statistics.median(added), 3)  # what Sophia adds to the same rows
        per_query[name] = row
    overall: dict[str, dict[str, Any]] = {}
    for ratio, (top, bottom) in ratios.items():
        by_round = [geomean([r[n][top] / r[n][bottom] for n in r]) for r in rounds]
        overall[ratio] = {
            "geomean": round(geomean([q[ratio] for q in per_query.values()]), 3),
            "rounds": [round(v, 3) for v in by_round],
        }
    overall["cold_vs_page"]["target"] = f"<= {COLD_TARGET}"
    overall["cold_vs_page"]["met"] = overall["cold_vs_page"]["geomean"] <= COLD_TARGET
    overall["cold_vs_hit"]["target"] = f">= {HIT_TARGET}"
    overall["cold_vs_hit"]["met"] = overall["cold_vs_hit"]["geomean"] >= HIT_TARGET
    overall["added_ms"] = {"median": round(statistics.median(q["added_ms"] for q in per_query.values()), 3)}
    return {"overall": overall, "queries": per_query}


def print_report(result: dict[str, Any]) -> None:
    print(f"TPC-H SF {result['scale']}, {result['rounds_run']} rounds, page {result['page_rows']} rows, "
          f"{result['threads']} DuckDB threads; medians over rounds (ms)")  # fmt: skip
    head = f"{'query':6} {'rows':>7} {'direct page':>12} {'direct all':>11} {'run_sql cold':>13} {'hit':>7}"
    print(head + f" {'added':>7} {'cold/page':>10} {'cold/all':>9} {'cold/hit':>9}")
    for name, q in result["summary"]["queries"].items():
        print(f"{name:6} {q['rows']:>7} {q['direct_page_ms']:>12.2f} {q['direct_all_ms']:>11.2f} "
              f"{q['sophia_cold_ms']:>13.2f} {q['sophia_hit_ms']:>7.3f} {q['added_ms']:>7.2f} {q['cold_vs_page']:>9.3f}x "
              f"{q['cold_vs_all']:>8.3f}x {q['cold_vs_hit']:>8.1f}x")  # fmt: skip
    overall = dict(result["summary"]["overall"])
    print(f"median added (run_sql cold - direct page): {overall.pop('added_ms')['median']:.2f} ms")
    for ratio, figure in overall.items():
        spread = f"rounds {min(figure['rounds']):.3f}-{max(figure['rounds']):.3f}"
        target = (
            f"  target {figure['target']}: {'met' if figure['met'] else 'NOT met'}"
            if "target" in figure
            else ""
        )
        print(f"geomean {ratio:13} {figure['geomean']:>8.3f}x  ({spread}){target}")
    worst = result["breakdown"]
    print(
        f"\nwhere the time goes, {worst['query']} (highest cold/page), fastest (median) of {worst['reps']}, ms:"
    )
    for step, ms in worst["steps_ms"].items():
        print(f"  step {step:58} {ms:>9.3f} ({worst['steps_median_ms'][step]:.3f})")
    for part, ms in worst["overhead_ms"].items():
        print(f"  overhead {part:54} {ms:>9.3f}")
    print(f"  overhead total (run_sql - direct page) {'':23} {worst['overhead_total_ms']:>9.3f}")
    print(
        f"  cache hit without the guard (run_sql hit - guard) {'':12} {worst['hit_without_guard_ms']:>9.3f}"
    )


async def bench(args: argparse.Namespace, database: Path) -> dict[str, Any]:
    queries = load_queries(args.queries.split(",") if args.queries else ())
    async with sides(database) as s:
        checked = await check_answers(s, queries)
        rounds = []
        for i in range(args.rounds):
            rounds.append(await one_round(s, queries, args.hits, direct_first=i % 2 == 0))
            print(f"round {i + 1}/{args.rounds} done", file=sys.stderr)
        summary = summarise(rounds, checked)
        worst = max(summary["queries"], key=lambda n: summary["queries"][n]["cold_vs_page"])
        worst_breakdown = {"query": worst, **await breakdown(s, queries[worst], args.breakdown_reps)}
        threads = s.threads()
        page = s.page
    versions = {p: importlib.metadata.version(p) for p in ("duckdb", "sqlglot", "mcp")}
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_at_start": args.load_at_start,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "versions": versions,
        "scale": scale_name(args.scale),
        "database": str(database),
        "threads": threads,
        "page_rows": page,
        "rounds_run": args.rounds,
        "args": {k: str(v) for k, v in vars(args).items()},
        "summary": summary,
        "breakdown": worst_breakdown,
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hits", type=int, default=5, help="cache hits timed per query and round (median)")
    parser.add_argument("--breakdown-reps", type=int, default=7, help="repetitions of the overhead breakdown")
    parser.add_argument("--queries", help="a comma-separated subset (q01,q06,…); default all 22")
    parser.add_argument("--output", type=Path, help="write the raw results as JSON here")
    args = parser.parse_args()
    args.load_at_start = [round(v, 2) for v in os.getloadavg()]
    database = (
        database_path(args.scale) if database_path(args.scale).is_file() else ensure_database(args.scale)
    )
    result = asyncio.run(bench(args, database))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result)


if __name__ == "__main__":
    main()
