"""The gateway's signals read from the ledger and checked for drift: recent window against a reference.

``ledger_drift(db, now=…)`` compares the last ``window`` (24 h) with the ``reference`` period before it
(the 7 days before that, by default) on latency and tokens (KS + PSI), error rate and cache hit rate
(two-proportion z), and the mix of models served (Jensen-Shannon). A signal with too few requests in
either window is reported as skipped, not as stable. ``sophia observe drift`` prints it; the monitor
runs it every ``observe.drift_interval`` and raises a ticket per drifted signal (``drift_firings``).
Memory is bounded whatever the traffic: rates and the model mix come from counts grouped in the
database, and the numeric tests read at most ``MAX_SAMPLES`` rows a window (a random sample beyond
it). The tests run on a worker thread, so a check does not stall the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sophia.errors import InvalidRequest
from sophia.observe.drift import MIN_SAMPLES, DriftResult, categorical, ks, proportion
from sophia.observe.slo import Firing
from sophia.storage.db import Database

DAY = 86400.0


@dataclass(frozen=True)
class DriftReport:
    window: tuple[float, float]
    reference: tuple[float, float]
    results: list[DriftResult]
    skipped: dict[str, str]

    @property
    def drifted(self) -> list[DriftResult]:
        return [r for r in self.results if r.drifted]


#: the most rows of a window the numeric tests (latency, tokens) read: a random sample beyond it
MAX_SAMPLES = 50_000
_GATEWAY = "FROM sophia_usage WHERE ts >= ? AND ts < ? AND endpoint NOT LIKE 'mcp:%'"


@dataclass(frozen=True)
class _Window:
    """One window of gateway requests: counts per (outcome, cache, served model), and the latency and
    tokens of its answered requests (all of them, or a random ``MAX_SAMPLES``)."""

    counts: list[tuple[str, str, str, int]]
    latency: list[float]
    tokens: list[int]

    @property
    def total(self) -> int:
        return sum(n for *_, n in self.counts)

    def share(self, hit: Any) -> tuple[int, int]:
        """(events, requests) for the rows where ``hit(outcome, cache)``."""
        return sum(n for outcome, cache, _, n in self.counts if hit(outcome, cache)), self.total

    def models(self) -> list[str]:
        """The model of each answered request."""
        return [model for outcome, _, model, n in self.counts if outcome == "ok" for _ in range(n)]


async def _window(db: Database, start: float, end: float) -> _Window:
    """Two queries, memory bounded whatever the traffic: counts grouped in the database, then the
    numeric columns of the answered requests (sampled at random past ``MAX_SAMPLES``)."""
    grouped = await db.fetchall(
        f"SELECT outcome, cache, served_model, COUNT(*) AS n {_GATEWAY} GROUP BY outcome, cache, served_model",
        (start, end),
    )
    counts = [(str(r["outcome"]), str(r["cache"]), r["served_model"] or "-", int(r["n"])) for r in grouped]
    answered = sum(n for outcome, _, _, n in counts if outcome == "ok")
    sample = " ORDER BY random()" if answered > MAX_SAMPLES else ""
    rows = await db.fetchall(
        f"SELECT latency_ms, prompt_tokens + completion_tokens AS tokens {_GATEWAY} AND outcome = 'ok'"
        f"{sample} LIMIT ?",
        (start, end, MAX_SAMPLES),
    )
    return _Window(counts, [float(r["latency_ms"]) for r in rows], [int(r["tokens"]) for r in rows])


async def ledger_drift(
    db: Database, *, now: float, window: float = DAY, reference: float = 7 * DAY, alpha: float = 0.01
) -> DriftReport:
    """Drift of the gateway's requests in ``[now - window, now)`` against the ``reference`` before it."""
    if window <= 0 or reference <= 0:
        raise InvalidRequest("the windows must be positive")
    cur_span = (now - window, now)
    ref_span = (now - window - reference, now - window)
    cur, ref = await _window(db, *cur_span), await _window(db, *ref_span)
    results, skipped = await asyncio.to_thread(_judge, cur, ref, alpha)
    return DriftReport(cur_span, ref_span, results, skipped)


def _judge(cur: _Window, ref: _Window, alpha: float) -> tuple[list[DriftResult], dict[str, str]]:
    """Every signal's test on the two windows: (results, skipped signal -> why)."""
    results: list[DriftResult] = []
    skipped: dict[str, str] = {}

    def run(name: str, check: Any) -> None:
        try:
            results.append(check())
        except InvalidRequest as exc:
            skipped[name] = exc.message

    def errors(outcome: str, cache: str) -> bool:
        return outcome == "error"

    def hits(outcome: str, cache: str) -> bool:
        return cache in ("exact", "semantic")

    run("latency_ms", lambda: ks("latency_ms", ref.latency, cur.latency, alpha=alpha))
    run("tokens", lambda: ks("tokens", ref.tokens, cur.tokens, alpha=alpha))
    run("error_rate", lambda: proportion("error_rate", ref.share(errors), cur.share(errors), alpha=alpha))
    run("cache_hit_rate", lambda: proportion("cache_hit_rate", ref.share(hits), cur.share(hits), alpha=alpha))
    run("model_mix", lambda: categorical("model_mix", ref.models(), cur.models(), alpha=alpha))
    if cur.total < MIN_SAMPLES or ref.total < MIN_SAMPLES:
        skipped.setdefault("all", f"{cur.total} requests in the window and {ref.total} in the reference")
    return results, skipped


def drift_firings(report: DriftReport, now: float) -> list[Firing]:
    """A ticket per drifted signal, ``drift: <signal>``, naming its test, statistic and p-value."""
    return [
        Firing(f"drift: {r.signal}", "ticket", r.test, 0.0, 0.0, 0.0, now, _detail(r, report))
        for r in report.drifted
    ]


def _detail(result: DriftResult, report: DriftReport) -> str:
    p = "no p-value" if result.p_value is None else f"p-value {result.p_value:.3g}"
    extra = "".join(f", {name} {value:.4g}" for name, value in (result.extra or {}).items())
    return (
        f"{result.test} statistic {result.statistic:.4g}, {p} (alpha {result.threshold:g}){extra}; "
        f"last {_span(report.window)} (n = {result.current_n:,}) against the "
        f"{_span(report.reference)} before (n = {result.reference_n:,})"
    )


def _span(span: tuple[float, float]) -> str:
    hours = (span[1] - span[0]) / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"
