"""Decisions of the learned router: price weight, quality target, max price, candidates, the header."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from router.routing_data import fake_embed
from sophia.errors import ModelNotFound
from sophia.providers.base import ModelInfo
from sophia.router.dataset import load_csv
from sophia.router.policy import Calibration, calibrate, choose
from sophia.router.router import LearnedRouter
from sophia.router.train import TrainOptions, train_router

CHEAP, MID, STRONG = "vendor0/model-0", "vendor1/model-1", "vendor2/model-2"


@pytest.fixture
def router(routing_csv: Callable[..., tuple[Path, list[str]]]) -> LearnedRouter:
    path, _ = routing_csv(3, 150)
    return train_router(load_csv(path), fake_embed, TrainOptions(folds=3))


def test_choose_maximises_quality_minus_weighted_cost_and_breaks_ties_cheaply() -> None:
    quality = np.array([[0.5, 0.9], [0.8, 0.8]])
    cost = np.array([[1.0, 2.0], [1.0, 2.0]])
    np.testing.assert_array_equal(choose(quality, cost, 0.0), [1, 0])  # tie on row 2 -> cheaper
    np.testing.assert_array_equal(choose(quality, cost, 1.0), [0, 0])  # 0.5-1 > 0.9-2
    np.testing.assert_array_equal(choose(quality, cost, math.inf), [0, 0])
    np.testing.assert_array_equal(choose(quality, cost, np.array([0.0, math.inf])), [1, 0])


def test_calibrate_takes_the_largest_weight_before_the_ratio_first_dips() -> None:
    ratios = np.array([[1.0, 0.99, 0.96, 0.98, 0.90]])  # noisy: 0.98 after a dip does not count
    weights = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    table = calibrate(ratios, weights, np.array([0.9, 0.97, 0.995, 1.01]))
    np.testing.assert_array_equal(table[0, :3], [4.0, 1.0, 0.0])
    assert math.isnan(table[0, 3])  # no weight reaches 101%


def test_calibration_lookup_rounds_the_target_up() -> None:
    cal = Calibration(np.array([0.9, 0.95, 1.0]), np.array([[5.0, 2.0, 0.0], [6.0, 3.0, math.nan]]))
    assert cal.price_weight(0, 0.93) == 2.0  # 0.93 is served as 0.95, never less strict
    assert cal.price_weight(None, 0.95) == 3.0  # the pooled row
    assert math.isnan(cal.price_weight(None, 1.0))


def test_price_weight_zero_picks_the_best_and_inf_the_cheapest(router: LearnedRouter) -> None:
    q = router.question(
        "['You are a careful assistant. Reply briefly.\\n\\nQ: What do you know about Saturn?']"
    )
    emb = fake_embed([q.text])[0]
    best = router.decide(q, emb, price_weight=0.0)
    assert best.rule == "price_weight"
    assert best.chosen.quality == max(c.quality for c in best.candidates)
    assert router.decide(q, emb, price_weight=math.inf).model == CHEAP


def test_a_hard_question_goes_to_a_stronger_model_than_an_easy_one(router: LearnedRouter) -> None:
    weight = 500.0  # quality per dollar: worth it only where the cheap model is likely wrong
    hard = router.question("Q: What do you know about the planet Neptune? (planet question 999)")
    easy = router.question("Q: What do you know about the fruit mango? (fruit question 998)")
    d_hard = router.decide(hard, fake_embed([hard.text])[0], price_weight=weight)
    d_easy = router.decide(easy, fake_embed([easy.text])[0], price_weight=weight)
    by_model = {c.model: c for c in d_hard.candidates}
    assert by_model[STRONG].quality > by_model[CHEAP].quality + 0.2
    assert d_hard.model == STRONG
    assert d_easy.model != STRONG


def test_quality_target_uses_the_calibrated_weight_or_the_strongest(router: LearnedRouter) -> None:
    q = router.question("Q: Tell me one fact about Mars.")
    emb = fake_embed([q.text])[0]
    d = router.decide(q, emb, quality_target=0.9)
    assert d.rule == "target" and d.quality_target == 0.9
    assert d.price_weight == pytest.approx(router.price_weight_for(0, 0.9))
    router.calibration.weights[:] = math.nan  # no weight meets any target
    strongest = router.decide(q, emb, quality_target=0.99)
    assert strongest.rule == "strongest"
    assert strongest.model == router.reference == STRONG


def test_max_price_drops_expensive_models_and_keeps_the_cheapest_when_all_are_too_dear(
    router: LearnedRouter,
) -> None:
    q = router.question("Q: What do you know about Jupiter?")
    emb = fake_embed([q.text])[0]
    costs = {c.model: c.cost for c in router.decide(q, emb).candidates}
    d = router.decide(q, emb, price_weight=0.0, max_price=costs[MID] * 1.01)
    assert d.model in (CHEAP, MID)
    assert d.max_price is not None
    d = router.decide(q, emb, price_weight=0.0, max_price=costs[CHEAP] / 10)
    assert d.model == CHEAP
    assert "cheapest kept" in d.note


def test_candidates_are_gateway_ids_mapped_to_trained_models(router: LearnedRouter) -> None:
    mapped = router.with_model_map({"openai/big": STRONG, "local/small": CHEAP})
    big = ModelInfo("openai/big", "openai", "big", 1.0, 1.0, 8000)
    q = mapped.question("Q: Describe Venus in a sentence.")
    emb = fake_embed([q.text])[0]
    d = mapped.decide(q, emb, [big, "local/small", "unmapped/model"], price_weight=0.0)
    assert {c.model for c in d.candidates} == {"openai/big", "local/small"}
    assert {c.trained for c in d.candidates} == {STRONG, CHEAP}
    cheap_big = mapped.decide(q, emb, [big, "local/small"], price_weight=1e9, costs={"openai/big": 0.0})
    assert cheap_big.model == "openai/big"  # the gateway's own price overrides the prediction
    only = mapped.decide(q, emb, ["local/small"])
    assert only.rule == "only_candidate" and only.model == "local/small"
    with pytest.raises(ModelNotFound, match="model_map"):
        mapped.decide(q, emb, ["unmapped/model"])
    with pytest.raises(ValueError, match="not trained on"):
        router.with_model_map({"x": "no-such-model"})


def test_the_header_is_one_ascii_line_and_the_ledger_gets_every_candidate(router: LearnedRouter) -> None:
    q = router.question("Q: What do you know about Ceres? ünïcödé\nsecond line")
    d = router.decide(q, fake_embed([q.text])[0], task_type="alpha")
    assert d.task == "alpha"
    header = d.header
    assert header.isascii() and "\n" not in header
    assert header.startswith("learned target; task=alpha; target=0.97")
    assert f"chose {d.model}" in header
    record = d.to_json()
    assert record["model"] == d.model
    assert len(record["candidates"]) == 3


def test_the_task_comes_from_metadata_else_the_template(router: LearnedRouter) -> None:
    q = router.question(
        "['Answer with one word.\\n\\nQ: What colour is the sky?\\nA: blue\\n\\nQ: What is 2 + 2?\\nA: four\\n\\nQ: Tell me about plum.\\nA:']"
    )
    assert q.template_task == "alpha"
    assert q.text == "Q: Tell me about plum."
    emb = fake_embed([q.text])[0]
    assert router.decide(q, emb).task == "alpha"
    assert router.decide(q, emb, task_type="beta").task == "beta"
    assert router.decide(q, emb, task_type="unknown-task").task == "alpha"
