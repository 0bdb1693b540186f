#!/usr/bin/env python3
"""The wrong-answer budget (issue 27): how often a semantic hit is wrong under ``max_error_rate`` δ,
and how many hits the budget keeps, against static verifier thresholds, in one run.

    .venv/bin/python benchmarks/cache/budget.py [--split test] [--limit N] [--deltas 0.01,0.02]
        [--thresholds 0.5,0.94] [--skip-peer] [--shuffles K] [--orders 200] [--cold withhold,threshold]
        [--out FILE]

S1, the QQP gateway stream (shared/data/README.md): every question of the split is looked up and
stored on a miss, the a's then the b's (``--shuffles K`` adds K seeded interleaved orders). S2, the
chat stream: the distinct texts of ``chat_pairs.jsonl`` in ``--orders`` seeded orders, each from an
empty cache. Each entry's body is its own question, so a served hit is wrong when it is not the
same question as the query (``oracle.py``: normalised-equal, or a labelled duplicate pair). The
budget runs learn from checks and shadow comparisons judged by the same oracle.

Rows: B0 (the trained default threshold, no budget), the B1 grid of static thresholds, one run
per δ and cold rule (``--cold``: ``cache.budget_cold``, what the alias serves before it has learned); for each δ, B1(δ) is the static threshold serving the most semantic hits at a realised
error no higher than the δ run's, and the ratio is the δ run's hits over B1(δ)'s. GPTCache's
gateway pass (``run.py``'s ``run_peer``) is re-scored with the same oracle, as an anchor.

The cross-encoder dominates the time, so its logits are memoised per (a, b) pair in
``benchmarks/.work/cache/pair-logits-<split>.pkl`` (shared with other scripts: merged on save).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import pickle
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from chat import load as load_chat
from oracle import Labels, Oracle, best_static, norm, wilson
from run import DATA, MODEL, WORK, peer_version, request, run_peer

from sophia.cache import CacheContext, CacheSettings, ResponseCache
from sophia.cache.store_local import LocalStore
from sophia.cache.training.dataset import Embeddings, load_pairs
from sophia.cache.verifier import Verifier, default_verifier
from sophia.settings.cache import ModelCacheSettings

HERE = Path(__file__).resolve().parent
GRID = (0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.94, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.0)
DELTAS = (0.01, 0.02, 0.03, 0.05, 0.08, 0.1)
CHECK_RATE = 0.02
EVERY = 2000  # lookups between two points of the warm-up curve

Logits = Callable[[Sequence[tuple[str, str]]], np.ndarray]


class PairMemo:
    """The cross-encoder's raw logit per ordered pair, kept on disk between runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.logits: dict[tuple[str, str], float] = self._read()
        self.computed = 0

    def _read(self) -> dict[tuple[str, str], float]:
        if not self.path.is_file():
            return {}
        with self.path.open("rb") as fh:
            found: dict[tuple[str, str], float] = pickle.load(fh)  # our own cache file
        return found

    def wrap(self, compute: Logits) -> Logits:
        def logits(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
            keys = [(a, b) for a, b in pairs]
            todo = [k for k in dict.fromkeys(keys) if k not in self.logits]
            if todo:
                for k, z in zip(todo, compute(todo), strict=True):
                    self.logits[k] = float(z)
                self.computed += len(todo)
            return np.array([self.logits[k] for k in keys], dtype=np.float32)

        return logits

    def save(self) -> None:
        """Merge into what is on disk now (another script may have added pairs), then swap atomically."""
        merged = self._read()
        merged.update(self.logits)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(merged, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(self.path)


_ORIGINAL: dict[int, Logits] = {}


def use_memo(verifier: Verifier, memo: PairMemo) -> None:
    """Route the verifier's cross-encoder through ``memo`` (the model's own function stays underneath)."""
    model = verifier.model
    original = _ORIGINAL.setdefault(id(model), model._pair_logits)
    model._pair_logits = memo.wrap(original)


def budget_api() -> str | None:
    """Why the δ runs cannot run here (None when they can): the cache must take a comparator."""
    if "comparator" not in inspect.signature(ResponseCache.__init__).parameters:
        return "ResponseCache(comparator=...) does not exist yet (the budget side has not landed)"
    try:
        ModelCacheSettings(max_error_rate=0.05)
    except ValueError as exc:
        return f"ModelCacheSettings(max_error_rate=...) raises: {exc}"
    return None


@dataclass(slots=True)
class Config:
    name: str
    threshold: float | None  # None: the verifier's trained default
    delta: float | None = None
    cold: str = "withhold"
    warm_after: int | None = None  # None: the setting's default

    def settings(self) -> CacheSettings:
        models = {MODEL: ModelCacheSettings(max_error_rate=self.delta)} if self.delta is not None else {}
        return CacheSettings(
            threshold=self.threshold,
            max_entries=10_000_000,
            ttl=None,
            semantic_sample=1,  # every question reaches the semantic layer (it is what is measured)
            models=models,
            check_rate=CHECK_RATE,
            shadow_checks=True,
            budget_cold=self.cold,
            **({} if self.warm_after is None else {"warm_after": self.warm_after}),
        )


@dataclass(slots=True)
class Tally:
    """What one pass served, counted as it goes (the curve is cumulative)."""

    every: int = EVERY
    lookups: int = 0
    exact: int = 0
    served: int = 0
    wrong: int = 0
    checks: int = 0
    shadows: int = 0
    curve: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (query, served) of every semantic hit

    def add(self, kind: str, wrong: bool = False, pair: tuple[str, str] | None = None) -> None:
        """``kind``: exact, semantic, check (a would-be hit withheld), shadow (a shadowed miss) or miss."""
        self.lookups += 1
        if kind == "exact":
            self.exact += 1
        elif kind == "semantic":
            self.served += 1
            self.wrong += wrong
            if pair is not None:
                self.pairs.append(pair)
        elif kind == "check":
            self.checks += 1
        elif kind == "shadow":
            self.shadows += 1
        if self.every and self.lookups % self.every == 0:
            self.curve.append(
                {"lookups": self.lookups, "served": self.served, "wrong": self.wrong, "error": self.error}
            )

    @property
    def error(self) -> float:
        return self.wrong / self.served if self.served else 0.0

    def figures(self) -> dict[str, Any]:
        lo, hi = wilson(self.wrong, self.served)
        return {
            "lookups": self.lookups,
            "exact_hits": self.exact,
            "served": self.served,
            "wrong": self.wrong,
            "error": self.error,
            "error_ci95": [lo, hi],
            "checks": self.checks,
            "check_share": self.checks / (self.served + self.checks) if self.served + self.checks else 0.0,
            "shadow_labels": self.shadows,
            "curve": self.curve,
        }


async def gateway_pass(
    config: Config,
    stream: Sequence[str],
    vectors: np.ndarray,
    labels: Labels,
    *,
    every: int = EVERY,
    seed: int = 0,
) -> tuple[dict[str, Any], Tally]:
    """One stream through a fresh cache, each question looked up and stored on a miss."""
    tally = Tally(every)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        store = LocalStore(f"sqlite:///{Path(folder) / 'cache.db'}")
        if budget_api() is None:
            cache = ResponseCache(config.settings(), store, comparator=Oracle(labels))
        else:
            cache = ResponseCache(config.settings(), store)
        await cache.start()
        draws = getattr(getattr(cache, "learner", None), "_random", None)
        if draws is not None:  # which would-be hits are checked: the same draws in every run
            draws.seed(seed)
        for text, vector in zip(stream, vectors, strict=True):
            ctx = CacheContext(model=MODEL, tenant="bench", embedding=vector)
            hit = await cache.lookup(request(text), ctx)
            if hit is not None:
                served = hit.body.decode()
                tally.add(hit.kind, not labels.same(text, served), (text, served))
                continue
            pending = getattr(ctx, "pending", None)
            tally.add(getattr(pending, "kind", None) or "miss")
            # the same ctx: it carries the pending check or shadow comparison
            await cache.store(request(text), ctx, text.encode(), 10, 100, "bench/upstream", 0.001)
        await cache.drain()
        stats = await cache.stats()
        await cache.close()
    figures = {
        "name": config.name,
        "threshold": cache.threshold if config.threshold is None else config.threshold,
        "delta": config.delta,
        **tally.figures(),
        "seconds": round(time.perf_counter() - started, 1),
        "cache_stats": {k: v for k, v in stats.items() if k not in ("semantic_gate", "store")},
    }
    return figures, tally


def with_b1(deltas: list[dict[str, Any]], static: list[dict[str, Any]]) -> None:
    """Each δ run's B1(δ) and hit ratio (in place)."""
    for row in deltas:
        b1 = best_static(static, row["error"])
        row["b1_threshold"] = None if b1 is None else b1["threshold"]
        row["b1_served"] = None if b1 is None else b1["served"]
        row["ratio"] = row["served"] / b1["served"] if b1 is not None and b1["served"] else None


async def s1_order(
    name: str,
    stream: list[str],
    emb: Embeddings,
    labels: Labels,
    grid: list[float],
    deltas: list[float],
    colds: tuple[str, ...] = ("withhold",),
    warm_after: int | None = None,
) -> dict[str, Any]:
    """The grid and the δ runs on one order of the gateway stream."""
    vectors = emb.of(stream)
    default_t = default_verifier().threshold
    static = []
    for t in grid:
        row, _ = await gateway_pass(Config(f"B1 {t:g}", t), stream, vectors, labels)
        row["b0"] = t == default_t
        static.append(row)
        print(f"  {name} static {t:g}: {row['served']} served, {row['wrong']} wrong", file=sys.stderr)
    out: dict[str, Any] = {"order": name, "static": static}
    missing = budget_api()
    if deltas and missing is not None:
        out["deltas_skipped"] = missing
        print(f"  δ runs skipped: {missing}", file=sys.stderr)
    elif deltas:
        runs = []
        for cold in colds:
            for d in deltas:
                label = f"δ {d:g}" if cold == "withhold" else f"δ {d:g} cold={cold}"
                config = Config(label, None, d, cold, warm_after)
                row, _ = await gateway_pass(config, stream, vectors, labels)
                row["cold"] = cold
                runs.append(row)
                print(f"  {name} {label}: {row['served']} served, {row['error']:.2%} error", file=sys.stderr)
        with_b1(runs, static)
        out["deltas"] = runs
    return out


def gptcache_anchor(pairs: list[Any], emb: Embeddings, labels: Labels) -> list[dict[str, Any]] | None:
    """GPTCache's gateway pass (a's then b's), re-scored with the oracle; identical text is its 'exact'."""
    peer = run_peer(pairs, emb, ["gateway"])
    if peer is None:
        return None
    stream = [*(p.a for p in pairs), *(p.b for p in pairs)]
    rows = []
    for t, out in peer["gateway"].items():
        tally = Tally()
        for text, hit in zip(stream, out["hits"], strict=True):
            if hit is None:
                tally.add("miss")
            elif hit == text:
                tally.add("exact")
            else:
                tally.add("semantic", not labels.same(text, hit))
        ms = np.array(out["lookup_s"]) * 1000
        rows.append(
            {
                "name": f"GPTCache {t}",
                "similarity_threshold": float(t),
                **tally.figures(),
                "p50_ms": round(float(np.percentile(ms, 50)), 3),
            }
        )
    return rows


def chat_kinds(rows: list[dict[str, Any]]) -> tuple[list[str], Labels, Labels]:
    """The chat stream's texts, its rewordings (the oracle's labels) and its near misses."""
    texts = list(dict.fromkeys(str(t) for r in rows for t in (r["stored"], r["asked"])))
    same = Labels((str(r["stored"]), str(r["asked"])) for r in rows if r["same"])
    near = Labels((str(r["stored"]), str(r["asked"])) for r in rows if not r["same"])
    return texts, same, near


async def s2(configs: list[Config], orders: int) -> list[dict[str, Any]]:
    """Every config on ``orders`` seeded orders of the chat stream, each from an empty cache."""
    texts, same, near = chat_kinds(load_chat())
    emb = Embeddings.compute(texts, WORK)
    out = []
    for config in configs:
        total = Tally(every=0)
        reworded = near_served = 0
        for seed in range(orders):
            order = [texts[i] for i in np.random.default_rng(seed).permutation(len(texts))]
            _, tally = await gateway_pass(config, order, emb.of(order), same, every=0, seed=seed)
            for field_ in ("lookups", "exact", "served", "wrong", "checks", "shadows"):
                setattr(total, field_, getattr(total, field_) + getattr(tally, field_))
            reworded += sum(same.labelled(q, c) and norm(q) != norm(c) for q, c in tally.pairs)
            near_served += sum(near.labelled(q, c) for q, c in tally.pairs)
        figures = total.figures()
        del figures["curve"]
        out.append(
            {
                "name": config.name,
                "threshold": config.threshold,
                "delta": config.delta,
                "orders": orders,
                "rewordings_served": reworded,
                "rewordings_possible": len(same) * orders,
                "near_misses_served": near_served,
                "other_wrong": total.wrong - near_served,
                **figures,
            }
        )
        print(f"  chat {config.name}: {reworded} rewordings, {near_served} near misses", file=sys.stderr)
    return out


def fmt_error(row: dict[str, Any]) -> str:
    lo, hi = row["error_ci95"]
    return f"{row['error']:.2%} [{lo:.2%}, {hi:.2%}]"


def s1_table(order: dict[str, Any], peer: list[dict[str, Any]] | None) -> str:
    lines = [
        f"### S1 {order['order']}",
        "",
        "| row | lookups | exact | served | wrong | realised error [95%] | checks | checks/(served+checks) | "
        "shadows | B1(δ) | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in [*order["static"], *order.get("deltas", []), *(peer or [])]:
        name = r["name"] + (" (B0)" if r.get("b0") else "")
        b1 = "" if r.get("b1_threshold") is None else f"{r['b1_threshold']:g}"
        ratio = "" if r.get("ratio") is None else f"{r['ratio']:.2f}"
        lines.append(
            f"| {name} | {r['lookups']:,} | {r['exact_hits']:,} | {r['served']:,} | {r['wrong']:,} | "
            f"{fmt_error(r)} | {r['checks']:,} | {r['check_share']:.1%} | {r['shadow_labels']:,} | {b1} | {ratio} |"
        )
    if "deltas_skipped" in order:
        lines += ["", f"δ runs skipped: {order['deltas_skipped']}"]
    return "\n".join(lines)


def s2_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "### S2 chat stream",
        "",
        "| row | orders | rewordings served | near misses served | other wrong | realised error [95%] | checks |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['orders']} | {r['rewordings_served']:,}/{r['rewordings_possible']:,} | "
            f"{r['near_misses_served']:,} | {r['other_wrong']:,} | {fmt_error(r)} | {r['checks']:,} |"
        )
    return "\n".join(lines)


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    verifier = default_verifier()
    pairs = load_pairs(args.data, split=args.split)[: args.limit]
    labels = Labels((p.a, p.b) for p in pairs if p.duplicate)
    emb = Embeddings.compute(sorted({t for p in pairs for t in (p.a, p.b)}), WORK)
    grid = sorted({*args.thresholds, verifier.threshold})
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} cores",
        "split": args.split,
        "pairs": len(pairs),
        "labelled_duplicates": len(labels),
        "default_threshold": verifier.threshold,
        "check_rate": CHECK_RATE,
        "warm_after": args.warm_after or CacheSettings().warm_after,
        "budget_api": budget_api() or "present",
    }
    memo = PairMemo(WORK / f"pair-logits-{args.split}.pkl")
    use_memo(verifier, memo)
    stream = [*(p.a for p in pairs), *(p.b for p in pairs)]
    orders = [("gateway order", stream)]
    for seed in range(1, args.shuffles + 1):
        orders.append(
            (f"shuffle {seed}", [stream[i] for i in np.random.default_rng(seed).permutation(len(stream))])
        )
    result["s1"] = []
    try:
        for name, order in orders:
            print(f"S1 {name} ({len(order):,} lookups) …", file=sys.stderr)
            result["s1"].append(
                await s1_order(name, order, emb, labels, grid, args.deltas, args.cold, args.warm_after)
            )
            memo.save()
    finally:
        memo.save()
    if not args.skip_peer:
        print("GPTCache gateway …", file=sys.stderr)
        result["gptcache_version"] = peer_version()
        result["gptcache"] = gptcache_anchor(pairs, emb, labels)
    if args.orders:
        print(f"S2 chat stream, {args.orders} orders …", file=sys.stderr)
        chat_memo = PairMemo(WORK / "pair-logits-chat.pkl")
        use_memo(verifier, chat_memo)
        configs = [Config("B0", None)]
        if budget_api() is None:
            configs += [Config(f"δ {d:g}", None, d, warm_after=args.warm_after) for d in args.deltas]
        try:
            result["s2"] = await s2(configs, args.orders)
        finally:
            chat_memo.save()
    tables = [s1_table(o, result.get("gptcache") if i == 0 else None) for i, o in enumerate(result["s1"])]
    if "s2" in result:
        tables.append(s2_table(result["s2"]))
    result["tables"] = tables
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--split", default="test", choices=("test", "dev"))
    parser.add_argument("--limit", type=int, default=None, help="the first N pairs of the split")
    parser.add_argument("--deltas", type=floats, default=list(DELTAS), help="comma-separated; '' for none")
    parser.add_argument(
        "--thresholds", type=floats, default=list(GRID), help="the static grid, comma-separated"
    )
    parser.add_argument("--skip-peer", action="store_true", help="do not run GPTCache")
    parser.add_argument("--shuffles", type=int, default=0, help="extra seeded interleaved orders of S1")
    parser.add_argument(
        "--orders", type=int, default=200, help="seeded orders of the chat stream (0: skip S2)"
    )
    parser.add_argument(
        "--cold",
        type=lambda t: tuple(x for x in t.split(",") if x),
        default=("withhold",),
        help="cold rules of the δ runs (cache.budget_cold), comma-separated: withhold,threshold",
    )
    parser.add_argument(
        "--warm-after", type=int, default=None, help="cache.warm_after of the δ runs (default: the setting's)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="results JSON (default: results/DATE-budget-SPLIT.json)"
    )
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    suffix = f"-{args.limit}" if args.limit else ""
    out = args.out or HERE / "results" / f"{result['date']}-budget-{args.split}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    for text in result["tables"]:
        print(text + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
