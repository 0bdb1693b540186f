"""Synthetic routing data for the router tests: CSVs of RouterBench's shape, any number of models.

Two tasks, each prompt a RouterBench-style list literal whose turn is a shared few-shot prefix
plus the question. Questions are about fruit or planets; the cheap models know fruit and not
planets, the expensive ones know both, so a router that reads the question can save money.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FRUIT = ["apple", "banana", "cherry", "mango", "peach", "plum", "grape", "lemon", "melon", "pear"]
PLANETS = ["Mercury", "Venus", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune", "Pluto", "Earth", "Ceres"]
FEW_SHOT = {
    "alpha": "Answer with one word.\n\nQ: What colour is the sky?\nA: blue\n\nQ: What is 2 + 2?\nA: four\n\n",
    "beta": "You are a careful assistant. Reply briefly.\n\nExample: Name a dog breed.\nAnswer: beagle\n\n",
}
SUFFIX = {"alpha": "\nA:", "beta": "\nAnswer:"}


def question(i: int) -> tuple[str, bool]:
    """The i-th question and whether it is about planets (the hard topic)."""
    hard = i % 2 == 1
    kind, topic = ("planet", PLANETS[(i // 2) % 10]) if hard else ("fruit", FRUIT[(i // 2) % 10])
    forms = [
        "What do you know about the {k} {t}?",
        "Tell me one fact about the {k} {t}.",
        "Describe the {k} {t}.",
    ]
    return forms[(i // 20) % 3].format(k=kind, t=topic) + f" ({kind} question {i})", hard


def write_routing_csv(
    path: Path, n_models: int, rows: int, *, seed: int = 0, task_column: bool = True, start: int = 0
) -> list[str]:
    """Write a CSV; returns the model names (cheapest first, the last one strongest)."""
    rng = np.random.default_rng(seed)
    models = [f"vendor{j}/model-{j}" for j in range(n_models)]
    header = ["sample_id", "prompt"] + (["eval_name"] if task_column else [])
    header += [f"{m}|correct" for m in models] + [f"{m}|cost_usd" for m in models]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in range(start, start + rows):
            task = "alpha" if r % 3 else "beta"
            text, hard = question(r)
            prompt = repr([FEW_SHOT[task] + "Q: " + text + SUFFIX[task]])
            correct, cost = [], []
            for j in range(n_models):
                strength = (j + 1) / n_models  # 0..1, the last model is the strongest
                p = 0.92 if not hard else 0.1 + 0.85 * strength**2
                correct.append(float(rng.random() < p))
                cost.append(1e-5 * (1 + 30 * strength**3) * (1 + len(prompt) / 500))
            row = [f"s{r}", prompt] + ([task] if task_column else [])
            writer.writerow(row + [f"{c:.0f}" for c in correct] + [f"{c:.8f}" for c in cost])
    return models


def fake_embed(texts: Sequence[str]) -> np.ndarray:
    """A deterministic stand-in encoder: words hashed into 384 dims, L2-normalised (topic-aware)."""
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().replace("?", " ").replace(".", " ").split():
            h = int.from_bytes(hashlib.sha1(word.encode()).digest()[:4], "little")
            out[i, h % 384] += 1.0
        out[i] /= max(float(np.linalg.norm(out[i])), 1e-9)
    return out
