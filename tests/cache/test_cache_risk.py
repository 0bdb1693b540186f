"""The wrong-answer budget's estimator (``sophia.cache.risk``), on synthetic labelled rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sophia.cache.observations import Observation
from sophia.cache.risk import Features, RiskModel, candidate_features, logit, wilson


def row(z: float, y: int, *, alias: str = "a", cos: float = 0.9, kind: str = "shadow") -> Observation:
    return Observation(alias, "ns", "e1", kind, 0.0, z, cos, 4.0, 0.1, y)


def truth(z: np.ndarray) -> np.ndarray:
    """The synthetic world: a hit is wrong with probability sigmoid(2 - z) (the verifier is overconfident)."""
    return 1 / (1 + np.exp(-(2.0 - z)))


def labelled(n: int, seed: int) -> list[Observation]:
    rng = np.random.default_rng(seed)
    z = rng.uniform(-4, 8, n)
    y = rng.random(n) < truth(z)
    return [row(float(a), int(b)) for a, b in zip(z, y, strict=True)]


def test_a_cold_alias_is_not_warm_until_it_has_both_outcomes() -> None:
    model = RiskModel(warm_after=50)
    assert not model.warm("a")
    model.add([row(5.0, 0) for _ in range(60)])
    assert not model.warm("a")  # 60 rows, all right: nothing says where it goes wrong
    model.add([row(-1.0, 1) for _ in range(5)])
    assert model.warm("a")
    assert not model.warm("b")


def test_the_prior_is_the_verifiers_calibration() -> None:
    model = RiskModel()
    sure, unsure = Features(8.0, 0.99, 4.0, 0.0), Features(0.0, 0.9, 4.0, 0.0)
    assert model.upper("a", sure) < 0.05
    assert model.upper("a", unsure) > 0.5


def test_the_fit_finds_the_synthetic_truth_and_the_bound_tightens_with_rows() -> None:
    small, large = RiskModel(), RiskModel()
    small.add(labelled(200, seed=1))
    large.add(labelled(10_000, seed=2))
    f = Features(4.0, 0.9, 4.0, 0.1)
    expected = float(truth(np.array([4.0]))[0])  # 0.119
    for m in (small, large):
        m.model("a").fit()
    assert abs(large.model("a").mean(f.vector()) - expected) < 0.03
    gap_small = small.upper("a", f) - small.model("a").mean(f.vector())
    gap_large = large.upper("a", f) - large.model("a").mean(f.vector())
    assert gap_large < gap_small / 2


@pytest.mark.parametrize("budget", [0.02, 0.05, 0.1])
def test_served_hits_keep_the_budget_on_a_calibrated_stream(budget: float) -> None:
    model = RiskModel()
    model.add(labelled(4000, seed=3))
    rng = np.random.default_rng(4)
    served = wrong = 0
    for _ in range(20_000):
        z = float(rng.uniform(-4, 8))
        choice = model.choose("a", [Features(z, 0.9, 4.0, 0.1)], budget)
        if choice is not None:
            served += 1
            wrong += int(rng.random() < truth(np.array([z]))[0])
    assert served > 1000  # it does serve: the budget allows the sure ones
    low, _ = wilson(wrong, served)
    assert low <= budget  # realised error not above the budget beyond doubt
    assert wrong / served <= budget


def test_the_model_learns_that_high_scores_can_be_wrong_on_this_alias() -> None:
    model = RiskModel()
    f = Features(6.0, 0.95, 4.0, 0.0)
    model.add([row(6.0, 0, cos=0.95) for _ in range(300)] + [row(-2.0, 1, cos=0.8) for _ in range(300)])
    assert model.choose("a", [f], 0.05) == 0
    model.add([row(6.0, int(i % 3 == 0), cos=0.95) for i in range(600)])  # now a third wrong at z = 6
    assert model.choose("a", [f], 0.05) is None


def test_choose_takes_the_lowest_risk_candidate_and_ignores_replace_rows() -> None:
    model = RiskModel()
    model.add(labelled(4000, seed=5))
    features = candidate_features([1.0, 7.0], [0.9, 0.9], [0.1, 0.1])
    assert features[1].margin == pytest.approx(6.0) and features[0].margin == pytest.approx(-6.0)
    assert model.choose("a", features, 0.05) == 1
    assert model.choose("a", features[:1], 0.05) is None
    model.add([Observation("b", "ns", "e", "replace", 0.0, 0, 0, 0, 0, 1) for _ in range(100)])
    assert model.model("b").n == 0


def test_logit_and_wilson() -> None:
    assert logit(0.5) == 0.0
    assert logit(1.0) == 8.0 and logit(0.0) == -8.0
    assert logit(0.9) == pytest.approx(math.log(9))
    low, high = wilson(2, 100)
    assert 0.005 < low < 0.02 < high < 0.08
    assert wilson(0, 0) == (0.0, 1.0)


def test_the_ring_keeps_the_newest_rows() -> None:
    model = RiskModel(kept=100)
    model.add([row(5.0, 1) for _ in range(100)])
    model.add([row(5.0, 0) for _ in range(100)])
    kept = model.model("a")
    assert kept.n == 100 and kept.wrong == 0 and kept.total == 200


def test_the_average_rule_serves_more_and_keeps_the_budget_on_average() -> None:
    per_hit, average = RiskModel(), RiskModel(mode="average")
    for m in (per_hit, average):
        m.add(labelled(4000, seed=6))
    rng = np.random.default_rng(7)
    counts = {}
    for name, m in (("per_hit", per_hit), ("average", average)):
        served = wrong = 0
        for _ in range(20_000):
            z = float(rng.uniform(-4, 8))
            if m.choose("a", [Features(z, 0.9, 4.0, 0.1)], 0.05) is not None:
                served += 1
                wrong += int(rng.random() < truth(np.array([z]))[0])
        counts[name] = (served, wrong)
    (s1, w1), (s2, w2) = counts["per_hit"], counts["average"]
    assert s2 > 1.3 * s1  # the least risky candidates, as many as the budget allows
    assert w2 / s2 <= 0.05 and w1 / s1 <= 0.05
    assert w2 / s2 > w1 / s1  # it spends the budget instead of keeping it


def test_a_check_row_stands_for_the_served_hits_it_samples() -> None:
    m = RiskModel(mode="average")
    m.add([row(5.0, 0, kind="check")], check_rate=lambda alias: 0.02)
    m.add([row(5.0, 1, kind="report")], check_rate=lambda alias: 0.02)
    weights = m.model("a")._weight[:2]
    assert list(weights) == [50.0, 0.0]
