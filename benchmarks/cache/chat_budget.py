#!/usr/bin/env python3
"""The wrong-answer budget on chat questions, after the alias has seen traffic like them (cross-fitted).

    .venv/bin/python benchmarks/cache/chat_budget.py [--train-orders 10] [--test-orders 20]

The 60 chat pairs (``chat_pairs.jsonl``: 30 rewordings, 30 near misses) as a stream (``replay.py
--example``: each stored question, then each asked one; a rewording shares its stored question's
group). The 33 stored questions are split in two folds (with their asked questions). For each fold:

1. **learn**: the other fold's stream is replayed ``--train-orders`` times in seeded random orders,
   each into an empty cache (entries do not carry over) that shares one alias model: its checks
   (2%) and shadow comparisons label rows, as a gateway's traffic would;
2. **serve**: this fold's stream, ``--test-orders`` orders, each into an empty cache, with the alias
   model learned in step 1 (it keeps learning);
3. the same orders with static thresholds (no budget), for the best static threshold at equal error.

The comparator is exact: every answer is ``group:<its group>``, so a fresh answer equals the cached
one exactly when the cached question was the same question. Reported per δ and rule (per_hit,
average): semantic hits, wrong ones, realised error (95% Wilson), checks; and per threshold.
``ceiling``: what any ranking on the risk model's features could serve at a realised error, in hindsight.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from oracle import wilson  # noqa: E402
from replay import example_stream  # noqa: E402

from sophia.cache import CacheContext, CacheSettings, ResponseCache  # noqa: E402
from sophia.cache.risk import RiskModel  # noqa: E402
from sophia.cache.store_local import LocalStore  # noqa: E402
from sophia.settings.cache import ModelCacheSettings  # noqa: E402

MODEL = "chat/model"
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.94)
DELTAS = (0.02, 0.05, 0.1)


class Exact:
    async def same(self, fresh: bytes, cached: bytes) -> bool | None:
        return fresh == cached


def folds() -> dict[int, list[tuple[str, str]]]:
    stream = example_stream()
    groups = sorted({r["group"] for r in stream if r["group"] == r["text"]})  # the stored questions
    fold_of_group = {g: i % 2 for i, g in enumerate(groups)}
    pairs = [
        json.loads(line) for line in (HERE / "chat_pairs.jsonl").read_text().splitlines() if line.strip()
    ]
    stored_of = {p["asked"]: p["stored"] for p in pairs}
    out: dict[int, list[tuple[str, str]]] = {0: [], 1: []}
    for r in stream:
        anchor = r["group"] if r["group"] in fold_of_group else stored_of[r["text"]]
        out[fold_of_group[anchor]].append((r["text"], r["group"]))
    return out


async def one_order(
    texts: list[tuple[str, str]], folder: Path, *, delta: float | None, threshold: float | None,
    shared: RiskModel | None, seed: int,
) -> dict[str, int]:  # fmt: skip
    models = {MODEL: ModelCacheSettings(max_error_rate=delta)} if delta else {}
    settings = CacheSettings(semantic_sample=1, ttl=None, threshold=threshold, check_rate=0.02, models=models)
    cache = ResponseCache(
        settings, LocalStore(f"sqlite:///{folder / f'c{random.random()}.db'}"), comparator=Exact()
    )
    await cache.start()
    if shared is not None:
        cache.learner.risk = shared
    cache.learner._random = random.Random(seed)
    tally = {"semantic": 0, "wrong": 0, "checks": 0}
    for text, group in texts:
        ctx = CacheContext(model=MODEL, tenant="t")
        request = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        hit = await cache.lookup(request, ctx)
        if hit is None:
            tally["checks"] += ctx.pending is not None and ctx.pending.kind == "check"
            await cache.store(request, ctx, f"group:{group}".encode(), 1, 1, "x", 0.0)
        elif hit.kind == "semantic":
            tally["semantic"] += 1
            tally["wrong"] += hit.body.decode() != f"group:{group}"
    await cache.close()
    return tally


def add(total: dict[str, int], one: dict[str, int]) -> None:
    for k, v in one.items():
        total[k] = total.get(k, 0) + v


def summary(t: dict[str, int]) -> dict[str, Any]:
    n, w = t.get("semantic", 0), t.get("wrong", 0)
    return {
        **t,
        "realised_error": round(w / n, 4) if n else None,
        "interval": [round(v, 4) for v in wilson(w, n)],
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    by_fold = folds()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "train_orders": args.train_orders,
        "test_orders": args.test_orders,
        "lookups_per_fold": {k: len(v) for k, v in by_fold.items()},
        "learned": {},
        "static": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for t in (*THRESHOLDS, None):
            total: dict[str, int] = {}
            for texts in by_fold.values():
                for k in range(args.test_orders):
                    order = texts[:]
                    random.Random(1000 + k).shuffle(order)
                    add(total, await one_order(order, folder, delta=None, threshold=t, shared=None, seed=k))
            result["static"]["default" if t is None else f"{t:g}"] = summary(total)
            print("static", t, result["static"]["default" if t is None else f"{t:g}"], file=sys.stderr)
        for mode in ("per_hit", "average"):
            for delta in DELTAS:
                total = {}
                for fold, texts in by_fold.items():
                    shared = RiskModel(warm_after=50, mode=mode)
                    train = by_fold[1 - fold]
                    for k in range(args.train_orders):
                        order = train[:]
                        random.Random(k).shuffle(order)
                        await one_order(order, folder, delta=delta, threshold=None, shared=shared, seed=k)
                    for k in range(args.test_orders):
                        order = texts[:]
                        random.Random(1000 + k).shuffle(order)
                        one = await one_order(
                            order, folder, delta=delta, threshold=None, shared=shared, seed=500 + k
                        )
                        add(total, one)
                row = summary(total)
                eligible = [
                    (s["semantic"], t)
                    for t, s in result["static"].items()
                    if s["realised_error"] is not None
                    and s["realised_error"] <= (row["realised_error"] or 0.0)
                ]
                best = max(eligible) if eligible else (0, None)
                row["best_static_at_equal_error"] = {"threshold": best[1], "semantic": best[0]}
                row["ratio_to_best_static"] = round(row["semantic"] / best[0], 3) if best[0] else None
                row["ratio_to_default"] = round(row["semantic"] / result["static"]["default"]["semantic"], 3)
                result["learned"][f"{mode} {delta:g}"] = row
                print(mode, delta, row, file=sys.stderr)
    return result


async def ceiling(orders: int) -> dict[str, Any]:
    """How much any ranking on the model's features could add over the verifier score alone, in
    hindsight: every lookup's best judged candidate (nothing served but the same words, so every
    candidate is labelled), then the most candidates servable at a realised error, ordered by the score
    and by a logistic fitted on these very rows (an upper bound for a model that learns elsewhere)."""
    rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    stream = [(r["text"], r["group"]) for r in example_stream()]
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(orders):
            order = stream[:]
            random.Random(2000 + k).shuffle(order)
            models = {MODEL: ModelCacheSettings(max_error_rate=0.5, check_rate=0.0)}
            settings = CacheSettings(semantic_sample=1, ttl=None, threshold=1.0, models=models)
            cache = ResponseCache(
                settings, LocalStore(f"sqlite:///{Path(tmp) / f'c{k}.db'}"), comparator=Exact()
            )
            await cache.start()
            for text, group in order:
                ctx = CacheContext(model=MODEL, tenant="t")
                request = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
                if await cache.lookup(request, ctx) is None:
                    await cache.store(request, ctx, f"group:{group}".encode(), 1, 1, "x", 0.0)
            model = cache.learner.risk.model(MODEL)
            rows.append(model._x[: model.n].copy())
            labels.append(model._y[: model.n].copy())
            await cache.close()
    x, y = np.concatenate(rows), np.concatenate(labels)

    def most(order_key: np.ndarray, target: float) -> int:
        order = np.argsort(order_key, kind="stable")
        error = np.cumsum(y[order]) / np.arange(1, len(order) + 1)
        within = np.nonzero(error <= target)[0]
        return int(within[-1] + 1) if len(within) else 0

    def fitted(columns: list[int]) -> np.ndarray:
        a = x[:, columns]
        w = np.zeros(len(columns))
        for _ in range(100):
            p = 1 / (1 + np.exp(-a @ w))
            w -= np.linalg.solve(
                (a * (p * (1 - p))[:, None]).T @ a + 1e-3 * np.eye(len(w)), a.T @ (p - y) + 1e-3 * w
            )
        return a @ w

    targets = (0.0, 0.02, 0.05, 0.1)
    ranks = {
        "verifier score": -x[:, 1],
        "logistic on logit + cosine": fitted([0, 1, 2]),
        "logistic on all four features": fitted([0, 1, 2, 3, 4]),
    }
    return {
        "candidates": len(y),
        "wrong_share": round(float(y.mean()), 4),
        "most_served_at_error": {
            name: {f"{t:g}": most(key, t) for t in targets} for name, key in ranks.items()
        },
    }


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-orders", type=int, default=10)
    parser.add_argument("--test-orders", type=int, default=20)
    parser.add_argument("--ceiling-orders", type=int, default=40, help="orders traced for the ceiling")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(main(args))
    result["ceiling"] = asyncio.run(ceiling(args.ceiling_orders))
    out = args.out or HERE / "results" / f"{result['date']}-chat-budget.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
