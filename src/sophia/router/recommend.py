"""Usage-pattern analysis of the ledger: cost and a quality proxy per task type and model, and
recommendations ("route task X to model Y: saves $N/month at equal measured quality").

**The quality proxy, honestly.** The ledger does not know whether an answer was right. What it
knows is whether the model delivered (``outcome == "ok"``) and, when the client reports it,
user feedback (``metadata.feedback``: a number in [0, 1], a bool, or "up"/"down"). A request is
*good* when it was delivered and its feedback, if any, is not negative. So "equal measured
quality" means: the cheaper model's good-rate is not worse than the current one's by more than
``margin``, at ``confidence`` (a Wilson lower bound), on enough requests of the same task type.
Without feedback this measures reliability, not correctness; the report says which it used, and
the learned router's offline evaluation (``sophia router eval``) is the evidence for correctness.

Cache hits are skipped (no model answered). Cost per request is the mean over the task type's
requests on each model, so the saving assumes the cheaper model sees similar prompts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

_DAY = 86_400.0
_HIT = frozenset({"exact", "semantic"})


@dataclass(frozen=True, slots=True)
class Cell:
    """One task type on one model."""

    task_type: str
    model: str
    requests: int
    cost_usd: float
    good: int
    with_feedback: int

    @property
    def cost_per_request(self) -> float:
        return self.cost_usd / self.requests if self.requests else 0.0

    @property
    def quality(self) -> float:
        return self.good / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class Recommendation:
    task_type: str
    current: str
    suggested: str
    requests_per_month: float
    saving_per_month_usd: float
    current_quality: float
    suggested_quality: float
    suggested_requests: int

    @property
    def text(self) -> str:
        return (
            f"route task {self.task_type} to {self.suggested} instead of {self.current}: saves "
            f"${self.saving_per_month_usd:,.2f}/month at equal measured quality "
            f"({self.suggested_quality:.1%} vs {self.current_quality:.1%} good, "
            f"{self.suggested_requests} requests seen)"
        )


@dataclass(frozen=True)
class Analysis:
    cells: list[Cell]
    recommendations: list[Recommendation]
    period_days: float
    proxy: str  # what "good" meant: "delivered" or "delivered + feedback"


def feedback_of(metadata: Any) -> float | None:
    """The user's feedback in a ledger row's ``metadata`` (dict or JSON text) as 0..1, or None."""
    if isinstance(metadata, str | bytes):
        try:
            metadata = orjson.loads(metadata)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(metadata, Mapping):
        return None
    value = metadata.get("feedback")
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return min(max(float(value), 0.0), 1.0)
    if isinstance(value, str):
        return {"up": 1.0, "good": 1.0, "down": 0.0, "bad": 0.0}.get(value.strip().lower())
    return None


def wilson(good: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = good / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _z(confidence: float) -> float:
    """Two-sided normal quantile (bisection on erf; no scipy)."""
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if math.erf(mid / math.sqrt(2)) < confidence:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def analyse(
    rows: Iterable[Mapping[str, Any]],
    *,
    period_days: float | None = None,
    min_requests: int = 30,
    margin: float = 0.02,
    confidence: float = 0.95,
) -> Analysis:
    """Cells per (task type, served model) and the recommendations they support.

    ``rows`` are ledger rows with at least ``task_type``, ``served_model``, ``cost_usd`` and
    ``outcome`` (``ts``, ``cache`` and ``metadata`` are used when present). ``period_days``
    defaults to the span of the rows' ``ts`` (at least one day).
    """
    acc: dict[tuple[str, str], list[float]] = {}
    first, last, feedback_seen = math.inf, -math.inf, False
    for row in rows:
        model = row.get("served_model")
        if not model or row.get("cache") in _HIT:
            continue
        ts = row.get("ts")
        if isinstance(ts, int | float):
            first, last = min(first, float(ts)), max(last, float(ts))
        feedback = feedback_of(row.get("metadata"))
        good = row.get("outcome", "ok") == "ok" and (feedback is None or feedback >= 0.5)
        cell = acc.setdefault((str(row.get("task_type") or "unknown"), str(model)), [0, 0.0, 0, 0])
        cell[0] += 1
        cell[1] += float(row.get("cost_usd") or 0.0)
        cell[2] += int(good)
        cell[3] += int(feedback is not None)
        feedback_seen = feedback_seen or feedback is not None
    cells = [Cell(t, m, int(v[0]), v[1], int(v[2]), int(v[3])) for (t, m), v in sorted(acc.items())]
    if period_days is None:
        period_days = max((last - first) / _DAY, 1.0) if math.isfinite(first) else 1.0
    scale = 30.0 / period_days
    recs = []
    by_task: dict[str, list[Cell]] = {}
    for item in cells:
        by_task.setdefault(item.task_type, []).append(item)
    for task, group in by_task.items():
        for current in group:
            if current.requests < min_requests:
                continue
            best: Recommendation | None = None
            for other in group:
                if other is current or other.requests < min_requests:
                    continue
                if other.cost_per_request >= current.cost_per_request:
                    continue
                if wilson(other.good, other.requests, confidence)[0] < current.quality - margin:
                    continue
                saving = (current.cost_per_request - other.cost_per_request) * current.requests * scale
                if best is None or saving > best.saving_per_month_usd:
                    best = Recommendation(
                        task,
                        current.model,
                        other.model,
                        current.requests * scale,
                        saving,
                        current.quality,
                        other.quality,
                        other.requests,
                    )
            if best is not None and best.saving_per_month_usd > 0:
                recs.append(best)
    recs.sort(key=lambda r: -r.saving_per_month_usd)
    return Analysis(cells, recs, period_days, "delivered + feedback" if feedback_seen else "delivered")


def format_analysis(analysis: Analysis) -> str:
    """Plain text for ``sophia usage --recommend``."""
    lines = [
        f"{'task_type':<20} {'model':<36} {'requests':>8} {'cost_usd':>10} {'$/request':>10} {'good':>6}",
    ]
    for c in analysis.cells:
        lines.append(
            f"{c.task_type[:20]:<20} {c.model[:36]:<36} {c.requests:>8} {c.cost_usd:>10.4f} "
            f"{c.cost_per_request:>10.6f} {c.quality:>6.1%}"
        )
    lines.append(f"\nquality proxy: {analysis.proxy} (see `sophia router eval` for measured accuracy)")
    if not analysis.recommendations:
        lines.append("no recommendation: no cheaper model with enough requests and equal measured quality")
    lines += [f"- {r.text}" for r in analysis.recommendations]
    return "\n".join(lines)
