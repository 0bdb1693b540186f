"""MiniLM on onnxruntime int8 against the numpy float32 reference: same neighbours, same verdicts, how fast.

    .venv/bin/python benchmarks/embeddings/onnx_check.py [--quality] [--speed] [--memory] [--fp32]

Everything is compared with the numpy implementation (``sophia.embedder.minilm``), which is
exact against sentence-transformers (``run.py``):

* ``--quality``: cosine between the vectors of 11,000 QQP test questions; 10,000 of them indexed
  and 1,000 others (their pairs' second questions) searched, top-1 / top-4 agreement and how
  close the disagreements are; the verifier's scores on the 60 chat pairs of
  ``benchmarks/cache/chat_pairs.jsonl`` and on 3,000 QQP dev pairs, and how many accept / reject
  decisions flip at the shipped threshold;
* ``--speed``: one short question, a batch of 8, the cross-encoder on 1, 2 and 4 pairs (both
  orders, as the verifier runs it), p50 / p99, the variants alternating in one process;
  load times in fresh processes (ONNX graph built, then read from its cache file);
* ``--memory``: resident memory of a fresh process after loading and encoding once.

numpy runs with one OpenBLAS thread and OpenBLAS's own kernel choice (this workplace pins
``OPENBLAS_CORETYPE``, see README.md), onnxruntime with one intra-op thread: the script
re-executes itself with that environment.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "cache" / "qqp_pairs.jsonl.gz"
CHAT = ROOT / "benchmarks" / "cache" / "chat_pairs.jsonl"
SHORT = [
    "How do I reset my password?",
    "What is the refund policy for annual plans?",
    "Can I export the dashboard as a PDF file?",
    "Which regions does the service run in today?",
    "How can I cancel my subscription before it renews?",
    "Why does the API return a 429 error under load?",
]
PAIRS = [
    ("How can I cancel my subscription?", "How do I cancel my subscription?"),
    ("How do I export my data to CSV?", "How can I export my data as a CSV file?"),
    ("What are the side effects of ibuprofen?", "What side effects does ibuprofen have?"),
    ("How do I cancel my subscription?", "How do I pause my subscription?"),
]


def qqp(split: str) -> list[dict[str, Any]]:
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        return [row for row in map(json.loads, fh) if row["split"] == split]


# -- quality -----------------------------------------------------------------------------------------


def quality(fp32: bool) -> None:
    import numpy as np

    from sophia.cache.verifier import Verifier
    from sophia.embedder.minilm import MiniLM
    from sophia.embedder.ort import OnnxMiniLM

    rows = qqp("test")
    index: list[str] = list(dict.fromkeys(r["a"] for r in rows))[:10_000]
    queries = [r["b"] for r in rows[:1000]]
    ref = MiniLM.load()
    variants: dict[str, Any] = {"ort-int8": OnnxMiniLM.load(cache_dir=False)}
    if fp32:
        variants["ort-fp32"] = OnnxMiniLM.load(cache_dir=False, int8=False)
    started = time.perf_counter()
    ref_i, ref_q = ref.encode(index), ref.encode(queries)
    print(f"numpy: 11,000 questions encoded in {time.perf_counter() - started:.1f} s")
    exact = ref_q @ ref_i.T
    top_ref = np.argsort(-exact, axis=1, kind="stable")[:, :4]
    for name, enc in variants.items():
        started = time.perf_counter()
        got_i, got_q = enc.encode(index), enc.encode(queries)
        took = time.perf_counter() - started
        cos = np.concatenate([(got_i * ref_i).sum(1), (got_q * ref_q).sum(1)])
        top = np.argsort(-(got_q @ got_i.T), axis=1, kind="stable")[:, :4]
        same1 = top[:, 0] == top_ref[:, 0]
        overlap = np.mean([len(set(a) & set(b)) / 4 for a, b in zip(top, top_ref, strict=True)])
        in4 = np.mean([a[0] in b for a, b in zip(top_ref, top, strict=True)])
        off = np.flatnonzero(~same1)
        # how far (by the exact cosines) the neighbour the variant picked is from the exact first one
        gap = exact[off, top_ref[off, 0]] - exact[off, top[off, 0]]
        print(
            f"{name}: {len(cos)} questions in {took:.1f} s; cosine to numpy mean {cos.mean():.5f} "
            f"min {cos.min():.5f} p1 {np.percentile(cos, 1):.5f}"
        )
        print(
            f"  neighbours of {len(queries)} queries in {len(index)}: top-1 same {same1.mean():.1%}, "
            f"top-4 same set {np.mean([set(a) == set(b) for a, b in zip(top, top_ref, strict=True)]):.1%}, "
            f"top-4 overlap {overlap:.1%}, exact top-1 within its top-4 {in4:.1%}"
        )
        if len(off):
            print(
                f"  {len(off)} top-1 disagreements: exact-cosine gap median {np.median(gap):.4f}, "
                f"max {gap.max():.4f}; under 0.01 (near-ties): {np.mean(gap < 0.01):.0%}, "
                f"under 0.02: {np.mean(gap < 0.02):.0%}"
            )
    verifiers = {"numpy": Verifier.load(encoder=ref), "ort-int8": Verifier.load(encoder=variants["ort-int8"])}
    if fp32:
        verifiers["ort-fp32"] = Verifier.load(encoder=variants["ort-fp32"])
    threshold = verifiers["numpy"].threshold
    chat = [json.loads(line) for line in CHAT.read_text().splitlines() if line.strip()]
    dev = qqp("dev")[:3000]
    sets = {
        "chat pairs (60)": [(str(r["asked"]), str(r["stored"])) for r in chat],
        "QQP dev pairs (3,000)": [(r["b"], r["a"]) for r in dev],
    }
    for label, pairs in sets.items():
        exact_p = verifiers["numpy"].model.probabilities(pairs)
        end_ref = end_to_end(verifiers["numpy"], ref, pairs)
        for name, v in verifiers.items():
            if name == "numpy":
                continue
            p = v.model.probabilities(pairs)
            diff = np.abs(p - exact_p)
            flips = int(((p >= threshold) != (exact_p >= threshold)).sum())
            end = end_to_end(v, v.model.encoder, pairs)
            end_flips = int(((end >= threshold) != (end_ref >= threshold)).sum())
            print(
                f"{label}, {name}: cross-encoder probability |diff| max {diff.max():.4f} "
                f"p99 {np.percentile(diff, 99):.4f} mean {diff.mean():.4f}; decisions flipped at "
                f"{threshold}: {flips} (numpy accepts {int((exact_p >= threshold).sum())}); "
                f"whole verifier (own embeddings, floor, guard): {end_flips} flipped "
                f"(numpy serves {int((end_ref >= threshold).sum())})"
            )


def end_to_end(verifier: Any, encoder: Any, pairs: list[tuple[str, str]]) -> Any:
    """Each pair judged as a lookup with one stored entry: its own embeddings, floor, guard, model."""
    q = encoder.encode([a for a, _ in pairs])
    c = encoder.encode([b for _, b in pairs])
    return verifier.score_pairs([a for a, _ in pairs], q, [b for _, b in pairs], c)


# -- speed ---------------------------------------------------------------------------------------------


def speed(fp32: bool, rounds: int) -> None:
    import numpy as np

    from sophia.cache.verifier import Verifier
    from sophia.embedder.minilm import MiniLM
    from sophia.embedder.ort import OnnxMiniLM

    encoders: dict[str, Any] = {"numpy": MiniLM.load(), "ort-int8": OnnxMiniLM.load(cache_dir=False)}
    if fp32:
        encoders["ort-fp32"] = OnnxMiniLM.load(cache_dir=False, int8=False)
    verifiers = {name: Verifier.load(encoder=enc) for name, enc in encoders.items()}
    batch = [f"{q} Please answer briefly." for q in SHORT[:4]] + SHORT[:4]
    tokens = [len(encoders["numpy"]._tokenizer.encode(q).ids) for q in SHORT]
    work: dict[str, Callable[[str, int], Any]] = {
        "1 question": lambda n, i: encoders[n].encode([SHORT[i % len(SHORT)]]),
        "batch of 8": lambda n, i: encoders[n].encode(batch),
        "verifier, 1 pair": lambda n, i: verifiers[n].model.probabilities(PAIRS[i % 4 : i % 4 + 1]),
        "verifier, 2 pairs": lambda n, i: verifiers[n].model.probabilities(PAIRS[:2]),
        "verifier, 4 pairs": lambda n, i: verifiers[n].model.probabilities(PAIRS),
    }
    reps = {"1 question": 50, "batch of 8": 10, "verifier, 1 pair": 30, "verifier, 2 pairs": 20}
    times: dict[tuple[str, str], list[float]] = {}
    names = list(encoders)
    for r in range(rounds):
        for task, fn in work.items():
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                fn(name, 0)  # warm
                for i in range(reps.get(task, 10)):
                    t = time.perf_counter()
                    fn(name, i)
                    times.setdefault((task, name), []).append(time.perf_counter() - t)
    print(f"\nword pieces of the short questions: {tokens}; {rounds} rounds, variants alternating")
    print("| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for task in work:
        for q in (0.5, 0.99):
            vals = [float(np.percentile(times[(task, n)], q * 100)) * 1000 for n in names]
            cells = [f"{vals[0]:.2f}"] + [f"{v:.2f} ({v / vals[0]:.2f}x)" for v in vals[1:]]
            print(f"| {task}, p{int(q * 100)} (ms) | " + " | ".join(cells) + " |")
    loads: dict[str, list[float]] = {
        n: [] for n in ("numpy", "ort-build", "ort-cached", "verifier-numpy", "verifier-ort")
    }
    with tempfile.TemporaryDirectory() as cache:
        child("verifier-ort", cache)  # the pair graph cached: "verifier-ort" is a warm start
        for _ in range(3):
            for kind in loads:
                if kind == "ort-build":
                    for f in Path(cache).glob("*"):
                        f.unlink()
                loads[kind].append(child(kind, cache)["load_s"])
    print(
        "\nload in a fresh process, s (median of 3; ort-build: graph built, ort-cached: read from its file)"
    )
    for kind, vals in loads.items():
        print(f"  {kind}: {statistics.median(vals):.3f} (runs {', '.join(f'{v:.3f}' for v in vals)})")


# -- memory (fresh processes) -------------------------------------------------------------------------


def child(kind: str, cache: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--cache", cache],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def child_main(kind: str, cache: str) -> None:
    started = time.perf_counter()
    if kind in ("numpy", "verifier-numpy"):
        from sophia.embedder.minilm import MiniLM

        enc: Any = MiniLM.load()
    else:
        from sophia.embedder.ort import OnnxMiniLM

        enc = OnnxMiniLM.load(cache_dir=Path(cache))
    verifier = None
    if kind.startswith("verifier"):
        from sophia.cache.verifier import Verifier

        verifier = Verifier.load(encoder=enc)
    load_s = time.perf_counter() - started
    enc.encode([SHORT[0]])
    if verifier is not None:
        verifier.model.probabilities(PAIRS[:1])
    rss = hwm = 0.0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    print(json.dumps({"load_s": load_s, "rss_mib": rss, "peak_mib": hwm}))


def memory() -> None:
    with tempfile.TemporaryDirectory() as cache:
        child("verifier-ort", cache)  # fills the cache: the figures below are a normal (warm) start
        print("\nresident memory of a fresh process after load + one encode (MiB; peak in brackets)")
        for kind in ("numpy", "ort-cached", "ort-build", "verifier-numpy", "verifier-ort"):
            if kind == "ort-build":
                with tempfile.TemporaryDirectory() as empty:
                    r = child(kind, empty)
            else:
                r = child(kind, cache)
            print(f"  {kind}: {r['rss_mib']:.0f} ({r['peak_mib']:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--fp32", action="store_true", help="also the float32 onnxruntime graph")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.cache)
        return
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if "OPENBLAS_CORETYPE" in os.environ or os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    import onnxruntime

    everything = not (args.quality or args.speed or args.memory)
    print(
        f"# {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; onnxruntime {onnxruntime.__version__}"
    )
    if args.quality or everything:
        quality(args.fp32)
    if args.speed or everything:
        speed(args.fp32, args.rounds)
    if args.memory or everything:
        memory()


if __name__ == "__main__":
    main()
