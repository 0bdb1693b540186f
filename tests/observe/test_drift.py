"""Drift tests on synthetic streams with known shifts: false alarms with no shift, detection of a 10% shift."""

from __future__ import annotations

import numpy as np
import pytest

from sophia.errors import InvalidRequest
from sophia.observe.drift import categorical, embeddings, ks, ks_pvalue, proportion, psi

TRIALS = 200


def rates(check: object, trials: int = TRIALS) -> float:
    return sum(bool(check(t)) for t in range(trials)) / trials  # type: ignore[operator]


def test_latency_false_alarms_and_a_ten_percent_slowdown() -> None:
    def window(rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
        return rng.lognormal(np.log(400), 0.3, 1000) * scale  # ms, as a provider answers

    def alarm(t: int, shift: float) -> bool:
        rng = np.random.default_rng(t)
        return ks("latency", window(rng), window(rng, shift)).drifted

    assert rates(lambda t: alarm(t, 1.0)) <= 0.05
    assert rates(lambda t: alarm(t, 1.10)) >= 0.95


def test_cache_hit_rate_false_alarms_and_a_ten_percent_drop() -> None:
    def alarm(t: int, current: float) -> bool:
        rng = np.random.default_rng(t)
        n = 10_000
        return proportion(
            "cache hit rate", (int(rng.binomial(n, 0.40)), n), (int(rng.binomial(n, current)), n)
        ).drifted

    assert rates(lambda t: alarm(t, 0.40)) <= 0.05
    assert rates(lambda t: alarm(t, 0.36)) >= 0.95


def test_model_mix_false_alarms_and_a_ten_percent_move() -> None:
    models = np.array(["gpt-4.1-mini", "claude-haiku", "local", "llama-8b"])
    base = np.array([0.5, 0.3, 0.1, 0.1])
    moved = np.array([0.4, 0.3, 0.2, 0.1])  # a tenth of the traffic moved from one model to another

    def alarm(t: int, p: np.ndarray) -> bool:
        rng = np.random.default_rng(t)
        return categorical(
            "model mix", list(rng.choice(models, 2000, p=base)), list(rng.choice(models, 2000, p=p))
        ).drifted

    assert rates(lambda t: alarm(t, base)) <= 0.05
    assert rates(lambda t: alarm(t, moved)) >= 0.95


def test_prompt_embeddings_false_alarms_and_a_ten_percent_new_topic() -> None:
    dim = 384
    topics = np.random.default_rng(99).normal(0, 1, (2, dim)).astype(np.float32)

    def window(rng: np.random.Generator, new_share: float) -> np.ndarray:
        n = 500
        new = rng.random(n) < new_share
        centres = np.where(new[:, None], topics[1], topics[0])
        vectors = centres + rng.normal(0, 1.0, (n, dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def alarm(t: int, share: float) -> bool:
        rng = np.random.default_rng(t)
        return embeddings("prompts", window(rng, 0.0), window(rng, share), permutations=150, seed=t).drifted

    assert rates(lambda t: alarm(t, 0.0), 60) <= 0.05
    assert rates(lambda t: alarm(t, 0.10), 60) >= 0.95


def test_results_say_which_test_and_why() -> None:
    rng = np.random.default_rng(1)
    result = ks("tokens", rng.normal(100, 10, 500), rng.normal(130, 10, 500))
    assert result.drifted and result.test == "ks" and result.extra and result.extra["psi"] > 0.25
    assert "tokens: drifted (ks" in result.describe()
    same = rng.normal(0, 1, 1000)
    assert psi(same, same) == pytest.approx(0.0, abs=1e-9)
    assert ks_pvalue(0.0, 100, 100) == 1.0 and ks_pvalue(0.5, 100, 100) < 1e-6


def test_too_few_samples_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequest, match="at least 20 samples"):
        ks("latency", [1.0] * 5, [2.0] * 50)
    with pytest.raises(InvalidRequest):
        proportion("errors", (3, 10), (5, 100))
    with pytest.raises(InvalidRequest):
        embeddings("prompts", np.zeros((30, 4)), np.zeros((30, 5)))
