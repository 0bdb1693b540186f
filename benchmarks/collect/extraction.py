"""Extraction quality and overhead: Sophia's ``extract`` against trafilatura called directly, in one run.

    .venv/bin/python benchmarks/collect/extraction.py --parts quality
    .venv/bin/python benchmarks/collect/extraction.py --parts timing --rounds 5      # on a quiet machine
    .venv/bin/python benchmarks/collect/extraction.py --dataset scrapinghub --path DIR   # another set

Datasets (README.md says where they come from and under which licence):

* ``trafilatura-eval`` (default): ../shared/data/extraction/trafilatura_eval_subset.jsonl.gz, 317 pages
  with snippets that must (``with``) and must not (``without``) be in the main text. Scored as
  trafilatura's own evaluation scores it: each snippet found or not, precision/recall/F1 over all.
* ``scrapinghub``: a folder laid out like scrapinghub/article-extraction-benchmark
  (``ground-truth.json`` + ``html/<id>.html.gz``) with the whole article body as gold. Scored as that
  benchmark's evaluate.py does: 4-word shingles per page, tp/fp/fn normalised per page, precision and
  recall averaged over pages, F1 of the two averages (bootstrap 95% intervals).

Both sides get the page's raw bytes and its URL and the same trafilatura options
(``sophia.collect.extract.TRAFILATURA_OPTIONS``); what Sophia adds is its charset decoding, links,
language and hash. Timing alternates the two per page, after a warm-up pass (htmldate/dateparser
compile their patterns on first use), and reports per-page ratios and percentiles for three
baselines: text only (``trafilatura.extract``), text + metadata (``bare_extraction``, the same work as
Sophia's) and text + metadata as JSON (``extract(output_format="json", with_metadata=True)``).

Writes results/<date>.json (the parts of a run are merged into an existing file of the same date).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gc
import gzip
import json
import logging
import platform
import random
import re
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trafilatura

from sophia.collect.extract import TRAFILATURA_OPTIONS, extract

ROOT = Path(__file__).resolve().parent
PROJECT = ROOT.parents[1]
SHARED = PROJECT.parent / "shared" / "data" / "extraction" / "trafilatura_eval_subset.jsonl.gz"


@dataclass
class Page:
    id: str
    url: str
    html: bytes
    with_: list[str] = field(default_factory=list)
    without: list[str] = field(default_factory=list)
    body: str | None = None  # whole gold text (scrapinghub layout)


# --- datasets -----------------------------------------------------------------------------------


def load_trafilatura_eval(path: Path) -> list[Page]:
    pages = []
    with gzip.open(path, "rt", encoding="utf-8") as rows:
        for line in rows:
            row = json.loads(line)
            url = row["url"]
            if not url.startswith(("http://", "https://")):
                # a few entries of trafilatura's set are named "hard::<file>": give them a URL of their own
                url = "https://example.invalid/" + row["file"]
            pages.append(
                Page(row["file"], url, base64.b64decode(row["html_b64"]), row["with"], row["without"])
            )
    return pages


def load_scrapinghub(folder: Path) -> list[Page]:
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for key, item in sorted(truth.items()):
        html = gzip.decompress((folder / "html" / f"{key}.html.gz").read_bytes())
        url = item.get("url") or f"https://example.invalid/{key}"
        pages.append(Page(key, url, html, body=item.get("articleBody", "")))
    return pages


# --- metrics ------------------------------------------------------------------------------------


def snippet_counts(text: str, page: Page) -> tuple[int, int, int, int]:
    """tp, fn, fp, tn as trafilatura's tests/comparison.py counts them."""
    tp = sum(snippet in text for snippet in page.with_)
    fp = sum(snippet in text for snippet in page.without)
    return tp, len(page.with_) - tp, fp, len(page.without) - fp


def snippet_scores(counts: list[tuple[int, int, int, int]]) -> dict[str, float]:
    tp, fn, fp, tn = (sum(c[i] for c in counts) for i in range(4))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / (tp + fn + fp + tn),
        "tp": tp,
        "fn": fn,
        "fp": fp,
        "tn": tn,
    }


_TOKEN = re.compile(r"\w+", re.UNICODE | re.MULTILINE | re.IGNORECASE | re.DOTALL)


def _shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n])


def shingle_counts(text: str, page: Page) -> tuple[float, float, float]:
    """scrapinghub evaluate.py ``string_shingle_matching``: tp, fp, fn over 4-word shingles, normalised."""
    true, pred = _shingles(page.body or ""), _shingles(text)
    tp = fp = fn = 0.0
    for key in true.keys() | pred.keys():
        t, p = true.get(key, 0), pred.get(key, 0)
        tp += min(t, p)
        fp += max(0, p - t)
        fn += max(0, t - p)
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def _shingle_metrics(counts: list[tuple[float, float, float]]) -> dict[str, float]:
    def precision(tp: float, fp: float, fn: float) -> float:
        return 1.0 if fp == fn == 0 else 0.0 if tp == fp == 0 else tp / (tp + fp)

    def recall(tp: float, fp: float, fn: float) -> float:
        return 1.0 if fp == fn == 0 else 0.0 if tp == fn == 0 else tp / (tp + fn)

    p = statistics.mean([precision(*c) for c in counts if c[0] + c[1] > 0] or [0.0])
    r = statistics.mean([recall(*c) for c in counts if c[0] + c[2] > 0] or [0.0])
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def shingle_scores(
    counts: list[tuple[float, float, float]], *, seed: int, n_bootstrap: int = 1000
) -> dict[str, float]:
    metrics = _shingle_metrics(counts)
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n_bootstrap):
        resampled = [counts[rng.randrange(len(counts))] for _ in counts]
        for key, value in _shingle_metrics(resampled).items():
            samples.setdefault(key, []).append(value)
    for key, values in samples.items():
        metrics[f"{key}_ci"] = 1.96 * statistics.stdev(values)
    return metrics


# --- the two sides ------------------------------------------------------------------------------


def sophia_text(page: Page) -> str:
    return extract(page.html, page.url).text


def direct_text(page: Page) -> str:
    return trafilatura.extract(page.html, url=page.url, **TRAFILATURA_OPTIONS) or ""


def direct_with_metadata(page: Page) -> object:
    return trafilatura.bare_extraction(page.html, url=page.url, with_metadata=True, **TRAFILATURA_OPTIONS)


def direct_json(page: Page) -> object:
    return trafilatura.extract(
        page.html, url=page.url, with_metadata=True, output_format="json", **TRAFILATURA_OPTIONS
    )


# --- parts --------------------------------------------------------------------------------------


def quality(pages: list[Page], dataset: str, seed: int) -> dict[str, Any]:
    texts = {"sophia": [sophia_text(p) for p in pages], "trafilatura": [direct_text(p) for p in pages]}
    result: dict[str, Any] = {
        "pages": len(pages),
        "identical_texts": sum(a == b for a, b in zip(texts["sophia"], texts["trafilatura"], strict=True)),
        "empty_texts": {name: sum(not t for t in values) for name, values in texts.items()},
    }
    for name, values in texts.items():
        if dataset == "scrapinghub":
            result[name] = shingle_scores(
                [shingle_counts(t, p) for t, p in zip(values, pages, strict=True)], seed=seed
            )
        else:
            result[name] = snippet_scores([snippet_counts(t, p) for t, p in zip(values, pages, strict=True)])
    # which pages differ, and who is better on each (for the README's discussion)
    differing = []
    for page, a, b in zip(pages, texts["sophia"], texts["trafilatura"], strict=True):
        if a != b:
            differing.append({"id": page.id, "sophia_chars": len(a), "trafilatura_chars": len(b)})
    result["differing_pages"] = differing
    result["delta_f1"] = result["sophia"]["f1"] - result["trafilatura"]["f1"]
    return result


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "mean": statistics.mean(ordered)}


def timing(pages: list[Page], rounds: int) -> dict[str, Any]:
    sides: dict[str, Callable[[Page], object]] = {
        "sophia": lambda p: extract(p.html, p.url),
        "trafilatura_text": direct_text,
        "trafilatura_metadata": direct_with_metadata,
        "trafilatura_json": direct_json,
    }
    for page in pages:  # warm-up: first-use pattern compilation is not a per-page cost
        for run in sides.values():
            run(page)
    times: dict[str, list[list[float]]] = {name: [[] for _ in pages] for name in sides}
    order = list(sides)
    for round_ in range(rounds):
        gc.collect()
        for index, page in enumerate(pages):
            # alternate who goes first, so neither side always meets a warm cache
            for name in order if (index + round_) % 2 == 0 else reversed(order):
                started = time.perf_counter()
                sides[name](page)
                times[name][index].append((time.perf_counter() - started) * 1000)
    per_page = {name: [statistics.median(t) for t in values] for name, values in times.items()}
    result: dict[str, Any] = {"pages": len(pages), "rounds": rounds, "ms": {}}
    for name, values in per_page.items():
        result["ms"][name] = _percentiles(values)
    for baseline in ("trafilatura_text", "trafilatura_metadata", "trafilatura_json"):
        ratios = [s / b for s, b in zip(per_page["sophia"], per_page[baseline], strict=True) if b > 0]
        result[f"ratio_vs_{baseline}"] = {
            **_percentiles(ratios),
            "total": sum(per_page["sophia"]) / sum(per_page[baseline]),
        }
    result["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=["trafilatura-eval", "scrapinghub"], default="trafilatura-eval")
    parser.add_argument("--path", type=Path, help="the dataset file or folder (default: the shared copy)")
    parser.add_argument("--parts", default="quality", help="comma-separated: quality, timing")
    parser.add_argument("--limit", type=int, help="a seeded sample of this many pages")
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the pages")
    parser.add_argument("--out", type=Path, help="results file (default results/<date>.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # trafilatura logs every page it finds no text in
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

    if args.dataset == "scrapinghub":
        if args.path is None:
            parser.error("--dataset scrapinghub needs --path to its folder")
        pages = load_scrapinghub(args.path)
    else:
        pages = load_trafilatura_eval(args.path or SHARED)
    if args.limit and args.limit < len(pages):
        pages = sorted(random.Random(args.seed).sample(pages, args.limit), key=lambda p: p.id)

    today = dt.date.today().isoformat()
    out = args.out or ROOT / "results" / f"{today}.json"
    report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    report.update(
        {
            "date": today,
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": _cpus(),
            },
            "versions": {"trafilatura": trafilatura.__version__, "lxml": _version("lxml")},
            "dataset": {"name": args.dataset, "pages": len(pages), "limit": args.limit, "seed": args.seed},
            "options": TRAFILATURA_OPTIONS,
        }
    )
    for part in [p.strip() for p in args.parts.split(",") if p.strip()]:
        started = time.perf_counter()
        if part == "quality":
            report["quality"] = quality(pages, args.dataset, args.seed)
            q = report["quality"]
            print(
                f"quality on {len(pages)} pages: Sophia F1 {q['sophia']['f1']:.4f} "
                f"(P {q['sophia']['precision']:.4f} R {q['sophia']['recall']:.4f}), trafilatura F1 "
                f"{q['trafilatura']['f1']:.4f} (P {q['trafilatura']['precision']:.4f} R "
                f"{q['trafilatura']['recall']:.4f}); identical texts {q['identical_texts']}/{len(pages)}"
            )
        elif part == "timing":
            report["timing"] = timing(pages, args.rounds)
            t = report["timing"]
            print(json.dumps(t, indent=1))
        else:
            parser.error(f"unknown part {part!r}: use quality or timing")
        report.setdefault("seconds", {})[part] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    sys.exit(main())
