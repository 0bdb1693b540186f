"""The verifier on the chat pairs of ``benchmarks/cache/chat.py`` (written for Sophia, not QQP).

Pins what benchmarks/cache/README.md reports for the shipped verifier, so that a rebuilt verifier
shows up here and the README is updated with it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from sophia.cache.verifier import default_verifier

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("chat_bench", ROOT / "benchmarks" / "cache" / "chat.py")
assert spec is not None and spec.loader is not None
chat_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(chat_bench)


def test_the_chat_pairs_are_thirty_rewordings_and_thirty_near_misses() -> None:
    rows = chat_bench.load()
    assert sum(r["same"] for r in rows) == 30 and sum(not r["same"] for r in rows) == 30
    assert len({(r["stored"], r["asked"]) for r in rows}) == 60


def test_the_shipped_verifier_serves_no_near_miss_at_its_default() -> None:
    rows = chat_bench.load()
    verifier = default_verifier()
    scores = chat_bench.score(verifier, rows)
    same = np.array([r["same"] for r in rows])
    points = {p["threshold"]: p for p in chat_bench.summary(scores, same, [0.5, verifier.threshold])}
    assert points[verifier.threshold]["near_misses_served"] == "0/30"
    # benchmarks/cache/README.md gives 5/30 for the shipped verifier (the numpy float32 reference). The
    # int8 runtime is one pair off on some onnxruntime releases: a rewording scoring 0.933 on 1.32
    # crossed the 0.94 threshold on 1.31's int8 kernels (6/30), and one at 0.5 moves the same way.
    # Either is the shipped verifier; what must not move is the near misses served.
    assert points[verifier.threshold]["rewordings_served"] in ("5/30", "6/30")
    assert points[0.5]["near_misses_served"] == "1/30"
    assert points[0.5]["rewordings_served"] in ("16/30", "17/30")  # 17 on onnxruntime 1.31, 16 on 1.32
