"""The fact table: each customer's daily use of each feature it pays for, made with numpy in one pass.

A feature is used from a few weeks after the subscription that brings it starts until it ends: usage
ramps up during onboarding, dips at weekends (least for leasing, which tours on Saturdays), peaks for
payments in the first days of a month, grows for leasing AI as adoption spreads, and fades over the
four months before a churn. Days with no events have no row.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from sophia.warehouse.demo.catalog import FEATURES_OF
from sophia.warehouse.demo.common import DAYS, END, FEATURES, START, stream
from sophia.warehouse.demo.deals import Pipeline

#: events per unit of portfolio per day, and users per property, by feature (FEATURES order)
_INTENSITY = np.array([0.03, 0.02, 0.012, 0.0025, 0.0015, 0.035])
_USERS_PER_PROPERTY = np.array([0.6, 1.2, 0.4, 0.3, 0.2, 0.5])
_WEEKEND = np.array([0.7, 0.45, 0.5, 0.0, 0.0, 0.8])  # screening and reporting: office days only
#: account_id, feature index, first day, day after the last, base events a day, staff, churn day, ramp start
_Span = tuple[int, int, int, int, float, int, int, int]


def usage_arrays(pipeline: Pipeline, seed: int) -> dict[str, np.ndarray]:
    """Columns of product_usage: ``day`` (offset from START), ``account_id``, ``feature`` (index), events, users."""
    rng = stream(seed, "usage")
    spans = _spans(pipeline, rng)
    if not spans:
        empty = np.zeros(0, dtype=np.int32)
        return {"day": empty, "account_id": empty, "feature": empty, "events": empty, "active_users": empty}
    account, feature, lo, hi, base, staff, churn, ramp = (np.array(col) for col in zip(*spans, strict=True))
    lengths = hi - lo
    total = int(lengths.sum())
    idx = np.repeat(np.arange(len(spans)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    days = np.repeat(lo, lengths) + (np.arange(total) - starts)
    weekday = (np.arange(DAYS) + START.weekday()) % 7 >= 5
    dom = np.array([(START + dt.timedelta(days=int(d))).day for d in range(DAYS)])
    feat = feature[idx]
    lam = base[idx] * np.minimum(1.0, 0.25 + 0.75 * (days - ramp[idx]) / 60.0)
    lam *= np.where(weekday[days], _WEEKEND[feat], 1.0)
    lam *= np.where((feat == 2) & (dom[days] <= 5), 3.0, 1.0)
    lam *= np.where(feat == 0, 1.0 + 0.3 * days / 365.0, 1.0)
    to_churn = churn[idx] - days
    lam *= np.where(to_churn < 120, 0.3 + 0.7 * np.clip(to_churn, 0, 120) / 120.0, 1.0)
    lam *= rng.lognormal(0.0, 0.25, total)
    events = rng.poisson(lam)
    share = np.clip(0.35 + 0.5 * events / (events + 20.0), 0.0, 1.0)
    users = np.minimum(events, np.maximum(1, rng.binomial(staff[idx], share)))
    keep = events > 0
    return {
        "day": days[keep].astype(np.int32),
        "account_id": account[idx][keep].astype(np.int32),
        "feature": feat[keep].astype(np.int32),
        "events": events[keep].astype(np.int32),
        "active_users": users[keep].astype(np.int32),
    }


def _spans(pipeline: Pipeline, rng: np.random.Generator) -> list[_Span]:
    """One span per subscription and feature it brings (days are offsets from START)."""
    spans = []
    renewed = {(s.account.account_id, s.plan, s.ended) for s in pipeline.subscriptions if s.ended}
    for sub in sorted(pipeline.subscriptions, key=lambda s: s.subscription_id):
        a = sub.account
        churn = (a.churned - START).days if a.churned else 10 * DAYS
        begin = (sub.started - START).days
        stop = min((sub.ended or END + dt.timedelta(days=1)) - START, dt.timedelta(days=DAYS)).days
        for name in FEATURES_OF[sub.plan]:
            f = FEATURES.index(name)
            lag = int(rng.integers(7, 45))
            if (a.account_id, sub.plan, sub.started) in renewed:
                lag = 0  # a renewal at a new price: the same use goes on
            lo = max(0, begin + lag)
            if lo >= stop:
                continue
            base = (
                a.units
                * _INTENSITY[f]
                * a.health
                * float(rng.uniform(0.6, 1.4))
                * (0.6 if a.units > 10_000 else 1.0)
            )
            staff = max(1, round(a.properties * _USERS_PER_PROPERTY[f] * float(rng.uniform(0.5, 1.5))))
            spans.append((a.account_id, f, lo, stop, base, staff, churn, begin + lag))
    return _merged(spans)


def _merged(
    spans: list[_Span],
) -> list[_Span]:
    """One span per (account, feature) stretch: two plans bringing the same feature do not double it."""
    spans.sort(key=lambda s: (s[0], s[1], s[2]))
    out: list[_Span] = []
    for span in spans:
        last = out[-1] if out else None
        if last and last[:2] == span[:2] and span[2] <= last[3]:
            if span[3] > last[3]:
                out[-1] = (*last[:3], span[3], *last[4:])
            continue
        out.append(span)
    return out
