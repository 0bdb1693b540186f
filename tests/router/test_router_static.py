"""Static policies: capability filters, breaker health, and each ordering rule."""

from __future__ import annotations

import random

import pytest

from sophia.providers.base import CHAT, JSON_MODE, TOOLS, VISION, ModelInfo
from sophia.router.static import Needs, StaticPolicy, rank

CHEAP = ModelInfo("a/cheap", "a", "cheap", 0.1, 0.4, 16_000)
MID = ModelInfo("b/mid", "b", "mid", 1.0, 2.0, 128_000, frozenset({CHAT, TOOLS, JSON_MODE}))
BIG = ModelInfo("c/big", "c", "big", 5.0, 15.0, 200_000, frozenset({CHAT, TOOLS, VISION, JSON_MODE}))
ALL = [BIG, MID, CHEAP]


def ids(ranking: object) -> list[str]:
    return [m.id for m in ranking.chain]  # type: ignore[attr-defined]


def test_cheapest_orders_by_price_of_the_request() -> None:
    assert ids(rank(StaticPolicy("cheapest"), ALL)) == ["a/cheap", "b/mid", "c/big"]


def test_capabilities_and_context_filter_candidates() -> None:
    tools = rank(StaticPolicy("cheapest"), ALL, needs=Needs(capabilities=frozenset({TOOLS})))
    assert ids(tools) == ["b/mid", "c/big"]
    assert tools.excluded == {"a/cheap": "no tools"}
    vision = rank(StaticPolicy("cheapest"), ALL, needs=Needs(capabilities=frozenset({VISION, JSON_MODE})))
    assert ids(vision) == ["c/big"]
    long = rank(StaticPolicy("cheapest"), ALL, needs=Needs(context_tokens=150_000))
    assert ids(long) == ["c/big"]
    assert long.excluded["b/mid"] == "context 128000 < 150000"


def test_an_open_breaker_excludes_and_a_half_open_one_demotes() -> None:
    health = {"a/cheap": {"state": "open"}, "b/mid": {"state": "half_open"}}
    ranking = rank(StaticPolicy("cheapest"), ALL, health)
    assert ids(ranking) == ["c/big", "b/mid"]
    assert ranking.excluded == {"a/cheap": "breaker open"}
    assert ranking.demoted == {"b/mid": "breaker half-open"}
    assert ranking.reason.startswith("-> c/big; a/cheap excluded (breaker open)")


def test_a_high_error_rate_demotes_only_with_enough_calls() -> None:
    noisy = {"a/cheap": {"state": "closed", "calls": 10, "error_rate": 0.6}}
    assert ids(rank(StaticPolicy("cheapest"), ALL, noisy)) == ["b/mid", "c/big", "a/cheap"]
    few = {"a/cheap": {"state": "closed", "calls": 2, "error_rate": 1.0}}
    assert ids(rank(StaticPolicy("cheapest"), ALL, few))[0] == "a/cheap"


def test_fastest_uses_measured_latency_and_puts_unmeasured_models_last() -> None:
    health = {"c/big": {"latency_ms": 120.0}, "b/mid": {"latency_ms": 300.0}}
    assert ids(rank(StaticPolicy("fastest"), ALL, health)) == ["c/big", "b/mid", "a/cheap"]


def test_priority_follows_the_configured_order() -> None:
    policy = StaticPolicy("priority", order=["b/mid", "a/cheap"])
    assert ids(rank(policy, ALL)) == ["b/mid", "a/cheap", "c/big"]
    assert ids(rank(StaticPolicy("priority"), ALL)) == ["c/big", "b/mid", "a/cheap"]  # given order


def test_weighted_draws_in_proportion_and_never_first_with_weight_zero() -> None:
    policy = StaticPolicy("weighted", weights={"a/cheap": 3.0, "b/mid": 1.0, "c/big": 0.0})
    rng = random.Random(7)
    firsts = [ids(rank(policy, ALL, rng=rng))[0] for _ in range(2000)]
    assert firsts.count("c/big") == 0
    assert 0.70 < firsts.count("a/cheap") / len(firsts) < 0.80
    assert sorted(ids(rank(policy, ALL, rng=rng))) == ["a/cheap", "b/mid", "c/big"]


def test_needs_of_a_chat_request() -> None:
    body = {
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        "tools": [{"type": "function"}],
        "response_format": {"type": "json_object"},
        "max_tokens": 500,
    }
    assert Needs.of_request(body, prompt_tokens=1000) == Needs(1500, frozenset({VISION, TOOLS, JSON_MODE}))
    assert Needs.of_request({"messages": []}, 10) == Needs(10, frozenset())


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        StaticPolicy("random")
