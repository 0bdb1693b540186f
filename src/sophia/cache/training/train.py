"""Rebuild the verifier (a cross-encoder) from the dev split of the QQP pairs, never the test split.

    make cache-verifier
    # = python -m sophia.cache.training.train --data ../shared/data/cache/qqp_pairs.jsonl.gz \\
    #       --out src/sophia/cache/verifier.npz --work benchmarks/.work/cache \\
    #       --torch-python benchmarks/.work/torch-venv/bin/python

Three steps, all deterministic (fixed seeds, sorted inputs, stable hashes):

1. **prepare** (numpy): split dev by a stable hash of its components (texts linked by any pair)
   into a training part and a held-out part (``--holdout`` percent, 15); build the training
   pairs from the training part: every labelled pair, plus negatives mined the way the cache
   meets them: each ``b`` against its nearest ``a``s and each ``a`` against its nearest other
   ``a``s (gateway mode), above the verifier's cosine floor, that are neither the same question
   nor labelled duplicates (neighbours that the labels link only through a chain are left out:
   they are mostly paraphrases). Each pair is put in a stable random order (training is then
   symmetric in expectation) and tokenised as ``[CLS] a [SEP] b [SEP]``; a stable sample of
   ``--max-pairs`` (76,000) is kept, to fit the CPU budget. ``--rewrites`` (10,000) adds that
   many reworded and as many altered copies of training questions (``sophia.cache.training.rewrites``:
   "how do I" / "how can I" the same, "add" / "remove" not; all kept in the sample) and leaves
   out mined neighbours that differ from their query only in case, punctuation or articles.
   ``--both-orders`` adds each labelled pair of the sample a second time, the other way round.
2. **fit** (torch, in a throwaway venv outside the project's dependencies: ``cross_fit.py``):
   fine-tune the first ``--layers`` (4) MiniLM blocks but the bottom ``--frozen`` (0) (the
   embeddings stay as shipped) and a linear head, the mined negatives' loss weighted by
   ``--mined-weight`` (1; 0 leaves them out): ``--rounds`` (2) runs of ``--epochs`` (1) each,
   every round starting from the last one's weights with a fresh learning-rate schedule and
   another shuffle.
3. **calibrate** (numpy, the run-time code): write the file as shipped (block matrices in
   ``--storage``: float16, or int8 for a 6-block model to stay under 20 MB), replay the
   benchmark's protocol on the held-out part, standard and gateway mode, with the shipped
   two-stage verifier (``--symmetric``: each pair scored in both orders, the logits averaged,
   recorded in the file), and take the lowest threshold whose precision reaches
   ``--target-precision`` (standard) and ``--target-gateway`` (gateway). Every held-out
   operating point is stored in the file.

Steps 1 and 3 run in the project's venv, step 2 in ``--torch-python`` (``torch==2.13.0``, CPU).
The defaults rebuild the shipped verifier: about 11 minutes a round on 2 cores, some 30 minutes
in all with the dev embeddings cached in ``--work`` (7-12 more to embed dev once); all 6 blocks
(``--layers 6 --storage int8``) take about 14 minutes an epoch.
Rebuilding gives the same pairs; the weights agree up to float32 summation order (torch's CPU
kernels may differ in the last bits between machines).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from sophia.cache.cross_encoder import pack
from sophia.cache.training.dataset import Embeddings, Pair, load_pairs, normalise, stable, top_k
from sophia.cache.training.pairs import components
from sophia.cache.training.rewrites import rewrite_pairs, substitutions, surface
from sophia.cache.verifier import FORMAT, WEIGHTS_FILE, Verifier
from sophia.embedder.minilm import default_model_dir, get_minilm

SEED = 20240
#: the recipe of the shipped verifier (each a command-line option): the first 4 MiniLM blocks,
#: all fine-tuned, two rounds of one epoch, mined negatives at full weight, 10,000 reworded and
#: 10,000 altered training questions in a sample of 76,000 pairs, both orders averaged, float16
#: storage. All 6 blocks (--layers 6, int8 storage to stay under 20 MB) were tried: no better on
#: the held-out part (benchmarks/cache/README.md).
LAYERS, FROZEN = 4, 0
EPOCHS, ROUNDS, LR, HEAD_LR = 1.0, 2, 1e-4, 1e-3
MINED_WEIGHT = 1.0
REWRITES, MAX_PAIRS = 10_000, 76_000
SYMMETRIC = True
STORAGE = "float16"
FLOOR, JUDGED = 0.75, 2
MINED_K = 2
MAX_TRAIN_TOKENS = 128
CANDIDATES, MIN_COSINE = 4, 0.6  # the cache's defaults (CacheSettings)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def split_dev(dev: list[Pair], holdout_pct: int) -> tuple[list[Pair], list[Pair]]:
    """Training part and held-out part of dev, whole components (linked texts) on one side."""
    comp = components(dev)
    held = [stable(str(comp[normalise(p.a)]), "holdout") % 100 < holdout_pct for p in dev]
    return [p for p, h in zip(dev, held, strict=True) if not h], [
        p for p, h in zip(dev, held, strict=True) if h
    ]


def training_pairs(
    part: list[Pair], emb: Embeddings, k: int = MINED_K, rewrites: int = REWRITES
) -> list[tuple[str, str, float, int]]:
    """(left, right, label, source): source 0 labelled, 1 b->a neighbour, 2 a->a neighbour, 3 rewrite.

    A mined neighbour with the same surface as its query (``rewrites.surface``: only case,
    punctuation or articles differ) is left out when ``rewrites`` is on: it is no negative.
    """
    direct = {frozenset((normalise(p.a), normalise(p.b))): p.duplicate for p in part}
    linked = components(part, duplicates_only=True)
    seen: set[frozenset[str]] = set()
    out: list[tuple[str, str, float, int]] = []

    def add(x: str, y: str, source: int) -> None:
        nx, ny = normalise(x), normalise(y)
        key = frozenset((nx, ny))
        if nx == ny or key in seen:
            return
        label = direct.get(key)
        if label is None and linked.get(nx, -1) == linked.get(ny, -2):
            return  # linked through a chain of duplicate labels: most likely the same question
        if label is None and rewrites and surface(x) == surface(y):
            return  # only case, punctuation or articles differ: no negative
        seen.add(key)
        out.append((x, y, float(bool(label)), source))

    for p in part:
        add(p.a, p.b, 0)
    a_texts = sorted({p.a for p in part})
    a_emb = emb.of(a_texts)
    b_texts = sorted({p.b for p in part})
    for kind, queries, q_emb, extra in ((1, b_texts, emb.of(b_texts), 0), (2, a_texts, a_emb, 1)):
        idx, sims = top_k(q_emb, a_emb, k + extra)
        for i, text in enumerate(queries):
            for j, s in zip(idx[i], sims[i], strict=True):
                if s >= FLOOR:
                    add(text, a_texts[j], kind)
    swaps = substitutions((p.a, p.b, p.duplicate) for p in part) if rewrites else None
    for x, y, label in rewrite_pairs(a_texts + b_texts, rewrites, swaps):
        key = frozenset((normalise(x), normalise(y)))
        if key not in seen:
            seen.add(key)
            out.append((x, y, label, 3))
    return out


def prepare(
    part: list[Pair],
    emb: Embeddings,
    work: Path,
    max_pairs: int,
    both_orders: bool = False,
    rewrites: int = REWRITES,
) -> Path:
    from tokenizers import Tokenizer

    pairs = training_pairs(part, emb, rewrites=rewrites)
    if len(pairs) > max_pairs:  # a stable random sample (rewrites always kept), to fit the CPU budget
        kept = [p for p in pairs if p[3] == 3]
        pairs = [p for p in pairs if p[3] != 3]
        max_pairs = max(0, max_pairs - len(kept))
        ranked = sorted(range(len(pairs)), key=lambda i: stable(pairs[i][0] + "\n" + pairs[i][1], "sample"))
        pairs = [pairs[i] for i in sorted(ranked[:max_pairs])] + kept
    tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.no_padding()
    ordered = [(y, x) if stable(x + "\n" + y, "order") % 2 else (x, y) for x, y, _, _ in pairs]
    if both_orders:  # each labelled pair the other way round too, after the sample
        mirrored = [i for i, p in enumerate(pairs) if p[3] == 0]
        ordered += [(ordered[i][1], ordered[i][0]) for i in mirrored]
        pairs = pairs + [pairs[i] for i in mirrored]
    encodings = tokenizer.encode_batch(ordered)
    keep = [i for i, e in enumerate(encodings) if len(e.ids) <= MAX_TRAIN_TOKENS]
    lengths = np.array([len(encodings[i].ids) for i in keep])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    label = np.array([pairs[i][2] for i in keep], dtype=np.float32)
    source = np.array([pairs[i][3] for i in keep], dtype=np.int8)
    path = work / "cross-train.npz"
    np.savez(
        path,
        ids=np.concatenate([encodings[i].ids for i in keep]).astype(np.int32),
        types=np.concatenate([encodings[i].type_ids for i in keep]).astype(np.int8),
        offsets=offsets,
        label=label,
        weight=np.ones(len(keep), dtype=np.float32),
        source=source,
        train=np.ones(len(keep), dtype=bool),
    )
    counts = {s: int((source == s).sum()) for s in (0, 1, 2, 3)}
    log(
        f"{len(keep):,} training pairs ({int(label.sum()):,} positive; by source {counts}), {lengths.sum():,} tokens"
    )
    return path


def fit(torch_python: Path, work_file: Path, out: Path, args: argparse.Namespace) -> None:
    """``args.rounds`` runs of ``args.epochs`` each, every round from the last one's weights (fresh schedule)."""
    script = Path(__file__).with_name("cross_fit.py")
    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    for r in range(args.rounds):
        cmd = [str(torch_python), str(script), str(work_file), str(default_model_dir()), str(out)]
        cmd += ["--layers", str(args.layers), "--frozen", str(args.frozen), "--epochs", str(args.epochs)]
        cmd += ["--lr", str(args.lr), "--head-lr", str(args.head_lr)]
        cmd += ["--mined-weight", str(args.mined_weight)]
        cmd += ["--threads", threads, "--seed", str(SEED + r)]
        init = out if r else args.init
        cmd += ["--init", str(init)] if init is not None else []
        cmd += ["--checkpoints"] if args.checkpoints else []
        log(" ".join(cmd))
        subprocess.run(cmd, check=True, env=env)


# -- calibration: the benchmark's protocol replayed on the held-out part ------------------------------


def judge_all(
    verifier: Verifier,
    queries: list[str],
    q_emb: np.ndarray,
    cands: list[list[int]],
    texts: list[str],
    emb: np.ndarray,
) -> list[np.ndarray]:
    """``verifier.scores`` of each query against its candidates (indices into ``texts``), batched."""
    plans = [
        verifier.plan(q, q_emb[i], [texts[j] for j in c], emb[c] if c else emb[:0])
        for i, (q, c) in enumerate(zip(queries, cands, strict=True))
    ]
    work = [(qi, ci) for qi, (_, todo) in enumerate(plans) for ci in todo]
    probs = verifier.model.probabilities([(queries[qi], texts[cands[qi][ci]]) for qi, ci in work])
    out = [fixed.copy() for fixed, _ in plans]
    for (qi, ci), p in zip(work, probs, strict=True):
        out[qi][ci] = p
    return out


def replay_standard(verifier: Verifier, part: list[Pair], emb: Embeddings) -> dict[str, np.ndarray]:
    """Best score and correctness of every ``b`` looked up among the part's ``a``s.

    ``hit`` is the text of the ``a`` that scored best ("" for an exact repeat, which the exact
    layer answers with score 2, or for a ``b`` with no candidate, score 0).
    """
    a_texts = sorted({p.a for p in part})
    a_set = {t.strip() for t in a_texts}
    a_emb = emb.of(a_texts)
    queries = [p.b for p in part]
    q_emb = emb.of(queries)
    idx, sims = top_k(q_emb, a_emb, CANDIDATES)
    cands = [
        [int(j) for j, s in zip(idx[i], sims[i], strict=True) if s >= MIN_COSINE] for i in range(len(part))
    ]
    scores = judge_all(verifier, queries, q_emb, cands, a_texts, a_emb)
    best = np.zeros(len(part), np.float32)
    correct = np.zeros(len(part), bool)
    hits = np.full(len(part), "", dtype=object)
    for i, p in enumerate(part):
        if p.b.strip() in a_set:
            best[i], correct[i] = 2.0, True  # the exact layer answers
            continue
        if not cands[i]:
            continue
        j = int(np.argmax(scores[i]))
        best[i], hits[i] = scores[i][j], a_texts[cands[i][j]]
        hit = normalise(hits[i])
        correct[i] = hit == normalise(p.b) or (p.duplicate and hit == normalise(p.a))
    return {"best": best, "correct": correct, "duplicate": np.array([p.duplicate for p in part]), "hit": hits}


def replay_gateway(
    verifier: Verifier, part: list[Pair], emb: Embeddings, thresholds: np.ndarray
) -> list[dict[str, float]]:
    """Gateway mode (look up, store on a miss; the ``a``s then the ``b``s) at each threshold.

    Approximation that keeps it to one cross-encoder pass: a lookup's candidates are its
    ``CANDIDATES`` nearest *earlier* questions, of which those stored (not answered from the
    cache themselves) are judged.
    """
    seq = [p.a for p in part] + [p.b for p in part]
    n = len(part)
    vecs = emb.of(seq)
    near: list[list[int]] = []
    for start in range(0, len(seq), 2048):
        sims = vecs[start : start + 2048] @ vecs.T
        for r in range(sims.shape[0]):
            t = start + r
            row = sims[r, :t]
            if t == 0:
                near.append([])
                continue
            top = np.argsort(-row, kind="stable")[:CANDIDATES]
            near.append([int(j) for j in top if row[j] >= MIN_COSINE])
    scores = judge_all(verifier, seq, vecs, near, seq, vecs)
    first_of: dict[str, int] = {}
    for t, text in enumerate(seq):
        first_of.setdefault(text.strip(), t)
    points = []
    for thr in thresholds:
        stored = np.zeros(len(seq), bool)
        hits = good = 0
        for t, text in enumerate(seq):
            e = first_of[text.strip()]
            if e < t and stored[e]:
                hits, good = hits + 1, good + 1
                continue
            live = [(s, j) for s, j in zip(scores[t], near[t], strict=True) if stored[j]]
            s, j = max(live, default=(0.0, -1))
            if j >= 0 and s >= thr:
                hits += 1
                hit = normalise(seq[j])
                p = part[t % n]
                own = normalise(p.a if t < n else p.b)
                good += hit == own or (t >= n and p.duplicate and hit == normalise(p.a))
            else:
                stored[t] = True
        points.append(
            {"threshold": round(float(thr), 4), "precision": good / max(hits, 1), "hit_rate": hits / len(seq)}
        )
    return points


def standard_points(replay: dict[str, np.ndarray], thresholds: np.ndarray) -> list[dict[str, float]]:
    points = []
    for t in thresholds:
        hit = replay["best"] >= t
        good = hit & replay["correct"]
        points.append(
            {
                "threshold": round(float(t), 4),
                "precision": float(good.sum() / max(hit.sum(), 1)),
                "recall": float((good & replay["duplicate"]).sum() / replay["duplicate"].sum()),
                "hit_rate": float(hit.mean()),
            }
        )
    return points


def precision_at_recall(points: list[dict[str, float]], recall: float) -> dict[str, float] | None:
    """The strictest standard-mode point that still reaches ``recall`` (None if none does)."""
    return max((p for p in points if p["recall"] >= recall), key=lambda p: p["threshold"], default=None)


def write(out: Path, trained: dict[str, np.ndarray], info: dict[str, Any], storage: str = STORAGE) -> None:
    """The verifier file: block matrices in ``storage`` (float16 or int8), the head in float32, ``info`` as JSON."""
    arrays = pack(trained, storage)
    arrays["info"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, allow_pickle=False, **arrays)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sophia.cache.training.train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", required=True, type=Path, help="qqp_pairs.jsonl.gz")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name(WEIGHTS_FILE))
    parser.add_argument(
        "--work", type=Path, default=Path("benchmarks/.work/cache"), help="embeddings and intermediate files"
    )
    parser.add_argument("--torch-python", type=Path, default=Path("benchmarks/.work/torch-venv/bin/python"))
    parser.add_argument("--steps", default="prepare,fit,calibrate")
    parser.add_argument("--max-pairs", type=int, default=MAX_PAIRS, help="training pairs (a stable sample)")
    parser.add_argument(
        "--holdout", type=int, default=15, help="percent of dev held out to choose the threshold"
    )
    parser.add_argument(
        "--trained",
        type=Path,
        default=None,
        help="the fitted weights (float32, written by fit, read by calibrate; default WORK/cross-trained.npz)",
    )
    parser.add_argument(
        "--init", type=Path, default=None, help="start the first round from these fitted weights"
    )
    parser.add_argument("--layers", type=int, default=LAYERS, help="MiniLM blocks the cross-encoder reads")
    parser.add_argument("--frozen", type=int, default=FROZEN, help="bottom blocks kept as shipped")
    parser.add_argument("--epochs", type=float, default=EPOCHS)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="warm restarts of --epochs each")
    parser.add_argument("--lr", type=float, default=LR, help="peak learning rate of the blocks")
    parser.add_argument("--head-lr", type=float, default=HEAD_LR)
    parser.add_argument(
        "--mined-weight", type=float, default=MINED_WEIGHT, help="loss weight of mined negatives (0: none)"
    )
    parser.add_argument(
        "--both-orders", action="store_true", help="train on each labelled pair both ways round"
    )
    parser.add_argument(
        "--rewrites",
        type=int,
        default=REWRITES,
        help="add up to N reworded (positive) and N altered (negative) copies of training questions",
    )
    parser.add_argument(
        "--symmetric",
        action=argparse.BooleanOptionalAction,
        default=SYMMETRIC,
        help="score each pair in both orders and average the logits (recorded in the file)",
    )
    parser.add_argument("--checkpoints", action="store_true", help="also keep the weights after each epoch")
    parser.add_argument(
        "--storage", choices=("int8", "float16"), default=STORAGE, help="block matrices in the file"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--target-precision", type=float, default=0.96)
    parser.add_argument("--target-gateway", type=float, default=0.94)
    args = parser.parse_args(argv)
    steps = set(args.steps.split(","))
    started = time.perf_counter()

    dev = load_pairs(args.data, split="dev")
    texts = sorted({t for p in dev for t in (p.a, p.b)})
    emb = Embeddings.compute(texts, args.work)
    train_part, held = split_dev(dev, args.holdout)
    log(f"{len(dev):,} dev pairs: {len(train_part):,} to train on, {len(held):,} held out")
    args.work.mkdir(parents=True, exist_ok=True)
    work_file = args.work / "cross-train.npz"
    trained_file = args.trained or args.work / "cross-trained.npz"
    if "prepare" in steps:
        prepare(train_part, emb, args.work, args.max_pairs, args.both_orders, args.rewrites)
    if "fit" in steps:
        fit(args.torch_python, work_file, trained_file, args)
    if "calibrate" not in steps:
        return 0
    with np.load(trained_file) as data:
        trained = {k: data[k] for k in data.files}
    info: dict[str, Any] = {
        "format": FORMAT,
        "layers": args.layers,
        "frozen": args.frozen,
        "floor": FLOOR,
        "judged": JUDGED,
        "threshold": 0.5,
        "seed": SEED,
        "epochs": args.epochs,
        "rounds": args.rounds,
        "lr": args.lr,
        "head_lr": args.head_lr,
        "mined_weight": args.mined_weight,
        "both_orders": args.both_orders,
        "rewrites": args.rewrites,
        "symmetric": args.symmetric,
        "max_pairs": args.max_pairs,
        "init": args.init.name if args.init is not None else None,
        "storage": args.storage,
        "holdout_percent": args.holdout,
    }
    write(args.out, trained, info, args.storage)  # as shipped, so that calibration sees the shipped model
    verifier = Verifier.load(args.out, get_minilm())
    grid = np.round(np.arange(0.05, 0.9951, 0.01), 4)
    log("calibrating on the held-out part: standard mode …")
    std = standard_points(replay_standard(verifier, held, emb), grid)
    log("gateway mode …")
    gw = replay_gateway(verifier, held, emb, grid)
    chosen = next(
        (
            s
            for s, g in zip(std, gw, strict=True)
            if s["precision"] >= args.target_precision and g["precision"] >= args.target_gateway
        ),
        std[-1],
    )
    info.update(
        threshold=chosen["threshold"],
        target_precision=args.target_precision,
        target_gateway=args.target_gateway,
        dev_holdout_standard=std,
        dev_holdout_gateway=gw,
        build_seconds=round(time.perf_counter() - started),
    )
    write(args.out, trained, info, args.storage)
    gw_chosen = next(g for g in gw if g["threshold"] == chosen["threshold"])
    log(f"held-out dev at the chosen threshold: standard {chosen}, gateway {gw_chosen}")
    log(f"held-out dev, the strictest point with 40% recall: {precision_at_recall(std, 0.40)}")
    log(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
