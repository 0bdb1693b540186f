"""Ledger analysis: per task type and model, and recommendations only at equal measured quality."""

from __future__ import annotations

from typing import Any

import pytest

from sophia.router.recommend import analyse, feedback_of, format_analysis, wilson

DAY = 86_400.0


def rows(
    model: str, n: int, cost: float, *, task: str = "summarise", errors: int = 0, feedback: Any = None
) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        meta = None if feedback is None else {"feedback": feedback}
        out.append(
            {
                "ts": i * (10 * DAY) / n,  # ten days of traffic
                "task_type": task,
                "served_model": model,
                "cost_usd": cost,
                "outcome": "error" if i < errors else "ok",
                "cache": "miss",
                "metadata": meta,
            }
        )
    return out


def test_a_cheaper_model_with_equal_measured_quality_is_recommended() -> None:
    ledger = rows("openai/gpt-4.1", 300, 0.01) + rows("openai/gpt-4.1-mini", 300, 0.001)
    result = analyse(ledger)
    assert result.proxy == "delivered"
    [rec] = result.recommendations
    assert (rec.task_type, rec.current, rec.suggested) == (
        "summarise",
        "openai/gpt-4.1",
        "openai/gpt-4.1-mini",
    )
    # 300 requests in ~10 days -> ~900 a month, each $0.009 cheaper
    assert rec.saving_per_month_usd == pytest.approx(0.009 * 300 * 30 / result.period_days)
    assert rec.text.startswith(
        "route task summarise to openai/gpt-4.1-mini instead of openai/gpt-4.1: saves $"
    )


def test_a_cheaper_model_that_fails_more_is_not_recommended() -> None:
    ledger = rows("big", 300, 0.01) + rows("small", 300, 0.001, errors=30)
    assert analyse(ledger).recommendations == []


def test_negative_feedback_counts_against_quality() -> None:
    ledger = rows("big", 300, 0.01, feedback="up") + rows("small", 300, 0.001, feedback=0.0)
    result = analyse(ledger)
    assert result.proxy == "delivered + feedback"
    assert result.recommendations == []
    small = next(c for c in result.cells if c.model == "small")
    assert small.quality == 0.0 and small.with_feedback == 300


def test_too_few_requests_give_no_recommendation_and_tasks_are_kept_apart() -> None:
    ledger = rows("big", 300, 0.01) + rows("small", 10, 0.001) + rows("small", 300, 0.001, task="code")
    assert analyse(ledger).recommendations == []


def test_cache_hits_are_skipped_and_period_can_be_given() -> None:
    ledger = rows("big", 100, 0.01) + [{**r, "cache": "semantic"} for r in rows("small", 100, 0.0)]
    result = analyse(ledger, period_days=30)
    assert [c.model for c in result.cells] == ["big"]
    assert result.period_days == 30
    assert "no recommendation" in format_analysis(result)


def test_feedback_forms() -> None:
    assert feedback_of({"feedback": True}) == 1.0
    assert feedback_of('{"feedback": "down"}') == 0.0
    assert feedback_of({"feedback": 3}) == 1.0
    assert feedback_of({"other": 1}) is None
    assert feedback_of("not json") is None


def test_wilson_interval() -> None:
    low, high = wilson(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3)
    assert high == pytest.approx(0.5962, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
