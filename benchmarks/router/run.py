"""Learned routing on RouterBench: train on the *_train.csv slices, report on *_test.csv.

Runs exactly what `sophia router train` and `sophia router eval` run (same functions), for
ARC-Challenge, MBPP and Winogrande, trained pooled, reported per task and pooled, with every
baseline in the same run; then measures the router's decision latency. See README.md.

    .venv/bin/python benchmarks/router/run.py [--seeds 0,1,2] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sophia.router import evaluate as ev
from sophia.router.artifact import load_router, save_router
from sophia.router.dataset import RoutingData, load_many
from sophia.router.embedding import Embed, cached, minilm_embed
from sophia.router.features import turns
from sophia.router.train import TrainOptions, prepare, train_router

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "routing"
WORK = ROOT / "benchmarks" / ".work" / "router"
TASKS = ("arc_challenge", "mbpp", "winogrande")
SWEEP = "sophia (price-weight sweep)"
ZERO = "zero router (hull of models)"
KNN = "kNN-20 on question embeddings"


def load(split: str) -> RoutingData:
    return load_many([DATA / f"routerbench_{t}_{split}.csv" for t in TASKS])


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, numpy {np.__version__}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )


def quality(seed: int, train: RoutingData, test: RoutingData, embed: Embed) -> dict[str, object]:
    started = time.perf_counter()
    router = train_router(train, embed, TrainOptions(seed=seed))
    train_s = time.perf_counter() - started
    path = WORK / f"router-seed{seed}.bin"
    size = save_router(router, path)
    router = load_router(path)  # report what a deployment would load
    test = test.select_models(router.models)
    pred = ev.predict(router, prepare(test, router.boilerplate, embed))
    sections = ev.report(test, pred, router.reference)
    print(
        f"\n=== seed {seed}: trained in {train_s:.1f} s (embeddings cached), router.bin {size / 1e6:.1f} MB ==="
    )
    print(f"setting chosen by CV Brier: {router.model.config.describe()}; default scope: {router.scope}")
    print(ev.format_report(sections, ev.task_accuracy(test, pred)))
    return {
        "seed": seed,
        "train_seconds": round(train_s, 2),
        "config": router.model.config.to_json(),
        "sections": {
            s.task: {
                "reference_accuracy": s.ref_accuracy,
                "reference_cost": s.ref_cost,
                **{
                    e.name: {
                        "aiq": e.aiq,
                        "savings": {f"{k:g}": v for k, v in e.savings.items()},
                        "points": e.points.round(8).tolist() if not e.curve else None,
                    }
                    for e in s.entries
                },
            }
            for s in sections
        },
    }


def latency(test: RoutingData, rounds: int = 3) -> dict[str, float]:
    """Decision time per request: question extraction + prediction + rule, with and without MiniLM."""
    router = load_router(WORK / "router-seed0.bin")
    encoder = minilm_embed  # loads the model once
    requests = [[{"role": "user", "content": turns(p)[-1]}] for p in test.prompts]
    vectors = encoder([router.question(r).text for r in requests])
    candidates = list(router.models)
    for r, v in zip(requests[:50], vectors, strict=False):  # warm-up
        router.decide(router.question(r), v, candidates)
    bare, full = [], []
    for _ in range(rounds):
        for r, v in zip(requests, vectors, strict=True):
            t0 = time.perf_counter()
            router.decide(router.question(r), v, candidates)
            bare.append(time.perf_counter() - t0)
        for r in requests[:200]:
            t0 = time.perf_counter()
            q = router.question(r)
            router.decide(q, encoder([q.text])[0], candidates)
            full.append(time.perf_counter() - t0)

    def pct(xs: list[float], p: float) -> float:
        return float(np.percentile(np.array(xs) * 1e3, p))

    out = {
        "decide_p50_ms": pct(bare, 50),
        "decide_p99_ms": pct(bare, 99),
        "decide_mean_ms": statistics.fmean(bare) * 1e3,
        "with_embedding_p50_ms": pct(full, 50),
        "with_embedding_p99_ms": pct(full, 99),
        "samples": len(bare),
        "samples_with_embedding": len(full),
    }
    print(
        f"\ndecision latency ({len(candidates)} candidates, {len(bare)} requests): "
        f"p50 {out['decide_p50_ms']:.3f} ms, p99 {out['decide_p99_ms']:.3f} ms (embedding excluded); "
        f"with the MiniLM embedding of the question: p50 {out['with_embedding_p50_ms']:.2f} ms, "
        f"p99 {out['with_embedding_p99_ms']:.2f} ms"
    )
    return out


def verdict(runs: list[dict[str, object]]) -> list[str]:
    """The issue's targets, checked on every seed."""
    lines = []
    for run in runs:
        secs = run["sections"]
        assert isinstance(secs, dict)
        pooled = secs["pooled"]
        hull97 = pooled[SWEEP]["savings"]["0.97"]
        op = pooled["sophia @ target 0.97 (pooled)"]["points"][0]
        op_ratio, op_saving = op[1] / pooled["reference_accuracy"], 1 - op[0] / pooled["reference_cost"]
        lines.append(
            f"seed {run['seed']}: pooled hull saving at 97%: {hull97:.1%} (target >= 50%) "
            f"{'PASS' if hull97 is not None and hull97 >= 0.5 else 'FAIL'}; default operating point "
            f"(target 0.97, pooled): {op_ratio:.1%} of GPT-4 accuracy at {op_saving:.1%} saved "
            f"{'PASS' if op_ratio >= 0.97 and op_saving >= 0.5 else 'FAIL'}"
        )
        for task, s in secs.items():
            ours, zero, knn = s[SWEEP]["aiq"], s[ZERO]["aiq"], s[KNN]["aiq"]
            ok = ours > zero and ours > knn
            lines.append(
                f"  {task}: AIQ {ours:.4f} vs zero {zero:.4f} ({ours - zero:+.4f}), "
                f"kNN-20 {knn:.4f} ({ours - knn:+.4f}) {'PASS' if ok else 'FAIL'}"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0", help="cross-validation seeds to train with, comma-separated")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    embed = cached(minilm_embed, WORK)
    train, test = load("train"), load("test")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}")
    print(f"train {len(train)} prompts, test {len(test)} prompts, {len(train.models)} models")
    runs = [quality(int(s), train, test, embed) for s in args.seeds.split(",")]
    result: dict[str, object] = {"date": f"{datetime.now(UTC):%Y-%m-%d}", "machine": machine(), "runs": runs}
    if not args.no_latency:
        result["latency"] = latency(test)
    print("\n" + "\n".join(verdict(runs)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
