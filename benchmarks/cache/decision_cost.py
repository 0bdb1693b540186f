#!/usr/bin/env python3
"""What the wrong-answer budget adds to a lookup: the decision on a warm alias (20,000 rows), and a refit.

    .venv/bin/python benchmarks/cache/decision_cost.py

The decision is what runs on the request path for an alias with a budget (features of the judged
candidates, the upper bound of each, the serving line); the refit runs in a worker thread every
``sync_interval``. Times are per call, median and p99 of 20,000 (decisions) or 20 (refits).
"""

from __future__ import annotations

import json
import time

import numpy as np

from sophia.cache.observations import Observation
from sophia.cache.risk import RiskModel, candidate_features


def rows(n: int, seed: int = 3) -> list[Observation]:
    rng = np.random.default_rng(seed)
    z = rng.uniform(-6, 8, n)
    wrong = rng.random(n) < 1 / (1 + np.exp(z - 1))
    return [
        Observation("a", "ns", "e", "shadow", 0.0, float(a), 0.85, 4.0, 0.2, int(b))
        for a, b in zip(z, wrong, strict=True)
    ]


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
        }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
