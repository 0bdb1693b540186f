#!/usr/bin/env python3
"""How many of the cache's "false hits" are really wrong? A blind audit of the standard mode.

The benchmark's scoring rule (shared/data/README.md) counts a hit as false unless it returns the
pair's own ``a`` of a labelled duplicate (or the same text). QQP's labels are noisy and a ``b`` often
has a paraphrase among the *other* ``a``s, so part of those false hits are right answers. This tool
measures how large that part is, with a person (or any annotator) who does not know which pairs
are which:

    audit.py sample --split test     # writes audit/<split>.jsonl (blind) and audit/<split>-key.json
    # the annotator writes audit/<split>-judged.jsonl: {"id", "verdict": "same"|"different", "why"}
    audit.py score --split test      # precision by the rule and estimated by the audit, per threshold
    audit.py surface --split test    # the rule on hits that differ only in case, punctuation, articles

``sample`` replays standard mode with the shipped verifier (the same candidates and first stage as
the cache: ``sophia.cache.training.train.judge_all``), then draws 40 distinct false hits from each score band
(0.5-0.65, 0.65-0.8, 0.8-1), plus two controls: 20 hits the rule counts correct (labelled
duplicates) and 20 labelled non-duplicate pairs. Everything is shuffled with a fixed seed; the key
(group, score, labels) stays in a separate file. On ``dev`` it uses the held-out 15% that the
verifier's threshold is chosen on.

``score`` estimates the audited precision at each threshold: exact repeats count as right, a
rule-correct hit is right with the rate at which the annotator confirmed labelled duplicates, and a
rule-false hit with the rate at which the annotator judged its score band's sample "same". The
bracket is that estimate with each band's rate moved by one standard error (and, for the upper
end, every labelled duplicate taken as right).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

from sophia.cache import rewrites, train
from sophia.cache.training.dataset import Embeddings, Pair, load_pairs, normalise
from sophia.cache.verifier import WEIGHTS_FILE, default_verifier

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORK = ROOT / "benchmarks" / ".work" / "cache"
DATA = ROOT.parent / "shared" / "data" / "cache" / "qqp_pairs.jsonl.gz"
OUT = HERE / "audit"
BANDS = ((0.5, 0.65), (0.65, 0.8), (0.8, 1.01))
PER_BAND, CONTROLS, SEED = 40, 20, 20261126
THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.87, 0.9)


def replayed(split: str) -> Path:
    """Where the replay of the shipped verifier is kept (git-ignored; replayed again when missing)."""
    WORK.mkdir(parents=True, exist_ok=True)
    return WORK / f"audit-{split}-{verifier_digest()}-replay.json"


def verifier_digest() -> str:
    """sha256 (first 16 hex digits) of the shipped verifier file: which verifier a sample was drawn with."""
    return hashlib.sha256((resources.files("sophia.cache") / WEIGHTS_FILE).read_bytes()).hexdigest()[:16]


def split_pairs(data: Path, split: str) -> list[Pair]:
    pairs = load_pairs(data, split=split)
    return train.split_dev(pairs, 15)[1] if split == "dev" else pairs


def replay(pairs: list[Pair]) -> list[dict[str, Any]]:
    """Every ``b`` that is not an exact repeat and has a candidate: its best-scored neighbour."""
    texts = sorted({t for p in pairs for t in (p.a, p.b)})
    found = train.replay_standard(default_verifier(), pairs, Embeddings.compute(texts, WORK))
    return [
        {
            "score": float(found["best"][i]),
            "correct": bool(found["correct"][i]),
            "q": p.b,
            "hit": found["hit"][i],
            "own": normalise(found["hit"][i]) == normalise(p.a),
            "dup": p.duplicate,
        }
        for i, p in enumerate(pairs)
        if found["hit"][i]
    ]


def sample(split: str, data: Path) -> None:
    pairs = split_pairs(data, split)
    rows = replay(pairs)
    rng = random.Random(SEED)
    items: list[dict[str, Any]] = []
    for lo, hi in BANDS:
        distinct: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:  # in file order, each (question, hit) once
            if lo <= r["score"] < hi and not r["correct"]:
                distinct.setdefault((r["q"], r["hit"]), r)
        chosen = rng.sample(list(distinct.values()), min(PER_BAND, len(distinct)))
        items += [{**r, "group": f"false {lo}-{hi}"} for r in chosen]
    good = [
        r
        for r in rows
        if r["correct"] and r["score"] >= BANDS[0][0] and normalise(r["q"]) != normalise(r["hit"])
    ]
    items += [{**r, "group": "control: labelled duplicate"} for r in rng.sample(good, CONTROLS)]
    negatives = [p for p in pairs if not p.duplicate and normalise(p.a) != normalise(p.b)]
    items += [
        {"q": p.b, "hit": p.a, "group": "control: labelled non-duplicate"}
        for p in rng.sample(negatives, CONTROLS)
    ]
    rng.shuffle(items)
    OUT.mkdir(exist_ok=True)
    blind = [{"id": i, "question_1": it["q"], "question_2": it["hit"]} for i, it in enumerate(items, start=1)]
    (OUT / f"{split}.jsonl").write_text("".join(json.dumps(b) + "\n" for b in blind))
    (OUT / f"{split}-key.json").write_text(
        json.dumps([{"id": i, **it} for i, it in enumerate(items, start=1)], indent=1)
    )
    replayed(split).write_text(json.dumps(rows))
    (OUT / f"{split}-verifier.txt").write_text(verifier_digest() + "\n")
    print(f"{len(blind)} pairs to judge in {OUT / f'{split}.jsonl'}")


def score(split: str, data: Path) -> None:
    pairs = split_pairs(data, split)
    cached = replayed(split)
    drawn_with = (OUT / f"{split}-verifier.txt").read_text().strip()
    if drawn_with != verifier_digest():
        print(
            f"the sample was drawn with another verifier ({drawn_with}, now {verifier_digest()}): its bands'"
            " rates are applied to this verifier's hits, an approximation; draw a new sample to audit it\n"
        )
    if not cached.is_file():
        cached.write_text(json.dumps(replay(pairs)))
    rows = json.loads(cached.read_text())
    key = {k["id"]: k for k in json.loads((OUT / f"{split}-key.json").read_text())}
    judged = [
        json.loads(line) for line in (OUT / f"{split}-judged.jsonl").read_text().splitlines() if line.strip()
    ]
    if sorted(j["id"] for j in judged) != sorted(key):
        sys.exit("the judgements do not cover the sample exactly once each")
    groups: dict[str, list[bool]] = defaultdict(list)
    for j in judged:
        groups[key[j["id"]]["group"]].append(j["verdict"] == "same")
    for group, verdicts in sorted(groups.items()):
        print(
            f"{group:34} n={len(verdicts):3}  judged same {sum(verdicts):3} ({sum(verdicts) / len(verdicts):.0%})"
        )
    rate = {
        band: sum(groups[f"false {band[0]}-{band[1]}"]) / len(groups[f"false {band[0]}-{band[1]}"])
        for band in BANDS
    }
    confirmed = sum(groups["control: labelled duplicate"]) / len(groups["control: labelled duplicate"])
    a_set = {p.a.strip() for p in pairs}
    exact = sum(p.b.strip() in a_set for p in pairs)
    exact_dup = sum(p.b.strip() in a_set and p.duplicate for p in pairs)
    duplicates = sum(p.duplicate for p in pairs)

    def band_of(s: float) -> tuple[float, float]:
        return next(b for b in BANDS if b[0] <= s < b[1])

    def precision(
        t: float, rates: dict[tuple[float, float], float], dup_ok: float
    ) -> tuple[int, float, float, float]:
        served = [r for r in rows if r["score"] >= t]
        hits = exact + len(served)
        right = sum(r["correct"] for r in served)
        recall = (exact_dup + sum(r["correct"] and r["dup"] for r in served)) / duplicates
        audited = exact + right * dup_ok + sum(rates[band_of(r["score"])] for r in served if not r["correct"])
        return hits, (exact + right) / hits, recall, audited / hits

    def moved(sign: int) -> dict[tuple[float, float], float]:
        n = PER_BAND
        return {b: min(1.0, max(0.0, v + sign * math.sqrt(v * (1 - v) / n))) for b, v in rate.items()}

    print(f"\n{split}: {len(pairs):,} pairs, {duplicates:,} duplicates, {exact:,} exact repeats")
    print("| threshold | hits | precision (rule) | recall | precision (audited) | bracket |")
    print("|---|---|---|---|---|---|")
    for t in sorted({*THRESHOLDS, default_verifier().threshold}):
        hits, rule, recall, audited = precision(t, rate, confirmed)
        low, high = precision(t, moved(-1), confirmed)[3], precision(t, moved(1), 1.0)[3]
        print(f"| {t:.2f} | {hits:,} | {rule:.1%} | {recall:.1%} | {audited:.1%} | {low:.1%}-{high:.1%} |")


def surface(split: str, data: Path) -> None:
    """The rule on the surest hits there are: questions that differ only in case, punctuation or articles.

    No judge needed: such a pair asks the same question. How often do QQP's labels say so, and how
    often does the scoring rule count such a hit (the ``b``'s only stored match up to those
    differences) as correct? A verifier can be no more precise, by the rule, than the rule is here.
    """
    pairs = load_pairs(data, split=split)
    by_surface: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for p in pairs:
        by_surface[rewrites.surface(p.a)].add(normalise(p.a))
    stored = {normalise(p.a) for p in pairs}
    own = own_dup = hits = correct = 0
    for p in pairs:
        if normalise(p.a) != normalise(p.b) and rewrites.surface(p.a) == rewrites.surface(p.b):
            own, own_dup = own + 1, own_dup + p.duplicate
        matches = by_surface.get(rewrites.surface(p.b), set())
        if normalise(p.b) in stored or len(matches) != 1:
            continue  # the exact layer answers, or no single match
        hits += 1
        correct += p.duplicate and normalise(p.a) in matches
    print(f"{split}: {own:,} pairs whose two questions differ only in case, punctuation or articles;")
    print(f"  QQP labels {own_dup:,} of them duplicates ({own_dup / max(own, 1):.1%})")
    print(f"  {hits:,} b's whose one stored match is such a text: the rule counts {correct:,} correct")
    print(f"  ({correct / max(hits, 1):.1%}); the rest are the pair's non-duplicate a, or another pair's a")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("sample", "score", "surface"))
    parser.add_argument("--split", choices=("test", "dev"), default="test")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    {"sample": sample, "score": score, "surface": surface}[args.step](args.split, args.data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
