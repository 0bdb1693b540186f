"""Drift benchmark: Sophia's drift tests beside Evidently's on the same windows, in the same run.

    benchmarks/observe/setup.sh                                          # Evidently venv + prompt vectors
    benchmarks/.work/observe/evidently-venv/bin/python benchmarks/observe/drift.py run
    .venv/bin/python benchmarks/observe/drift.py embed --out DIR          # what setup.sh runs

``run`` needs only numpy and ``sophia.observe.drift`` (which imports numpy and ``sophia.errors``) on
Sophia's side, so it runs in Evidently's venv with ``src/`` on the path; ``embed`` needs the project's
venv (the bundled MiniLM). Every trial draws a reference window and two current windows, one with no
shift and one with a known 10% shift, from one seeded generator; each side judges both pairs on the very
same arrays. A false alarm is a drift verdict with no shift, a detection one with the shift.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import itertools
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks" / ".work" / "observe"
RESULTS = Path(__file__).resolve().parent / "results"
SEED = 2025
Verdicts = dict[str, tuple[float, bool]]  # label -> (score, drifted)


# --- the prompt pools (embed) --------------------------------------------------------------------------

TRAVEL = [
    (
        "How do I {a} my {i} to {p}?",
        {
            "a": ["change", "cancel", "upgrade", "get a refund for", "rebook", "confirm", "add a bag to"],
            "i": ["flight", "hotel booking", "train ticket", "rental car", "ferry crossing", "seat"],
        },
    ),
    (
        "What is the cheapest way to get from {p} to {q} {w}?",
        {"w": ["next weekend", "in March", "tomorrow morning", "over the holidays", "in late summer"]},
    ),
    (
        "Do {n} travellers need a visa to visit {p} {w}?",
        {
            "n": ["US", "Indian", "Brazilian", "Canadian", "Nigerian", "German"],
            "w": ["for a week", "for business", "in transit"],
        },
    ),
    (
        "Which {h} near the {l} in {p} would you recommend for {o}?",
        {
            "h": ["hotel", "hostel", "guesthouse", "apartment"],
            "l": ["old town", "main station", "airport", "beach"],
            "o": ["a family with kids", "a solo traveller", "a honeymoon", "a business trip"],
        },
    ),
    (
        "My {i} to {p} was {x}: what are my options?",
        {
            "i": ["flight", "hotel booking", "train ticket", "rental car", "ferry crossing", "seat"],
            "x": ["cancelled", "delayed by six hours", "overbooked", "charged twice", "never confirmed"],
        },
    ),
    ("Is it a good idea to travel to {p} {w}?", {"w": ["in winter", "with a baby", "alone", "by train"]}),
]
CODING = [
    (
        "How do I {v} a {s} in {g}?",
        {
            "v": ["sort", "reverse", "serialize", "deep copy", "iterate over", "filter"],
            "s": ["list", "dictionary", "linked list", "binary tree", "hash map", "string"],
        },
    ),
    (
        "Why does my {g} code raise {e} when I {v} a {s}?",
        {
            "v": ["parse", "index", "update", "read"],
            "s": ["JSON file", "dataframe", "socket", "nested list"],
            "e": ["a null pointer error", "a type error", "an index error", "a timeout"],
        },
    ),
    (
        "Write a {g} function that {t}.",
        {
            "t": [
                "checks whether a number is prime",
                "merges two sorted arrays",
                "counts the words in a file",
                "validates an email address",
                "retries an HTTP request with backoff",
                "computes a moving average",
            ]
        },
    ),
]
PLACES = ["Lisbon", "Tokyo", "Nairobi", "Lima", "Oslo", "Hanoi", "Chicago", "Seville", "Cairo", "Sydney"]
LANGUAGES = ["Python", "Rust", "Go", "Java", "TypeScript", "C++", "Kotlin"]


def expand(templates: list[tuple[str, dict[str, list[str]]]], common: dict[str, list[str]]) -> list[str]:
    """Every filling of every template: the pools are generated, so the benchmark needs no data set."""
    texts: list[str] = []
    for template, slots in templates:
        names = [n for n in [*slots, *common] if "{" + n + "}" in template]
        choices = [slots.get(n) or common[n] for n in names]
        for values in itertools.product(*choices):
            filled = dict(zip(names, values, strict=True))
            if filled.get("p") is None or filled.get("p") != filled.get("q"):
                texts.append(template.format(**filled))
    return sorted(set(texts))


def embed(out: Path) -> None:
    from sophia.embedder import get_encoder

    rng = np.random.default_rng(SEED)
    pools = {
        "a": expand(TRAVEL, {"p": PLACES, "q": PLACES}),
        "b": expand(CODING, {"g": LANGUAGES}),
    }
    encoder = get_encoder()
    out.mkdir(parents=True, exist_ok=True)
    for name, texts in pools.items():
        chosen = [texts[i] for i in rng.permutation(len(texts))[:2000]]
        vectors = np.vstack([encoder.encode(chosen[i : i + 64]) for i in range(0, len(chosen), 64)])
        np.save(out / f"prompts-{name}.npy", vectors.astype(np.float32))
        (out / f"prompts-{name}.txt").write_text("\n".join(chosen) + "\n")
        print(f"pool {name}: {len(chosen)} of {len(texts)} generated prompts -> {out}/prompts-{name}.npy")


# --- the cases (run) -----------------------------------------------------------------------------------


@dataclass
class Case:
    """One signal at one window size: how windows are drawn, and each side's checks on them."""

    name: str
    window: str
    shift: str
    trials: int
    draw: Callable[[np.random.Generator], tuple[Any, Any, Any]]  # reference, current, shifted current
    sophia: Callable[[Any, Any, int], Any]  # -> DriftResult
    evidently: dict[str, Callable[[Any, Any], Verdicts]]
    evidently_default: str  # the label Evidently picks when no method is given
    kind: str = "numerical"  # Evidently column type, for the Report cross-check
    report: dict[str, Any] = field(default_factory=dict)


def lognormal_latency(rng: np.random.Generator) -> tuple[Any, Any, Any]:
    def window(scale: float) -> np.ndarray:
        return rng.lognormal(np.log(400), 0.3, 1000) * scale

    return window(1.0), window(1.0), window(1.10)


def tokens(n: int) -> Callable[[np.random.Generator], tuple[Any, Any, Any]]:
    def draw(rng: np.random.Generator) -> tuple[Any, Any, Any]:
        def window(mean: float) -> np.ndarray:  # negative binomial, shape 4: sd ~ half the mean
            return rng.negative_binomial(4, 4 / (4 + mean), n).astype(float)

        return window(300), window(300), window(330)

    return draw


def flags(n: int, rate: float, shifted: float) -> Callable[[np.random.Generator], tuple[Any, Any, Any]]:
    def draw(rng: np.random.Generator) -> tuple[Any, Any, Any]:
        return rng.random(n) < rate, rng.random(n) < rate, rng.random(n) < shifted

    return draw


MODELS = np.array(["gpt-4.1-mini", "claude-haiku", "local", "llama-8b"])


def model_mix(rng: np.random.Generator) -> tuple[Any, Any, Any]:
    base, moved = [0.5, 0.3, 0.1, 0.1], [0.4, 0.3, 0.2, 0.1]
    return tuple(rng.choice(MODELS, 2000, p=p) for p in (base, base, moved))  # type: ignore[return-value]


def prompt_windows(pool_a: np.ndarray, pool_b: np.ndarray) -> Callable[[np.random.Generator], Any]:
    def draw(rng: np.random.Generator) -> tuple[Any, Any, Any]:
        order = rng.permutation(len(pool_a))
        new = pool_b[rng.choice(len(pool_b), 50, replace=False)]
        return pool_a[order[:500]], pool_a[order[500:1000]], np.vstack([pool_a[order[500:950]], new])

    return draw


def evidently_stat(test: Any, column: Any, as_series: Callable[[Any], Any]) -> Callable[[Any, Any], Verdicts]:
    def check(reference: Any, current: Any) -> Verdicts:
        result = test(as_series(reference), as_series(current), column, None)  # None: its default threshold
        label = f"{test.name} ({result.actual_threshold:g})"
        return {label: (float(result.drift_score), bool(result.drifted))}

    return check


def evidently_embedding(method: Any, derived: tuple[str, float] | None) -> Callable[[Any, Any], Verdicts]:
    """One of Evidently's embedding drift methods; ``derived`` also reads the same call's score against the
    method's fixed default threshold (its non-bootstrap verdict is ``score > threshold`` on the same score)."""
    import pandas as pd

    def check(reference: Any, current: Any) -> Verdicts:
        score, drifted, name = method(pd.DataFrame(current), pd.DataFrame(reference))  # current first
        bootstrap = getattr(method, "bootstrap", None)
        label = f"{name}, bootstrap" if bootstrap else f"{name} ({method.threshold:g})"
        verdicts = {label: (float(score), bool(drifted))}
        if derived is not None:
            verdicts[f"{name} ({derived[1]:g})"] = (float(score), float(score) > derived[1])
        return verdicts

    return check


def cases(trials: int, embedding_trials: int, large_trials: int) -> list[Case]:
    import pandas as pd
    from evidently.legacy.calculations import stattests as st
    from evidently.legacy.core import ColumnType
    from evidently.legacy.metrics.data_drift import embedding_drift_methods as edm

    from sophia.observe import drift

    num, cat = ColumnType.Numerical, ColumnType.Categorical

    def numeric_tests() -> dict[str, Callable[[Any, Any], Verdicts]]:
        tests = (st.ks_stat_test, st.wasserstein_stat_test, st.psi_stat_test, st.jensenshannon_stat_test)
        return {t.name: evidently_stat(t, num, pd.Series) for t in tests}

    def flag_series(values: np.ndarray) -> Any:  # a yes/no column, as Evidently holds a categorical one
        return pd.Series(pd.Categorical.from_codes(values.astype(np.int8), categories=["no", "yes"]))

    def rate_tests() -> dict[str, Callable[[Any, Any], Verdicts]]:
        tests = (st.z_stat_test, st.jensenshannon_stat_test, st.psi_stat_test)
        return {t.name: evidently_stat(t, cat, flag_series) for t in tests}

    def rate(signal: str) -> Callable[[Any, Any, int], Any]:
        return lambda r, c, _t: drift.proportion(
            signal, (int(np.count_nonzero(r)), len(r)), (int(np.count_nonzero(c)), len(c))
        )

    mix_tests = (st.chi_stat_test, st.jensenshannon_stat_test, st.psi_stat_test)
    pool_a, pool_b = np.load(WORK / "prompts-a.npy"), np.load(WORK / "prompts-b.npy")
    return [
        Case("latency", "lognormal ms, median 400, sigma 0.3; n = 1,000", "x1.10", trials,
             lognormal_latency, lambda r, c, _t: drift.ks("latency", r, c), numeric_tests(), "ks"),
        Case("tokens", "negative binomial, mean 300, shape 4 (sd 151); n = 1,000", "mean 300 -> 330",
             trials, tokens(1000), lambda r, c, _t: drift.ks("tokens", r, c), numeric_tests(), "ks"),
        Case("tokens n=4000", "as above; n = 4,000", "mean 300 -> 330", trials, tokens(4000),
             lambda r, c, _t: drift.ks("tokens", r, c), numeric_tests(), "wasserstein"),
        Case("error rate n=10k", "Bernoulli 2.0%; n = 10,000", "2.0% -> 2.2%", trials,
             flags(10_000, 0.02, 0.022), rate("error rate"), rate_tests(), "jensenshannon", "categorical"),
        Case("error rate n=2M", "Bernoulli 2.0%; n = 2,000,000", "2.0% -> 2.2%", large_trials,
             flags(2_000_000, 0.02, 0.022), rate("error rate"), rate_tests(), "jensenshannon", "categorical"),
        Case("cache hit rate", "Bernoulli 40%; n = 10,000", "40% -> 36%", trials,
             flags(10_000, 0.40, 0.36), rate("cache hit rate"), rate_tests(), "jensenshannon", "categorical"),
        Case("model mix", "4 models at 50/30/10/10%; n = 2,000", "40/30/20/10% (a tenth moved)", trials,
             model_mix, lambda r, c, _t: drift.categorical("model mix", list(r), list(c)),
             {t.name: evidently_stat(t, cat, pd.Series) for t in mix_tests}, "jensenshannon", "categorical"),
        Case("prompt embeddings", "MiniLM vectors of travel prompts; n = 500", "10% coding prompts",
             embedding_trials, prompt_windows(pool_a, pool_b),
             lambda r, c, t: drift.embeddings("prompts", r, c, seed=t),
             {
                 "model": evidently_embedding(edm.model(bootstrap=True), ("model", 0.55)),
                 "distance": evidently_embedding(edm.distance(bootstrap=True), ("distance", 0.2)),
                 "mmd": evidently_embedding(edm.mmd(bootstrap=True), ("mmd", 0.015)),
                 "ratio": evidently_embedding(edm.ratio(), None),
             },
             "model, bootstrap", "embeddings"),
    ]  # fmt: skip


# --- running and reporting ------------------------------------------------------------------------------


def timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - started


@dataclass
class Tally:
    alarms: list[int] = field(default_factory=lambda: [0, 0])  # [no shift, shift]
    seconds: float = 0.0
    checks: int = 0
    test: str = ""  # the name Sophia's result gives its test

    def add(self, shifted: int, drifted: bool, seconds: float) -> None:
        self.alarms[shifted] += int(drifted)
        self.seconds += seconds
        self.checks += 1


def run_case(number: int, case: Case, seed: int) -> dict[str, Any]:
    sophia, peers = Tally(), {}
    for trial in range(case.trials):
        rng = np.random.default_rng([seed, number, trial])
        reference, *currents = case.draw(rng)
        for shifted, current in enumerate(currents):
            result, seconds = timed(case.sophia, reference, current, trial)
            sophia.add(shifted, result.drifted, seconds)
            sophia.test = f"{result.test} (p < {result.threshold:g})"
            for check in case.evidently.values():
                verdicts, seconds = timed(check, reference, current)
                for label, (_score, drifted) in verdicts.items():  # one call may give two verdicts
                    peers.setdefault(label, Tally()).add(shifted, drifted, seconds)
            if trial == 0 and shifted == 0 and case.kind != "embeddings":
                case.report = report_check(case, reference, current)
    return {
        "case": case.name,
        "window": case.window,
        "shift": case.shift,
        "trials": case.trials,
        "sophia": summary(sophia.test, sophia, case.trials),
        "evidently": [
            summary(label, tally, case.trials) | {"default": label.startswith(case.evidently_default)}
            for label, tally in peers.items()
        ],
        "evidently_report_check": case.report,
    }


def summary(label: str, tally: Tally, trials: int) -> dict[str, Any]:
    return {
        "test": label,
        "false_alarm_rate": tally.alarms[0] / trials,
        "detection_rate": tally.alarms[1] / trials,
        "ms_per_check": round(1000 * tally.seconds / tally.checks, 3),
    }


def report_check(case: Case, reference: Any, current: Any) -> dict[str, Any]:
    """Evidently's own ``Report`` with ``ValueDrift`` and no method, on the first trial's no-shift windows:
    which test Evidently picks by default and its score, to check that the direct calls match it."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    columns = {"numerical_columns": ["x"]} if case.kind == "numerical" else {"categorical_columns": ["x"]}
    definition = DataDefinition(**columns)

    def dataset(values: Any) -> Any:
        values = np.where(values, "yes", "no") if values.dtype == bool else values
        return Dataset.from_pandas(pd.DataFrame({"x": values}), data_definition=definition)

    snapshot = Report([ValueDrift(column="x")]).run(dataset(current), dataset(reference))
    metric = snapshot.dict()["metrics"][0]
    direct = case.evidently[case.evidently_default](reference, current)
    return {
        "method": metric["config"]["method"],
        "threshold": metric["config"]["threshold"],
        "report_score": float(metric["value"]),
        "direct_score": next(iter(direct.values()))[0],
    }


def versions() -> dict[str, str]:
    names = ["evidently", "numpy", "pandas", "scipy", "scikit-learn"]
    found = {name: importlib.metadata.version(name) for name in names}
    return {"python": platform.python_version(), **found}


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| signal | shift | trials | side | test | false alarms | detection | ms/check |",
        "| --- | --- | ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        rows = [("Sophia", r["sophia"])] + [
            ("Evidently" + (" (default)" if e["default"] else ""), e) for e in r["evidently"]
        ]
        for side, row in rows:
            lines.append(
                f"| {r['case']} | {r['shift']} | {r['trials']} | {side} | {row['test']} | "
                f"{row['false_alarm_rate']:.1%} | {row['detection_rate']:.1%} | {row['ms_per_check']:.2f} |"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))
    warnings.filterwarnings("ignore")  # Evidently's pydantic and pandas deprecation notices
    started = time.perf_counter()
    chosen = [c for c in cases(args.trials, args.embedding_trials, args.large_trials) if c.name in args.only]
    results = []
    for case in chosen:  # a case's windows depend on its place in ALL, not on --only
        result, seconds = timed(run_case, ALL.index(case.name), case, args.seed)
        print(f"{case.name}: {seconds:.1f} s", file=sys.stderr)
        results.append(result)
    out = {
        "date": datetime.date.today().isoformat(),
        "seed": args.seed,
        "versions": versions(),
        "cpus": len(os.sched_getaffinity(0)),
        "seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }
    print(table(results))
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{out['date']}.json"
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"saved {path} ({out['seconds']} s)", file=sys.stderr)


ALL = ["latency", "tokens", "tokens n=4000", "error rate n=10k", "error rate n=2M", "cache hit rate"]
ALL += ["model mix", "prompt embeddings"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("embed", help="encode the two prompt pools with the bundled MiniLM (project venv)")
    e.add_argument("--out", type=Path, default=WORK)
    r = sub.add_parser("run", help="the benchmark (Evidently's venv)")
    r.add_argument("--trials", type=int, default=200, help="trials per case (default 200)")
    r.add_argument("--embedding-trials", type=int, default=100)
    r.add_argument("--large-trials", type=int, default=100, help="trials for the 2M-request windows")
    r.add_argument("--seed", type=int, default=SEED)
    r.add_argument("--only", nargs="+", default=ALL, choices=ALL, metavar="CASE", help=", ".join(ALL))
    r.add_argument("--no-save", dest="save", action="store_false", help="print only; no results file")
    args = parser.parse_args()
    if args.command == "embed":
        embed(args.out)
    else:
        run(args)


if __name__ == "__main__":
    main()
