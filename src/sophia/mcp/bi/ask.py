"""``ask_data``: a question in words, answered metrics first, SQL second, or an honest abstention.

1. ``sophia.warehouse.ask.interpret`` reads the question against the metric catalogue and the
   values found in the warehouse, without any model: a ``query_metrics`` call it is sure of is run
   at once; a question the data cannot answer is refused with what is missing.
2. Otherwise, with ``allow_model``, the gateway's model (routing, budgets, cache and ledger as for
   any caller) fills a ``query_metrics`` call among the candidate metrics; if that fails to compile
   or run, it writes one SQL statement over the schema, which goes through the same read-only guard
   as ``run_sql``. The SQL run is always shown.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import orjson

from sophia.container import Service, Services
from sophia.errors import SophiaError
from sophia.mcp.bi.schemas import AskIn, AskOut, MetricQueryIn, TableResult
from sophia.mcp.bi.sources import METRICS, metric_query, run_metrics, table_result
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import ToolSet
from sophia.warehouse.service import WAREHOUSE

tools = ToolSet()
MODEL = "sophia/fast"
MAX_ROWS = 50
_JSON = re.compile(r"\{.*\}", re.S)
_SQL = re.compile(r"```(?:sql)?\s*(.+?)```", re.S | re.I)


async def _vocabulary(services: Services) -> Any:
    """The dimension values the warehouse holds (regions, vendors, reps…), read once per process."""
    from sophia.warehouse.ask import build_vocabulary, vocabulary_queries

    catalog = await services.get(METRICS)
    warehouse = await services.get(WAREHOUSE)
    found: dict[str, list[tuple[Any, ...]]] = {}
    for dimension, sql in vocabulary_queries(catalog).items():
        result = await warehouse.query(sql, limit=warehouse.settings.max_rows)
        found[dimension] = [tuple(row) for row in result.rows]
    return build_vocabulary(found)


#: the words of the warehouse's dimension values, for the interpreter
VOCABULARY: Service[Any] = Service("bi-vocabulary", _vocabulary)


def markdown(result: TableResult, limit: int = 20) -> str:
    names = [c.name for c in result.columns]
    lines = ["| " + " | ".join(names) + " |", "|" + " --- |" * len(names)]
    for row in result.rows[:limit]:
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    if result.row_count > limit or result.truncated:
        lines.append(f"\n({limit} of {result.row_count}{'+' if result.truncated else ''} rows shown)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 10 else f"{value:,.2f}"
    return "-" if value is None else str(value)


def _answer(ctx_text: str, result: TableResult) -> str:
    return f"{ctx_text}\n\n{markdown(result)}\n\nSQL:\n```sql\n{result.sql}\n```"


async def _ask_model(ctx: ToolContext, prompt: str) -> tuple[str, float]:
    return await ctx.ask_model(prompt, model=MODEL, max_tokens=400)


def _metric_prompt(question: str, catalog: Any, candidates: list[str], hints: dict[str, Any]) -> str:
    infos = {m.name: m for m in catalog.metrics()}
    names = [n for n in candidates if n in infos] or list(infos)
    lines = [f"- {n}: {infos[n].description or infos[n].label or ''}" for n in names[:15]]
    dims = [d for d in catalog.dimensions(names[:1]) if not d.startswith("metric_time__")][:40]
    return (
        "Turn the question into one metrics query. Answer with JSON only: "
        '{"metrics": [...], "group_by": [...], "where": ["account__region = \'West\'"], '
        '"start": "YYYY-MM-DD" or null, "end": "YYYY-MM-DD" or null}.\n'
        f"Metrics:\n{chr(10).join(lines)}\nDimensions: {', '.join(dims)}, metric_time__month, "
        f"metric_time__quarter, metric_time__year\nToday: {date.today().isoformat()}\n"
        f"Understood so far: {orjson.dumps(hints, default=str).decode()}\nQuestion: {question}\nJSON:"
    )


async def _sql_prompt(ctx: ToolContext, question: str) -> str:
    warehouse = await ctx.service(WAREHOUSE)
    # the table list already carries each table's columns: no second query per table
    tables = [f"{t.name}({', '.join(c.name for c in t.columns)})" for t in await warehouse.datasets()]
    return (
        f"Write one read-only {warehouse.dialect} SQL SELECT statement that answers the question. "
        f"Tables:\n{chr(10).join(tables)}\nQuestion: {question}\nAnswer with the SQL only, in a ```sql block."
    )


def _parse_metric_call(text: str) -> MetricQueryIn:
    found = _JSON.search(text)
    if found is None:
        raise ValueError("the model gave no JSON")
    data = orjson.loads(found.group(0))
    return MetricQueryIn(
        metrics=data["metrics"],
        group_by=data.get("group_by") or [],
        where=[str(w) for w in data.get("where") or []],
        start=data.get("start"),
        end=data.get("end"),
        limit=MAX_ROWS,
    )


def _extract_sql(text: str) -> str:
    found = _SQL.search(text)
    return (found.group(1) if found else text).strip().rstrip(";")


async def _with_model(ctx: ToolContext, args: AskIn, plan: Any, out: dict[str, Any]) -> AskOut:
    catalog = await ctx.service(METRICS)
    problems = []
    if plan.reason == "metric":
        text, cost = await _ask_model(
            ctx, _metric_prompt(args.question, catalog, plan.candidates, plan.hints)
        )
        out["model_calls"] += 1
        out["cost_usd"] += cost
        try:
            call = _parse_metric_call(text)
            result = await run_metrics(ctx, metric_query(call), limit=MAX_ROWS)
        except (SophiaError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"the model's metrics query did not run ({_why(exc)})")
        else:
            query = call.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
            return AskOut(
                **out,
                route="metrics_via_model",
                answer=_answer("Answered from the metrics (query chosen by the model).", result),
                abstained=False,
                query_metrics=query,
                sql=result.sql,
                columns=result.columns,
                rows=result.rows,
            )
    text, cost = await _ask_model(ctx, await _sql_prompt(ctx, args.question))
    out["model_calls"] += 1
    out["cost_usd"] += cost
    sql = _extract_sql(text)
    try:
        warehouse = await ctx.service(WAREHOUSE)
        result = table_result(await warehouse.query(sql, limit=MAX_ROWS))
    except SophiaError as exc:
        problems.append(f"the model's SQL did not run ({exc.message})")
        return AskOut(
            **out,
            route="sql_via_model",
            answer="I could not answer reliably: "
            + "; ".join(problems)
            + f".\n\nSQL tried:\n```sql\n{sql}\n```",
            abstained=False,
            reason="; ".join(problems),
            sql=sql,
        )
    return AskOut(
        **out,
        route="sql_via_model",
        answer=_answer("Answered with SQL written by the model (no metric covers this question).", result),
        abstained=False,
        sql=result.sql,
        columns=result.columns,
        rows=result.rows,
    )


def _why(exc: BaseException) -> str:
    return exc.message if isinstance(exc, SophiaError) else f"{type(exc).__name__}: {str(exc)[:200]}"


@tools.tool(title="Ask the data", read_only=True, destructive=False, idempotent=False, open_world=False)
async def ask_data(ctx: ToolContext, args: AskIn) -> AskOut:
    """Answer a business question: from the metrics when they cover it (no model call), else via the model; shows the query; abstains with a reason."""
    from sophia.warehouse.ask import Abstain, MetricAnswerPlan, interpret

    catalog = await ctx.service(METRICS)
    vocabulary = await ctx.service(VOCABULARY)
    plan = interpret(args.question, catalog, vocabulary=vocabulary, today=date.today())
    out: dict[str, Any] = {"model_calls": 0, "cost_usd": 0.0}
    if isinstance(plan, Abstain):
        return AskOut(
            **out,
            route="abstained",
            answer=f"The data cannot answer this: {plan.reason}",
            abstained=True,
            reason=plan.reason,
        )
    if isinstance(plan, MetricAnswerPlan):
        result = await run_metrics(ctx, plan.query, limit=MAX_ROWS)
        return AskOut(
            **out,
            route="metrics",
            answer=_answer(plan.explanation, result),
            abstained=False,
            query_metrics=_query_dict(plan.query),
            sql=result.sql,
            columns=result.columns,
            rows=result.rows,
        )
    if not args.allow_model:
        reason = f"the question needs the model to map it ({plan.reason}); allow_model is false"
        return AskOut(
            **out, route="abstained", answer=f"Not answered: {reason}.", abstained=True, reason=reason
        )
    return await _with_model(ctx, args, plan, out)


def _query_dict(query: Any) -> dict[str, Any]:
    fields = ("metrics", "group_by", "where", "start", "end", "order_by", "limit")
    return {f: getattr(query, f) for f in fields if getattr(query, f, None) not in (None, [], ())}
