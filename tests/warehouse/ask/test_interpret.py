"""interpret(): the exact query for questions the parser reads, the model for the rest, abstentions named."""

from __future__ import annotations

from datetime import date

import pytest

from sophia.warehouse.ask import Abstain, MetricAnswerPlan, NeedsModel, Vocabulary, interpret
from sophia.warehouse.metrics import MetricCatalog

TODAY = date(2026, 12, 1)


def plan(question: str, catalog: MetricCatalog, vocabulary: Vocabulary) -> MetricAnswerPlan:
    result = interpret(question, catalog, vocabulary=vocabulary, today=TODAY)
    assert isinstance(result, MetricAnswerPlan), result
    return result


def seg(value: str) -> str:
    return f"{{{{ Dimension('account__segment') }}}} = '{value}'"


def test_vocabulary_holds_the_warehouse_values(vocabulary: Vocabulary) -> None:
    assert "Yardi" in vocabulary.values["account__pms_vendor"]
    assert "Knock" in vocabulary.values["deal__competitor"]
    assert (vocabulary.data_start, vocabulary.data_end) == (date(2024, 1, 1), date(2026, 11, 30))
    assert "is_decision_maker" in vocabulary.columns["contacts"]


def test_retention_by_rep(catalog: MetricCatalog, vocabulary: Vocabulary) -> None:
    q = plan("which reps have the best retention?", catalog, vocabulary).query
    assert (list(q.metrics), list(q.group_by), list(q.order_by), q.limit) == (
        ["net_revenue_retention"],
        ["account__rep__name"],
        ["-net_revenue_retention"],
        None,
    )


def test_competitors_in_large_portfolio_deals(catalog: MetricCatalog, vocabulary: Vocabulary) -> None:
    result = plan("how do we do against competitors in large-portfolio deals?", catalog, vocabulary)
    assert (list(result.query.metrics), list(result.query.group_by)) == (["win_rate"], ["deal__competitor"])
    assert list(result.query.where) == [seg("Enterprise")]
    assert result.matched["filters"] == {"account__segment": "large portfolio"}


def test_regions_convert_quarter_by_quarter(catalog: MetricCatalog, vocabulary: Vocabulary) -> None:
    q = plan("which regions convert best, quarter by quarter?", catalog, vocabulary).query
    assert list(q.metrics) == ["win_rate"]
    assert list(q.group_by) == ["account__region", "metric_time__quarter"]


def test_last_quarter_vs_the_one_before(catalog: MetricCatalog, vocabulary: Vocabulary) -> None:
    q = plan("what was revenue last quarter vs the one before?", catalog, vocabulary).query
    assert (list(q.metrics), list(q.group_by), q.start, q.end) == (
        ["revenue"],
        ["metric_time__quarter"],
        "2026-04-01",
        "2026-10-01",
    )


def test_top_n_filters_and_time(catalog: MetricCatalog, vocabulary: Vocabulary) -> None:
    q = plan("Top 5 reps by bookings in the West this year", catalog, vocabulary).query
    assert (list(q.group_by), list(q.order_by), q.limit) == (["rep__name"], ["-bookings"], 5)
    assert list(q.where) == ["{{ Dimension('account__region') }} = 'West'"]
    assert (q.start, q.end) == ("2026-01-01", "2026-12-02")


def test_best_follows_polarity(catalog: MetricCatalog, vocabulary: Vocabulary) -> None:
    q = plan("which segment has the best churn rate?", catalog, vocabulary).query
    assert (list(q.order_by), q.limit) == (["churn_rate"], 1)  # the best churn is the lowest


def test_two_metrics_and_a_typo(catalog: MetricCatalog, vocabulary: Vocabulary) -> None:
    assert list(plan("bookings and win rate by region", catalog, vocabulary).query.metrics) == [
        "bookings",
        "win_rate",
    ]
    q = plan("bookngs by segmnt", catalog, vocabulary).query
    assert (list(q.metrics), list(q.group_by)) == (["bookings"], ["account__segment"])


def test_a_word_value_needs_its_column(catalog: MetricCatalog, vocabulary: Vocabulary) -> None:
    assert list(plan("new deals per month", catalog, vocabulary).query.where) == []  # the metric "new deals"
    where = plan("win rate for renewal deals", catalog, vocabulary).query.where
    assert list(where) == ["{{ Dimension('deal__deal_type') }} = 'renewal'"]
    where = plan("how many deals did we lose to knock", catalog, vocabulary).query.where
    assert list(where) == ["{{ Dimension('deal__competitor') }} = 'Knock'"]


@pytest.mark.parametrize(
    ("question", "named", "category"),
    [
        ("average salary of our reps", "salaries", "missing_data"),
        ("revenue by industry", "industry", "missing_attribute"),
        ("what's the weather in Paris?", "weather", "off_topic"),
        ("churn in 2023", "starts 2024-01-01", "out_of_range"),
        ("what will bookings be next quarter?", "future", "future"),
        ("forecast ARR for 2027", "future", "future"),
        ("can you forecast churn for us", "forecast", "future"),
        ("which reps hit quota?", "quota", "missing_data"),
        ("deals by city", "city", "missing_attribute"),
    ],
)
def test_abstains_naming_what_is_missing(
    question: str, named: str, category: str, catalog: MetricCatalog, vocabulary: Vocabulary
) -> None:
    result = interpret(question, catalog, vocabulary=vocabulary, today=TODAY)
    assert isinstance(result, Abstain), result
    assert named in result.reason and result.category == category


@pytest.mark.parametrize(
    "question",
    [
        "how many contacts are decision makers at Enterprise accounts?",
        "list the 10 largest deals won in 2025",
        "average portfolio units of Enterprise accounts",
        "which accounts have never had a call?",
    ],
)
def test_sql_questions_go_to_the_model(question: str, catalog: MetricCatalog, vocabulary: Vocabulary) -> None:
    result = interpret(question, catalog, vocabulary=vocabulary, today=TODAY)
    assert isinstance(result, NeedsModel) and result.reason == "sql", result


def test_sql_hints_carry_what_was_understood(catalog: MetricCatalog, vocabulary: Vocabulary) -> None:
    result = interpret(
        "how many contacts are decision makers at Enterprise accounts?",
        catalog,
        vocabulary=vocabulary,
        today=TODAY,
    )
    assert isinstance(result, NeedsModel)
    assert result.hints["filters"] == [{"dimension": "account__segment", "op": "=", "value": "Enterprise"}]


def test_an_empty_question_abstains(catalog: MetricCatalog, vocabulary: Vocabulary) -> None:
    assert isinstance(interpret("  ?! ", catalog, vocabulary=vocabulary, today=TODAY), Abstain)
