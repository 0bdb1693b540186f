"""The dashboard's figures, read from the ledger (``sophia_usage``) as integers and plain JSON.

Money is the ledger's own integer ``cost_nanos`` / ``saved_nanos``, summed as integers in SQL and
never turned into dollars here (the page divides by 1e9 for display only), so ``/dashboard/data``
reconciles exactly with the ledger, the spans and ``/metrics``. Every figure comes from a few grouped
queries over the window (one scan for spend, cache and counts; one for latency percentiles, ranked in
the database; one for the router; one for the dearest requests): nothing loads the window's rows.

"What the router saved": for the requests ``sophia/auto`` decided (requested model = the router's
alias, answered by a model, not the cache), the cost the same tokens would have had on a *reference
model* (the dearest model the router may pick: the enabled chat model with the highest input + output
price among those in ``router.model_map``, else among all enabled chat models) minus what was paid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sophia.observe.signals import DriftReport
from sophia.observe.uptime import Uptime
from sophia.providers.base import CHAT, ModelInfo
from sophia.storage.db import Database

if TYPE_CHECKING:
    from sophia.observe.monitor import Monitor

HOUR, DAY = 3600, 86400
#: the windows the page offers, in seconds (the query parameter ``window``)
WINDOWS: dict[str, int] = {"24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}
DEFAULT_WINDOW = "7d"
#: percentiles of latency shown, nearest-rank, per bucket
PERCENTILES = (50, 95, 99)
#: the dearest requests listed with their traces
TOP_REQUESTS = 10
HITS = ("exact", "semantic")
NO_TASK = "(none)"


def bucket_seconds(window: int) -> int:
    """Hours for a window up to two days, days beyond."""
    return HOUR if window <= 2 * DAY else DAY


def _bucket(dialect: str, seconds: int) -> str:
    """SQL for the start (epoch seconds, an integer) of the bucket a row's ``ts`` falls in.

    PostgreSQL's CAST rounds and SQLite's truncates, so each dialect says floor its own way (``ts`` is
    never negative). ``seconds`` is one of this module's constants, never user text."""
    if dialect == "postgresql":
        return f"(FLOOR(ts / {seconds}) * {seconds})::BIGINT"
    return f"(CAST(ts / {seconds} AS INTEGER) * {seconds})"


@dataclass(frozen=True)
class Reference:
    """The model the router's choices are compared with."""

    model: ModelInfo
    why: str

    def to_json(self) -> dict[str, Any]:
        m = self.model
        return {
            "model": m.id,
            "input_price_per_mtok": m.input_price,
            "output_price_per_mtok": m.output_price,
            "why": self.why,
        }


def reference_model(models: Iterable[ModelInfo], mapped: Iterable[str]) -> Reference | None:
    """The dearest chat model the router may pick (see the module's docstring); None without any."""
    chat = [m for m in models if CHAT in m.capabilities]
    names = set(mapped)
    pool = [m for m in chat if m.id in names]
    why = "the dearest enabled chat model in router.model_map"
    if not pool:
        pool, why = chat, "the dearest enabled chat model"
    if not pool:
        return None
    return Reference(max(pool, key=lambda m: (m.input_price + m.output_price, m.id)), why)


async def usage(
    db: Database,
    *,
    now: float,
    window: int,
    router_alias: str,
    reference: Reference | None,
) -> dict[str, Any]:
    """Every ledger figure of ``[now - window, now)`` the page charts (money in integer nano-dollars)."""
    since = now - window
    size = bucket_seconds(window)
    bucket = _bucket(db.dialect, size)
    groups = await db.fetchall(
        f"SELECT {bucket} AS bucket, COALESCE(served_model, requested_model) AS model, team, "
        "task_type, cache, endpoint, COUNT(*) AS requests, "
        "SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END) AS errors, "
        "SUM(cost_nanos) AS cost_nanos, SUM(saved_nanos) AS saved_nanos "
        "FROM sophia_usage WHERE ts >= ? AND ts < ? GROUP BY 1, 2, 3, 4, 5, 6",
        (since, now),
    )
    day_start = now - now % DAY
    today = await db.fetchone(
        "SELECT COALESCE(SUM(cost_nanos), 0) AS spent FROM sophia_usage WHERE ts >= ? AND ts < ?",
        (day_start, now),
    )
    figures = _spend_and_cache(groups)
    figures["totals"]["spend_today_nanos"] = int(today["spent"]) if today else 0
    return {
        "since": since,
        "until": now,
        "bucket_seconds": size,
        **figures,
        "latency": await _latency(db, bucket, since, now),
        "router": await _router(db, bucket, since, now, router_alias, reference),
        "expensive": await _expensive(db, since, now),
    }


def _spend_and_cache(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    spend: dict[str, dict[tuple[int, str], list[int]]] = {
        "model": defaultdict(lambda: [0, 0]),
        "team": defaultdict(lambda: [0, 0]),
        "task": defaultdict(lambda: [0, 0]),
    }
    cache: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    totals = {
        "requests": 0,
        "errors": 0,
        "cost_nanos": 0,
        "saved_nanos": 0,
        "chat_requests": 0,
        "cache_hits": 0,
    }
    for g in groups:
        at, cost, requests = int(g["bucket"]), int(g["cost_nanos"] or 0), int(g["requests"])
        saved = int(g["saved_nanos"] or 0)
        for kind, name in (("model", g["model"]), ("team", g["team"]), ("task", g["task_type"] or NO_TASK)):
            cell = spend[kind][(at, str(name or "-"))]
            cell[0] += cost
            cell[1] += requests
        totals["requests"] += requests
        totals["errors"] += int(g["errors"] or 0)
        totals["cost_nanos"] += cost
        totals["saved_nanos"] += saved
        if g["endpoint"] == "chat":
            cell = cache[(at, str(g["cache"]))]
            cell[0] += requests
            cell[1] += saved
            totals["chat_requests"] += requests
            if g["cache"] in HITS:
                totals["cache_hits"] += requests
    chat = totals["chat_requests"]
    return {
        "totals": {**totals, "cache_hit_rate": totals["cache_hits"] / chat if chat else None},
        "spend": {
            f"by_{kind}": [
                {"bucket": at, kind: name, "cost_nanos": cost, "requests": n}
                for (at, name), (cost, n) in sorted(cells.items())
            ]
            for kind, cells in spend.items()
        },
        "cache": [
            {"bucket": at, "cache": kind, "requests": n, "saved_nanos": saved}
            for (at, kind), (n, saved) in sorted(cache.items())
        ],
    }


async def _latency(db: Database, bucket: str, since: float, now: float) -> list[dict[str, Any]]:
    """Nearest-rank p50/p95/p99 of answered gateway requests per bucket, ranked in the database
    (window functions, SQLite and PostgreSQL alike): the rank of percentile P of n is ceil(P n / 100)."""
    picks = ", ".join(
        f"MAX(CASE WHEN rn = ({p} * n + 99) / 100 THEN latency_ms END) AS p{p}" for p in PERCENTILES
    )
    rows = await db.fetchall(
        f"WITH ranked AS (SELECT {bucket} AS bucket, latency_ms, "
        f"ROW_NUMBER() OVER (PARTITION BY {bucket} ORDER BY latency_ms) AS rn, "
        f"COUNT(*) OVER (PARTITION BY {bucket}) AS n "
        "FROM sophia_usage WHERE ts >= ? AND ts < ? AND outcome = 'ok' AND endpoint NOT LIKE 'mcp:%') "
        f"SELECT bucket, n, {picks} FROM ranked GROUP BY bucket, n ORDER BY bucket",
        (since, now),
    )
    return [
        {
            "bucket": int(r["bucket"]),
            "requests": int(r["n"]),
            **{f"p{p}_ms": float(r[f"p{p}"]) for p in PERCENTILES},
        }
        for r in rows
    ]


async def _router(
    db: Database, bucket: str, since: float, now: float, alias: str, reference: Reference | None
) -> dict[str, Any]:
    rows = await db.fetchall(
        f"SELECT {bucket} AS bucket, served_model, COUNT(*) AS requests, SUM(cost_nanos) AS cost_nanos, "
        "SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens "
        "FROM sophia_usage WHERE ts >= ? AND ts < ? AND requested_model = ? AND outcome = 'ok' "
        "AND cache NOT IN ('exact', 'semantic') GROUP BY 1, 2 ORDER BY 1, 2",
        (since, now, alias),
    )
    mix: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    buckets: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        model, paid = str(r["served_model"] or "-"), int(r["cost_nanos"] or 0)
        mix[model][0] += int(r["requests"])
        mix[model][1] += paid
        ref = (
            reference.model.cost_nanos(int(r["prompt_tokens"] or 0), int(r["completion_tokens"] or 0))
            if reference is not None
            else paid
        )
        buckets[int(r["bucket"])][0] += paid
        buckets[int(r["bucket"])][1] += ref
    paid_total = sum(b[0] for b in buckets.values())
    ref_total = sum(b[1] for b in buckets.values())
    return {
        "alias": alias,
        "reference": reference.to_json() if reference is not None else None,
        "requests": sum(m[0] for m in mix.values()),
        "paid_nanos": paid_total,
        "reference_nanos": ref_total,
        "saved_nanos": ref_total - paid_total,
        "mix": [
            {"model": model, "requests": n, "cost_nanos": cost}
            for model, (n, cost) in sorted(mix.items(), key=lambda kv: (-kv[1][0], kv[0]))
        ],
        "by_bucket": [
            {"bucket": at, "paid_nanos": paid, "reference_nanos": ref}
            for at, (paid, ref) in sorted(buckets.items())
        ],
    }


async def _expensive(db: Database, since: float, now: float) -> list[dict[str, Any]]:
    rows = await db.fetchall(
        "SELECT ts, request_id, team, endpoint, requested_model, served_model, cost_nanos, latency_ms, "
        "prompt_tokens, completion_tokens, outcome, trace_id FROM sophia_usage "
        f"WHERE ts >= ? AND ts < ? AND cost_nanos > 0 ORDER BY cost_nanos DESC, ts DESC LIMIT {TOP_REQUESTS}",
        (since, now),
    )
    return [
        {
            "ts": float(r["ts"]),
            "request_id": str(r["request_id"]),
            "team": str(r["team"]),
            "endpoint": str(r["endpoint"]),
            "model": str(r["served_model"] or r["requested_model"]),
            "cost_nanos": int(r["cost_nanos"]),
            "latency_ms": float(r["latency_ms"]),
            "tokens": int(r["prompt_tokens"]) + int(r["completion_tokens"]),
            "outcome": str(r["outcome"]),
            "trace_id": r["trace_id"],
        }
        for r in rows
    ]


# -- what the process knows: breakers, uptime, drift, alerts ---------------------------------------


def breakers(health: Mapping[str, Any]) -> dict[str, Any]:
    """The gateway's providers and each model's circuit breaker (what ``/admin/providers`` shows)."""
    models = health.get("models") or {}
    return {
        "providers": list(health.get("providers") or []),
        "breakers": [
            {
                "model": model,
                "state": str(snap.get("state")),
                "calls": int(snap.get("calls") or 0),
                "errors": int(snap.get("errors") or 0),
                "error_rate": float(snap.get("error_rate") or 0.0),
                "latency_ms": snap.get("latency_ms"),
                "last_error": snap.get("last_error"),
            }
            for model, snap in sorted(models.items())
        ],
    }


async def uptime(up: Uptime, *, now: float, source: str) -> dict[str, Any]:
    """Availability per service and window, and the last 30 days' incidents (open ones have no end)."""
    services = await up.report()
    incidents = [
        {
            "service": i.service,
            "start": i.start,
            "end": i.end,
            "cause": i.cause,
            "probes_failed": i.probes_failed,
        }
        for s in services
        for i in await up.incidents(s["service"], since=now - 30 * DAY)
    ]
    return {"source": source, "services": services, "incidents": incidents}


def drift(report: DriftReport | None, *, source: str) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "source": source,
        "window": list(report.window),
        "reference": list(report.reference),
        "results": [
            {
                "signal": r.signal,
                "test": r.test,
                "statistic": r.statistic,
                "p_value": r.p_value,
                "threshold": r.threshold,
                "drifted": r.drifted,
                "reference_n": r.reference_n,
                "current_n": r.current_n,
            }
            for r in report.results
        ],
        "skipped": dict(report.skipped),
    }


def alerts(monitor: Monitor | None) -> dict[str, Any]:
    """The monitor's active alerts (slo, severity, since, detail); ``monitor_running`` False without one."""
    if monitor is None:
        return {"monitor_running": False, "active": []}
    active = [
        {
            "slo": str(a.get("slo", "")),
            "severity": str(a.get("severity", "")),
            "since": a.get("since"),
            "detail": str(a.get("detail", "")),
        }
        for a in monitor.active_alerts()
    ]
    return {"monitor_running": True, "active": active}
