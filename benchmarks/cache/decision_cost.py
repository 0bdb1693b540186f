#!/usr/bin/env python3
"""What the wrong-answer budget adds to a lookup: the decision on a warm alias (20,000 rows), and a refit.

    .venv/bin/python benchmarks/cache/decision_cost.py

The decision is what runs on the request path for an alias with a budget (features of the judged
candidates, the upper bound of each, the serving line); the refit runs in a worker thread every
``sync_interval``. Times are per call, median and p99 of 20,000 (decisions) or 20 (refits).
``learner_decide_us``: the whole per-lookup decision as the cache calls it (``Learner.decide``: features,
the rule, the backstop's audit of 500 checks, the check draw), on the same warm alias.
"""

from __future__ import annotations

import json
import time

import numpy as np

from sophia.cache.entries import Entry
from sophia.cache.learning import Learner
from sophia.cache.observations import Observation
from sophia.cache.risk import RiskModel, candidate_features
from sophia.settings.cache import CacheSettings, ModelCacheSettings


def rows(n: int, seed: int = 3) -> list[Observation]:
    rng = np.random.default_rng(seed)
    z = rng.uniform(-6, 8, n)
    wrong = rng.random(n) < 1 / (1 + np.exp(z - 1))
    return [
        Observation("a", "ns", "e", "shadow", 0.0, float(a), 0.85, 4.0, 0.2, int(b))
        for a, b in zip(z, wrong, strict=True)
    ]


def learner_decide(mode: str) -> dict[str, float]:
    """``Learner.decide`` per call on a warm alias whose audit holds 500 checks (1% wrong: not tripped)."""
    settings = CacheSettings(models={"a": ModelCacheSettings(max_error_rate=0.05)}, budget_mode=mode)
    learner = Learner(settings, store=None, comparator=None, seed=1)  # type: ignore[arg-type]
    for row in rows(20_000):
        learner.keep(row)
    for i in range(500):
        learner.keep(Observation("a", "ns", "e", "check", 0.0, 6.0, 0.95, 4.0, 0.1, int(i % 100 == 0)))
    learner.risk.model("a").fit()
    entries = [Entry(f"e{i}", "ns", f"x{i}", "q", "a", "t", {}, 0.0, None, True) for i in range(2)]
    rng = np.random.default_rng(5)
    spent = []
    for _ in range(20_000):
        scores = 1 / (1 + np.exp(-rng.uniform(-2, 8, 2)))
        t0 = time.perf_counter()
        learner.decide("a", entries, scores, [0.9, 0.85], np.array([0.1, 0.3]), [0, 1], 0.94, True)
        spent.append(time.perf_counter() - t0)
    us = np.array(spent) * 1e6
    return {"p50": round(float(np.median(us)), 1), "p99": round(float(np.percentile(us, 99)), 1)}


def main() -> int:
    out = {}
    for mode in ("per_hit", "average"):
        model = RiskModel(mode=mode)
        model.add(rows(20_000))
        refits = []
        for _ in range(20):
            model.model("a")._since_fit = 1
            t0 = time.perf_counter()
            model.model("a").fit()
            model.model("a").line(0.05, model.z_c)
            refits.append(time.perf_counter() - t0)
        rng = np.random.default_rng(5)
        decisions = []
        for _ in range(20_000):
            z = rng.uniform(-2, 8, 2)
            t0 = time.perf_counter()
            features = candidate_features(list(z), [0.9, 0.85], [0.1, 0.3])
            model.choose("a", features, 0.05)
            decisions.append(time.perf_counter() - t0)
        us = np.array(decisions) * 1e6
        ms = np.array(refits) * 1e3
        out[mode] = {
            "decision_2_candidates_us": {
                "p50": round(float(np.median(us)), 1),
                "p99": round(float(np.percentile(us, 99)), 1),
            },
            "refit_20000_rows_ms": {"p50": round(float(np.median(ms)), 2), "max": round(float(ms.max()), 2)},
            "learner_decide_us": learner_decide(mode),
        }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
