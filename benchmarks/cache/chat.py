"""The verifier on chat questions written for Sophia's users, not Quora titles.

``chat_pairs.jsonl`` holds 30 rewordings ("same": true) and 30 near misses ("same": false)
written for this check (SaaS support, property management, sales data, programming, everyday
questions); none comes from the benchmark data and none was used to train or tune a verifier.
Each pair is judged the way a lookup with one stored entry judges it (cosine floor, guard,
cross-encoder), and this prints how many of each kind are served at the verifier's default
threshold and at the benchmark's balanced point 0.5.

    .venv/bin/python benchmarks/cache/chat.py [--verifier path/to/verifier.npz] [--runtime numpy] [--show]

Embeddings and pairs run on the runtime the gateway uses (``sophia.embedder.get_encoder``: onnxruntime
int8 when installed), or on the numpy float32 reference with ``--runtime numpy``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sophia.cache.verifier import Verifier
from sophia.embedder import RUNTIMES, get_encoder

HERE = Path(__file__).resolve().parent


def load(path: Path = HERE / "chat_pairs.jsonl") -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def score(verifier: Verifier, rows: list[dict[str, object]]) -> np.ndarray:
    encoder = verifier.model.encoder  # the runtime the verifier's pairs run on
    out = np.empty(len(rows), np.float32)
    for i, row in enumerate(rows):
        stored, asked = str(row["stored"]), str(row["asked"])
        vec = encoder.encode([stored, asked])
        out[i] = verifier.scores(asked, vec[1], [stored], vec[:1])[0]
    return out


def summary(scores: np.ndarray, same: np.ndarray, thresholds: list[float]) -> list[dict[str, object]]:
    return [
        {
            "threshold": t,
            "rewordings_served": f"{int((scores[same] >= t).sum())}/{int(same.sum())}",
            "near_misses_served": f"{int((scores[~same] >= t).sum())}/{int((~same).sum())}",
        }
        for t in thresholds
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--verifier", type=Path, default=None, help="a verifier file (default: the shipped one)"
    )
    parser.add_argument("--pairs", type=Path, default=HERE / "chat_pairs.jsonl")
    parser.add_argument("--show", action="store_true", help="print every pair's score")
    parser.add_argument(
        "--runtime", choices=RUNTIMES, default="auto", help="the MiniLM runtime (default: auto)"
    )
    args = parser.parse_args()
    rows = load(args.pairs)
    verifier = Verifier.load(args.verifier, get_encoder(runtime=args.runtime))
    scores = score(verifier, rows)
    same = np.array([bool(r["same"]) for r in rows])
    if args.show:
        for row, s in zip(rows, scores, strict=True):
            print(f"{s:.3f} {'same' if row['same'] else 'diff'}  {row['stored']!r} / {row['asked']!r}")
    for line in summary(scores, same, sorted({verifier.threshold, 0.5})):
        print(json.dumps(line))


if __name__ == "__main__":
    main()
