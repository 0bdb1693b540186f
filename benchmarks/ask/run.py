"""ask_data's question understanding, scored without any model call (issue 23).

Runs ``sophia.warehouse.ask.interpret`` on every question of ``questions.jsonl`` (main split) and
``questions_holdout.jsonl`` (held out: never tuned on) against the shipped metric catalog and a small
demo warehouse (built into ``benchmarks/.work/`` when missing), and scores:

* metric questions: correct without a model call when the plan's query returns the same rows as the
  gold query (sets of rows, numbers within 1e-6 relative: equivalent queries count);
* unanswerable questions: abstained (and whether the reason names the missing thing);
* false abstentions: abstained on a metric or SQL question;
* the NeedsModel rate (the model is asked to write a query_metrics call or SQL).

    python benchmarks/ask/run.py [--scale 0.1] [--today 2026-12-01]

writes results/ask.json and the table of README.md (between the ``results`` markers).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from sophia.warehouse.ask import (
    Abstain,
    MetricAnswerPlan,
    NeedsModel,
    Vocabulary,
    build_vocabulary,
    interpret,
    vocabulary_queries,
)

HERE = Path(__file__).parent
WORK = HERE.parent / ".work"
TODAY = date(2026, 12, 1)  # the day after the demo data ends: "last quarter" is Q3 2026
TARGETS = {"metric_correct": 0.90, "abstention": 0.90, "false_abstention": 0.05}


def load(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (HERE / name).read_text().splitlines() if line.strip()]


def gold_query(gold: dict[str, Any]) -> Any:
    from sophia.warehouse.metrics import MetricQuery

    where = [f"{{{{ Dimension('{d}') }}}} {op} '{v}'" for d, op, v in gold["where"]]
    return MetricQuery(
        metrics=gold["metrics"], group_by=gold["group_by"], where=where, start=gold["start"],
        end=gold["end"], order_by=gold["order_by"], limit=gold["limit"],
    )  # fmt: skip


def _value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float) or type(value).__name__ == "Decimal":
        number = float(value)
        return (
            None
            if math.isnan(number)
            else round(number, 6 - math.floor(math.log10(abs(number))) if number else 6)
        )
    return str(value)


def rows_of(con: duckdb.DuckDBPyConnection, catalog: Any, query: Any) -> list[tuple[Any, ...]]:
    """The query's rows, each as a sorted tuple of normalized values, sorted (column order aside)."""
    sql = catalog.compile(query, dialect="duckdb")
    rows = con.execute(sql).fetchall()
    return sorted((tuple(sorted((_value(v) for v in row), key=repr)) for row in rows), key=repr)


def open_warehouse(scale: float) -> duckdb.DuckDBPyConnection:
    path = WORK / f"ask-demo-{scale}.duckdb"
    if not path.exists():
        from sophia.warehouse.demo import build_duckdb

        WORK.mkdir(parents=True, exist_ok=True)
        build_duckdb(path, scale=scale)
    return duckdb.connect(str(path), read_only=True)


def load_vocabulary(con: duckdb.DuckDBPyConnection, catalog: Any) -> Vocabulary:
    return build_vocabulary(
        {key: con.execute(sql).fetchall() for key, sql in vocabulary_queries(catalog).items()}
    )


@dataclass
class Score:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def rate(self, part: str, whole: str) -> float:
        return self.counts[part] / self.counts[whole] if self.counts[whole] else 0.0

    def summary(self) -> dict[str, Any]:
        c = self.counts
        return {
            "metric_questions": c["metric"],
            "metric_correct_no_model": round(self.rate("metric_correct", "metric"), 4),
            "metric_needs_model": round(self.rate("metric_needs_model", "metric"), 4),
            "unanswerable_questions": c["unanswerable"],
            "abstention": round(self.rate("unanswerable_abstained", "unanswerable"), 4),
            "abstention_reason_named": round(self.rate("unanswerable_reason_named", "unanswerable"), 4),
            "sql_questions": c["sql"],
            "sql_needs_model": round(self.rate("sql_needs_model", "sql"), 4),
            "sql_metric_plan": round(self.rate("sql_metric_plan", "sql"), 4),
            "answerable_questions": c["metric"] + c["sql"],
            "false_abstention": round(
                (c["metric_abstained"] + c["sql_abstained"]) / max(1, c["metric"] + c["sql"]), 4
            ),
            "needs_model_rate": round(c["needs_model"] / max(1, c["total"]), 4),
            "ms_per_question": round(c["elapsed_ms"] / max(1, c["total"]), 2),
        }


def score(
    questions: list[dict[str, Any]],
    catalog: Any,
    con: duckdb.DuckDBPyConnection,
    vocabulary: Vocabulary,
    today: date = TODAY,
) -> Score:
    """Interpret every question (no model) and count what came out against the gold."""
    out = Score()
    for item in questions:
        kind = item["kind"]
        started = time.perf_counter()
        result = interpret(item["question"], catalog, vocabulary=vocabulary, today=today)
        out.counts["elapsed_ms"] += int((time.perf_counter() - started) * 1000)
        out.counts["total"] += 1
        out.counts[kind] += 1
        out.counts["needs_model"] += isinstance(result, NeedsModel)
        ok = _judge(item, result, catalog, con, out)
        if not ok:
            out.failures.append({"id": item["id"], "question": item["question"], "got": _describe(result)})
    return out


def _judge(
    item: dict[str, Any], result: Any, catalog: Any, con: duckdb.DuckDBPyConnection, out: Score
) -> bool:
    kind = item["kind"]
    if isinstance(result, Abstain):
        out.counts[f"{kind}_abstained"] += 1
        if kind == "unanswerable":
            named = (
                item["category"] in ("future", "out_of_range", "off_topic")
                or item["missing"].lower() in result.reason.lower()
            )
            out.counts["unanswerable_reason_named"] += named
        return kind == "unanswerable"
    if isinstance(result, NeedsModel):
        out.counts[f"{kind}_needs_model"] += 1
        return kind == "sql"
    out.counts[f"{kind}_metric_plan"] += 1
    if kind != "metric":
        return False
    try:
        correct = rows_of(con, catalog, result.query) == rows_of(con, catalog, gold_query(item["gold"]))
    except Exception as error:  # noqa: BLE001 - a plan that does not compile is a wrong answer, reported
        out.failures.append({"id": item["id"], "error": str(error)[:300]})
        correct = False
    out.counts["metric_correct"] += correct
    return correct


def _describe(result: Any) -> Any:
    if isinstance(result, MetricAnswerPlan):
        return {"plan": result.explanation}
    if isinstance(result, NeedsModel):
        return {"needs_model": result.reason, "detail": result.detail, "candidates": result.candidates[:3]}
    return {"abstain": result.reason}


def check_sql(questions: list[dict[str, Any]], con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The gold SQL's answers (first rows), so a model's SQL can be checked against them."""
    answers = {}
    for item in questions:
        if item["kind"] == "sql":
            rows = con.execute(item["gold_sql"]).fetchmany(5)
            answers[item["id"]] = [[_value(v) for v in row] for row in rows]
    return answers


def load_catalog() -> Any:
    from sophia.warehouse.metrics import load_catalog as load

    return load()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--today", type=date.fromisoformat, default=TODAY)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    catalog = load_catalog()
    con = open_warehouse(args.scale)
    vocabulary = load_vocabulary(con, catalog)
    results: dict[str, Any] = {"today": args.today.isoformat(), "scale": args.scale, "targets": TARGETS}
    for split, name in (("main", "questions.jsonl"), ("holdout", "questions_holdout.jsonl")):
        questions = load(name)
        scored = score(questions, catalog, con, vocabulary, args.today)
        results[split] = {"summary": scored.summary(), "failures": scored.failures}
        if split == "main":
            results["sql_gold_answers"] = check_sql(questions, con)
        print(split, json.dumps(scored.summary()))
    results["seconds"] = round(time.perf_counter() - started, 1)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "ask.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    if not args.no_readme:
        write_table(results)
    print(f"{results['seconds']} s")
    return 0


def write_table(results: dict[str, Any]) -> None:
    readme = HERE / "README.md"
    lines = [
        "| split | metric correct, no model | metric -> NeedsModel | abstention (reason names it) | false abstention | SQL -> NeedsModel | NeedsModel rate | ms/question |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split in ("main", "holdout"):
        s = results[split]["summary"]
        lines.append(
            f"| {split} ({s['metric_questions']} metric, {s['unanswerable_questions']} unanswerable, {s['sql_questions']} SQL) "
            f"| {s['metric_correct_no_model']:.1%} | {s['metric_needs_model']:.1%} | {s['abstention']:.1%} ({s['abstention_reason_named']:.1%}) "
            f"| {s['false_abstention']:.1%} | {s['sql_needs_model']:.1%} | {s['needs_model_rate']:.1%} | {s['ms_per_question']} |"
        )
    table = "\n".join(lines)
    text = readme.read_text() if readme.exists() else "<!-- results -->\n<!-- /results -->\n"
    head, _, rest = text.partition("<!-- results -->")
    _, _, tail = rest.partition("<!-- /results -->")
    readme.write_text(f"{head}<!-- results -->\n{table}\n<!-- /results -->{tail}")


if __name__ == "__main__":
    sys.exit(main())
