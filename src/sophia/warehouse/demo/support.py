"""Support tickets of customers: more for big portfolios, in onboarding and before a churn; fewer and
better rated for healthy accounts. Integration tickets lean on the PMS vendors that integrate worst."""

from __future__ import annotations

import datetime as dt

import numpy as np

from sophia.warehouse.demo.common import END, START, Columns, stream
from sophia.warehouse.demo.world import World

_PRIORITIES = ("low", "normal", "high", "urgent")
_PRIORITY_SHARE = (0.3, 0.45, 0.2, 0.05)
#: mean hours to resolve, by priority
_HOURS = {"low": 120.0, "normal": 60.0, "high": 24.0, "urgent": 6.0}
_CATEGORIES = ("integration", "billing", "leasing_ai", "maintenance", "payments", "access", "bug", "how_to")
_CATEGORY_SHARE = (0.14, 0.1, 0.16, 0.12, 0.1, 0.1, 0.13, 0.15)
#: extra weight of integration tickets by PMS vendor
_INTEGRATION_WEIGHT = {
    "Yardi": 1.0,
    "RealPage": 1.3,
    "AppFolio": 0.8,
    "Entrata": 1.6,
    "Buildium": 1.2,
    "ResMan": 2.2,
}
_END_AT = dt.datetime.combine(END, dt.time(23, 59))


def ticket_table(world: World, seed: int) -> Columns:
    rng = stream(seed, "support")
    rows: list[tuple[dt.datetime, int, dt.datetime | None, str, str, str, int | None]] = []
    for a in world.accounts:
        if a.became_customer is None:
            continue
        begin = max(a.became_customer, START)
        stop = a.churned or END
        base = min(3.0, 0.25 + a.units / 6000) / a.health**1.2
        shares = np.array(_CATEGORY_SHARE)
        shares[0] *= _INTEGRATION_WEIGHT[a.pms]
        shares /= shares.sum()
        for start in range((begin - START).days, (stop - START).days, 30):
            first = START + dt.timedelta(days=start)
            lam = base
            if (first - a.became_customer).days < 60:
                lam *= 1.8  # onboarding
            if a.churned is not None and (a.churned - first).days < 120:
                lam *= 1.6  # trouble before leaving
            for _ in range(int(rng.poisson(lam))):
                span = max(1, min(30, (stop - first).days))
                opened = dt.datetime.combine(first, dt.time()) + dt.timedelta(
                    minutes=int(rng.integers(0, span * 1440))
                )
                priority = _PRIORITIES[int(rng.choice(4, p=_PRIORITY_SHARE))]
                category = _CATEGORIES[int(rng.choice(len(_CATEGORIES), p=shares))]
                hours = float(rng.exponential(_HOURS[priority])) / a.health + 0.25
                resolved: dt.datetime | None = opened + dt.timedelta(minutes=round(hours * 60))
                csat = None
                if resolved is not None and resolved > _END_AT:
                    resolved, status = None, ("open", "pending")[int(rng.integers(0, 2))]
                else:
                    status = "closed" if (_END_AT - opened).days > 14 else "resolved"
                    if rng.random() < 0.55:
                        score = 4.3 + 1.2 * (a.health - 1) - hours / 150 + rng.normal(0, 0.7)
                        csat = int(np.clip(round(score), 1, 5))
                rows.append((opened, a.account_id, resolved, priority, category, status, csat))
    rows.sort(key=lambda r: (r[0], r[1]))
    out: Columns = {
        k: []
        for k in (
            "ticket_id",
            "account_id",
            "opened_at",
            "resolved_at",
            "priority",
            "category",
            "status",
            "csat",
        )
    }
    for i, (opened, account_id, resolved, priority, category, status, csat) in enumerate(rows):
        for key, value in zip(
            out, (i + 1, account_id, opened, resolved, priority, category, status, csat), strict=True
        ):
            out[key].append(value)
    return out
