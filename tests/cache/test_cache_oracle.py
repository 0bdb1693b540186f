"""The budget benchmark's oracle and bookkeeping (``benchmarks/cache/oracle.py``, ``budget.py``).

The benchmark's figures are only as good as the rule that grades each served hit, so the rule is
pinned here on tiny inputs (no model): punctuation never makes two questions differ, a labelled
pair counts in either order, and labels are not chained.
"""

from __future__ import annotations

import importlib
import importlib.util
import pickle
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "cache"
spec = importlib.util.spec_from_file_location("cache_bench_oracle", BENCH / "oracle.py")
assert spec is not None and spec.loader is not None
oracle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(oracle)


@pytest.fixture
def budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """benchmarks/cache/budget.py as a module (it imports its neighbours by their plain names)."""
    names = ("budget", "run", "chat", "oracle")
    before = {n for n in names if n in sys.modules}
    monkeypatch.syspath_prepend(str(BENCH))
    yield importlib.import_module("budget")
    for name in set(names) - before:
        sys.modules.pop(name, None)


def test_norm_drops_case_punctuation_and_spacing() -> None:
    assert oracle.norm("I'm scared of death.What do I do?") == oracle.norm(
        "I'm scared of  death. What do I do ?"
    )
    assert oracle.norm("Snake_case, OK?") == "snake case ok"
    assert oracle.norm("learn Python") != oracle.norm("learn Java")


def test_a_labelled_pair_is_the_same_question_in_either_order_and_after_normalising() -> None:
    labels = oracle.Labels([("How do I learn SQL?", "What is the best way to learn SQL?")])
    assert labels.same("How do I learn SQL?", "What is the best way to learn SQL?")
    assert labels.same("what is the best way to learn sql", "how do i learn SQL!")
    assert labels.same("Is it raining?", "is it raining")  # normalised-equal needs no label
    assert not labels.same("How do I learn SQL?", "How do I teach SQL?")


def test_labels_are_not_chained() -> None:
    labels = oracle.Labels([("a one", "b two"), ("b two", "c three")])
    assert labels.same("a one", "b two") and labels.same("c three", "b two")
    assert not labels.same("a one", "c three")
    assert len(labels) == 2


async def test_the_oracle_compares_question_bodies_with_the_labels() -> None:
    judge = oracle.Oracle(oracle.Labels([("Where are my invoices?", "Where can I find my invoices?")]))
    assert await judge.same(b"Where can I find my invoices?", b"Where are my invoices?") is True
    assert await judge.same(b"Where are my receipts?", b"Where are my invoices?") is False
    assert judge.asked == 2


def test_wilson_interval_matches_the_textbook_values() -> None:
    lo, hi = oracle.wilson(5, 100)
    assert lo == pytest.approx(0.02154, abs=1e-4) and hi == pytest.approx(0.11175, abs=1e-4)
    assert oracle.wilson(0, 10) == (0.0, pytest.approx(0.27753, abs=1e-4))
    assert oracle.wilson(0, 0) == (0.0, 1.0)
    lo95, hi95 = oracle.wilson(95, 100)  # the interval of k/n mirrors that of (n-k)/n
    assert lo95 == pytest.approx(1 - hi) and hi95 == pytest.approx(1 - lo)


def static_rows() -> list[dict[str, float]]:
    return [
        {"threshold": 0.5, "served": 900, "error": 0.20},
        {"threshold": 0.9, "served": 400, "error": 0.05},
        {"threshold": 0.94, "served": 300, "error": 0.03},
        {"threshold": 0.97, "served": 300, "error": 0.02},
        {"threshold": 1.0, "served": 50, "error": 0.0},
    ]


def test_b1_is_the_static_threshold_with_most_hits_within_the_error() -> None:
    rows = static_rows()
    assert oracle.best_static(rows, 0.05)["threshold"] == 0.9
    assert oracle.best_static(rows, 0.049)["threshold"] == 0.97  # a tie on hits: the lower error
    assert oracle.best_static(rows, 0.0)["threshold"] == 1.0
    assert oracle.best_static(rows[:3], 0.01) is None


def test_each_delta_run_gets_its_b1_and_ratio(budget: ModuleType) -> None:
    runs = [{"served": 450, "error": 0.05}, {"served": 10, "error": 0.001}]
    budget.with_b1(runs, static_rows())
    assert (runs[0]["b1_threshold"], runs[0]["b1_served"], runs[0]["ratio"]) == (0.9, 400, 1.125)
    assert (runs[1]["b1_threshold"], runs[1]["ratio"]) == (1.0, 0.2)


def test_the_tally_counts_hits_checks_and_the_warm_up_curve(budget: ModuleType) -> None:
    tally = budget.Tally(every=4)
    for kind, wrong in [("exact", False), ("semantic", True), ("check", False), ("semantic", False)]:
        tally.add(kind, wrong)
    tally.add("shadow")
    tally.add("miss")
    figures = tally.figures()
    assert (figures["lookups"], figures["exact_hits"], figures["served"], figures["wrong"]) == (6, 1, 2, 1)
    assert figures["checks"] == 1 and figures["check_share"] == pytest.approx(1 / 3)
    assert figures["shadow_labels"] == 1
    assert figures["curve"] == [{"lookups": 4, "served": 2, "wrong": 1, "error": 0.5}]
    assert figures["error_ci95"] == list(oracle.wilson(1, 2))


def test_the_memo_computes_each_pair_once_and_merges_on_save(budget: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "pair-logits-dev.pkl"
    path.write_bytes(pickle.dumps({("x", "y"): 1.5}))
    calls: list[list[tuple[str, str]]] = []

    def model(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        calls.append(list(pairs))
        return np.array([len(a) - len(b) for a, b in pairs], dtype=np.float32)

    memo = budget.PairMemo(path)
    logits = memo.wrap(model)
    assert logits([("x", "y"), ("ab", "c"), ("ab", "c")]).tolist() == [1.5, 1.0, 1.0]
    assert logits([("c", "ab")]).tolist() == [-1.0]  # each order is its own pair
    assert calls == [[("ab", "c")], [("c", "ab")]]
    path.write_bytes(pickle.dumps({("x", "y"): 1.5, ("p", "q"): 2.0}))  # another script saved meanwhile
    memo.save()
    assert pickle.loads(path.read_bytes()) == {
        ("x", "y"): 1.5,
        ("p", "q"): 2.0,
        ("ab", "c"): 1.0,
        ("c", "ab"): -1.0,
    }
    assert list(tmp_path.iterdir()) == [path]  # the temporary file was renamed into place
