"""Spend against a daily budget: a ticket when the day is forecast to pass it, a page once it has.

The forecast is the day's spend so far extrapolated over the rest of the day at the average rate of
the last ``window`` (an hour): a morning burst that has calmed down does not keep a forecast high,
and a sudden expensive workload shows within the hour. No forecast is made in the first ``settle``
minutes of a UTC day (too little to go on).
"""

from __future__ import annotations

from sophia.accounts.limits import NANOS
from sophia.observe.slo import Firing
from sophia.storage.db import Database

DAY = 86400.0


async def spend_between(db: Database, start: float, end: float) -> float:
    row = await db.fetchone(
        "SELECT COALESCE(SUM(cost_nanos), 0) AS spent FROM sophia_usage WHERE ts >= ? AND ts < ?",
        (start, end),
    )
    return int(row["spent"]) / NANOS if row else 0.0


async def spend_firings(
    db: Database, budget: float, now: float, *, window: float = 3600.0, settle: float = 1800.0
) -> list[Firing]:
    """What fires for today's (UTC) spend against ``budget`` at ``now``."""
    day_start = now - now % DAY
    spent = await spend_between(db, day_start, now)
    if spent >= budget:
        detail = f"${spent:,.2f} spent today (UTC), over the ${budget:,.2f} daily budget"
        return [
            Firing("daily spend", "page", "over budget", spent / budget, spent / budget, 0.0, now, detail)
        ]
    elapsed = now - day_start
    if elapsed < settle:
        return []
    recent = await spend_between(db, max(day_start, now - window), now)
    rate = recent / min(window, elapsed)
    forecast = spent + rate * (DAY - elapsed)
    if forecast >= budget:
        detail = (
            f"${spent:,.2f} spent so far today; at the last hour's rate the day ends near ${forecast:,.2f}, "
            f"over the ${budget:,.2f} budget"
        )
        return [
            Firing("daily spend", "ticket", "forecast over budget", forecast / budget, rate, 0.0, now, detail)
        ]
    return []
