"""The gateway's signals read from the ledger and checked for drift: recent window against a reference.

``ledger_drift(db, now=…)`` compares the last ``window`` (24 h) with the ``reference`` period before it
(the 7 days before that, by default) on latency and tokens (KS + PSI), error rate and cache hit rate
(two-proportion z), and the mix of models served (Jensen-Shannon). A signal with too few requests in
either window is reported as skipped, not as stable. ``sophia observe drift`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sophia.errors import InvalidRequest
from sophia.observe.drift import MIN_SAMPLES, DriftResult, categorical, ks, proportion
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


async def _rows(db: Database, start: float, end: float) -> list[Any]:
    return await db.fetchall(
        "SELECT latency_ms, prompt_tokens, completion_tokens, outcome, cache, served_model "
        "FROM sophia_usage WHERE ts >= ? AND ts < ? AND endpoint NOT LIKE 'mcp:%'",
        (start, end),
    )


async def ledger_drift(
    db: Database, *, now: float, window: float = DAY, reference: float = 7 * DAY, alpha: float = 0.01
) -> DriftReport:
    """Drift of the gateway's requests in ``[now - window, now)`` against the ``reference`` before it."""
    if window <= 0 or reference <= 0:
        raise InvalidRequest("the windows must be positive")
    cur_span = (now - window, now)
    ref_span = (now - window - reference, now - window)
    cur, ref = await _rows(db, *cur_span), await _rows(db, *ref_span)
    results: list[DriftResult] = []
    skipped: dict[str, str] = {}

    def run(name: str, check: Any) -> None:
        try:
            results.append(check())
        except InvalidRequest as exc:
            skipped[name] = exc.message

    ok_ref = [r for r in ref if r["outcome"] == "ok"]
    ok_cur = [r for r in cur if r["outcome"] == "ok"]
    run(
        "latency_ms",
        lambda: ks(
            "latency_ms", [r["latency_ms"] for r in ok_ref], [r["latency_ms"] for r in ok_cur], alpha=alpha
        ),
    )
    run(
        "tokens",
        lambda: ks(
            "tokens",
            [r["prompt_tokens"] + r["completion_tokens"] for r in ok_ref],
            [r["prompt_tokens"] + r["completion_tokens"] for r in ok_cur],
            alpha=alpha,
        ),
    )
    run(
        "error_rate",
        lambda: proportion(
            "error_rate",
            (sum(r["outcome"] == "error" for r in ref), len(ref)),
            (sum(r["outcome"] == "error" for r in cur), len(cur)),
            alpha=alpha,
        ),
    )
    run(
        "cache_hit_rate",
        lambda: proportion(
            "cache_hit_rate",
            (sum(r["cache"] in ("exact", "semantic") for r in ref), len(ref)),
            (sum(r["cache"] in ("exact", "semantic") for r in cur), len(cur)),
            alpha=alpha,
        ),
    )
    run(
        "model_mix",
        lambda: categorical(
            "model_mix",
            [r["served_model"] or "-" for r in ok_ref],
            [r["served_model"] or "-" for r in ok_cur],
            alpha=alpha,
        ),
    )
    if len(cur) < MIN_SAMPLES or len(ref) < MIN_SAMPLES:
        skipped.setdefault("all", f"{len(cur)} requests in the window and {len(ref)} in the reference")
    return DriftReport(cur_span, ref_span, results, skipped)
