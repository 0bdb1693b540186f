"""The question set's main split meets the issue's targets without any model call."""

from __future__ import annotations

from types import ModuleType

import duckdb

from sophia.warehouse.ask import Vocabulary
from sophia.warehouse.metrics import MetricCatalog


def test_main_split_meets_the_targets(
    bench: ModuleType, catalog: MetricCatalog, warehouse: duckdb.DuckDBPyConnection, vocabulary: Vocabulary
) -> None:
    questions = bench.load("questions.jsonl")
    kinds = [q["kind"] for q in questions]
    assert len(questions) + len(bench.load("questions_holdout.jsonl")) >= 150
    assert kinds.count("sql") >= 35 and kinds.count("metric") >= 45 and kinds.count("unanswerable") >= 25
    summary = bench.score(questions, catalog, warehouse, vocabulary).summary()
    assert summary["metric_correct_no_model"] >= 0.90, summary
    assert summary["abstention"] >= 0.90, summary
    assert summary["false_abstention"] <= 0.05, summary


def test_gold_sql_runs(bench: ModuleType, warehouse: duckdb.DuckDBPyConnection) -> None:
    answers = bench.check_sql(bench.load("questions.jsonl"), warehouse)  # raises on SQL the engine refuses
    assert len(answers) >= 35
    assert sum(bool(rows) for rows in answers.values()) >= 30  # a few answers are empty sets, truthfully
