"""The sales pipeline: new, expansion and renewal deals, and the subscriptions their wins create.

Each account is walked through time: prospects get a new-business deal (and maybe a second try);
a win makes them a customer (``became_customer``) with a first subscription; customers get expansion
deals (add-on products) and a renewal deal at each anniversary, where they may churn (every
subscription ends, ``churned``), shrink (contraction) or take a price uplift (expansion).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from sophia.warehouse.demo import catalog as cat
from sophia.warehouse.demo.common import (
    COMPETITORS,
    END,
    START,
    Columns,
    add_months,
    append_row,
    columns,
    logistic,
    quarter,
    stream,
)
from sophia.warehouse.demo.world import Account, Rep, World

_OPEN = ("prospecting", "discovery", "demo", "proposal", "negotiation")


@dataclass
class Deal:
    deal_id: int
    account: Account
    rep: Rep
    deal_type: str
    product: str
    stage: str
    cents: int
    created: dt.date
    closed: dt.date | None
    competitor: str | None
    lost_reason: str | None
    reached: int  # the furthest open stage the deal got to (index into _OPEN), for its calls


@dataclass
class Subscription:
    subscription_id: int
    account: Account
    plan: str
    started: dt.date
    ended: dt.date | None
    mrr_cents: int

    def active(self, date: dt.date) -> bool:
        return self.started <= date and (self.ended is None or date < self.ended)


@dataclass
class Pipeline:
    deals: list[Deal]
    subscriptions: list[Subscription]


def _pick(rng: np.random.Generator, mix: dict[str, float]) -> str:
    keys = list(mix)
    p = np.array([mix[k] for k in keys])
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


class _Walker:
    """Walks one account through the window, appending to the shared deal and subscription lists."""

    def __init__(self, rng: np.random.Generator, out: Pipeline) -> None:
        self.rng = rng
        self.out = out
        self.by_account: dict[int, list[Subscription]] = {}

    def deal(
        self, account: Account, kind: str, product: str, cents: int, created: dt.date, **kw: object
    ) -> Deal:
        deal = Deal(
            0,
            account,
            account.owner_at(created),
            kind,
            product,
            "prospecting",
            cents,
            created,
            None,
            None,
            None,
            0,
        )
        for key, value in kw.items():
            setattr(deal, key, value)
        self.out.deals.append(deal)
        return deal

    def subscribe(self, account: Account, plan: str, started: dt.date, mrr_cents: int) -> Subscription:
        sub = Subscription(0, account, plan, started, None, mrr_cents)
        self.out.subscriptions.append(sub)
        self.by_account.setdefault(account.account_id, []).append(sub)
        return sub

    def new_business(self, a: Account) -> None:
        rng = self.rng
        when = a.created + dt.timedelta(days=int(rng.integers(0, 30)))
        for _attempt in range(2):
            if when > END:
                return
            product = _pick(rng, cat.FIRST_PRODUCT[a.segment])
            coverage = float(rng.uniform(*cat.COVERAGE[a.segment]))
            cents = cat.annual_cents(a.units, coverage, product, float(rng.uniform(0.85, 1.15)))
            competitor = None
            if rng.random() < cat.COMPETITOR_SHARE[a.segment]:
                competitor = COMPETITORS[int(rng.choice(5, p=cat.COMPETITOR_MIX[a.segment]))]
            deal = self.deal(a, "new", product, cents, when, competitor=competitor)
            cycle = int(rng.integers(*cat.CYCLE_DAYS[a.segment]))
            close = when + dt.timedelta(days=cycle)
            logit = cat.BASE_WIN + cat.REGION_WIN[a.region] + cat.SEGMENT_WIN[a.segment]
            logit += cat.REGION_TREND.get(a.region, 0.0) * (close - START).days / 365
            logit += cat.QUARTER_WIN[quarter(close)] + deal.rep.skill
            logit += cat.COMPETITOR_WIN[competitor][a.segment] if competitor else cat.NO_COMPETITOR_WIN
            won = rng.random() < logistic(logit)
            if not won:
                close = when + dt.timedelta(days=max(7, int(cycle * rng.uniform(0.3, 1.0))))
            if close > END:
                elapsed = (END - when).days / cycle
                deal.stage = _OPEN[min(4, int(elapsed * 5))]
                deal.reached = _OPEN.index(deal.stage)
                return
            deal.closed = close
            if won:
                deal.stage, deal.reached = "closed_won", 4
                a.became_customer = close
                self.subscribe(a, product, close, round(cents / 12))
                return
            deal.stage, deal.reached = "closed_lost", int(rng.integers(1, 5))
            if competitor and rng.random() < 0.55:
                deal.lost_reason = "chose competitor"
            else:
                deal.lost_reason = cat.LOST_REASONS[int(rng.choice(6, p=cat.LOST_MIX[a.segment]))]
            if rng.random() > 0.3:
                return
            when = close + dt.timedelta(days=int(rng.integers(120, 300)))

    def customer(self, a: Account) -> None:
        """Expansions and renewals from the first day the account is a customer in the window."""
        rng = self.rng
        assert a.became_customer is not None
        subs = self.by_account[a.account_id]
        begin = max(a.became_customer, START)
        rate = cat.EXPANSION_RATE[a.segment] * a.health
        events: list[tuple[dt.date, str]] = []
        t = begin + dt.timedelta(days=60)
        while True:
            t += dt.timedelta(days=int(rng.exponential(365 / rate)) + 1)
            if t > END:
                break
            events.append((t, "expansion"))
        k = 1
        while (ann := add_months(a.became_customer, 12 * k)) <= END + dt.timedelta(days=75):
            if ann > START:
                events.append((ann, "renewal"))
            k += 1
        for when, kind in sorted(events):
            if a.churned is not None:
                return
            if kind == "renewal":
                self.renewal(a, subs, when)
            else:
                self.expansion(a, subs, when)

    def expansion(self, a: Account, subs: list[Subscription], when: dt.date) -> None:
        rng = self.rng
        owned = {s.plan for s in subs if s.active(when)}
        choices = [p for p in cat.PRICE if p not in owned and p != "Platform Suite"]
        if not owned or not choices:
            return
        product = choices[int(rng.integers(0, len(choices)))]
        cents = cat.annual_cents(
            a.units, float(rng.uniform(0.3, 0.9)), product, float(rng.uniform(0.85, 1.15))
        )
        deal = self.deal(a, "expansion", product, cents, when)
        close = when + dt.timedelta(days=int(rng.integers(20, 90)))
        if close > END:
            deal.stage = _OPEN[int(rng.integers(1, 4))]
            deal.reached = _OPEN.index(deal.stage)
            return
        deal.closed = close
        if rng.random() < logistic(0.4 + deal.rep.skill + 0.8 * (a.health - 1)):
            deal.stage, deal.reached = "closed_won", 4
            self.subscribe(a, product, close, round(cents / 12))
        else:
            deal.stage, deal.reached = "closed_lost", int(rng.integers(1, 5))
            deal.lost_reason = ("price", "no decision", "timing")[int(rng.integers(0, 3))]

    def renewal(self, a: Account, subs: list[Subscription], ann: dt.date) -> None:
        rng = self.rng
        active = [s for s in subs if s.active(ann - dt.timedelta(days=1))]
        if not active:
            return
        arr = 12 * sum(s.mrr_cents for s in active)
        main = max(active, key=lambda s: (s.mrr_cents, s.plan))
        created = max(START, ann - dt.timedelta(days=75))
        deal = self.deal(a, "renewal", main.plan, arr, created)
        if ann > END:
            deal.stage = "proposal" if (ann - END).days > 30 else "negotiation"
            deal.reached = _OPEN.index(deal.stage)
            return
        deal.closed, deal.reached = ann, 4
        risk = cat.CHURN_BASE[a.segment] * a.owner_at(ann).retention * a.health**-1.5
        if rng.random() < min(0.75, risk):
            deal.stage = "closed_lost"
            deal.lost_reason = cat.CHURN_REASONS[int(rng.integers(0, len(cat.CHURN_REASONS)))]
            for s in active:
                s.ended = ann
            a.churned = ann
            return
        deal.stage = "closed_won"
        roll = rng.random()
        factor = (
            1 + rng.uniform(0.03, 0.07) if roll < 0.6 else 1 - rng.uniform(0.1, 0.35) if roll < 0.75 else 1.0
        )
        if factor != 1.0:
            main.ended = ann
            self.subscribe(a, main.plan, ann, round(main.mrr_cents * factor))
            deal.cents = arr + 12 * (subs[-1].mrr_cents - main.mrr_cents)


def build_pipeline(world: World, seed: int) -> Pipeline:
    """Every deal and subscription; sets each account's ``became_customer`` and ``churned``."""
    rng = stream(seed, "deals")
    out = Pipeline([], [])
    walker = _Walker(rng, out)
    for a in world.accounts:
        if a.legacy_since is not None:
            a.became_customer = a.legacy_since
            product = _pick(rng, cat.FIRST_PRODUCT[a.segment])
            coverage = float(rng.uniform(*cat.COVERAGE[a.segment]))
            cents = cat.annual_cents(a.units, coverage, product, float(rng.uniform(0.85, 1.15)))
            walker.subscribe(a, product, a.legacy_since, round(cents / 12))
        else:
            walker.new_business(a)
        if a.became_customer is not None:
            walker.customer(a)
    out.deals.sort(key=lambda d: (d.created, d.account.account_id, d.deal_type))
    for i, deal in enumerate(out.deals):
        deal.deal_id = i + 1
    out.subscriptions.sort(key=lambda s: (s.started, s.account.account_id, s.plan))
    for i, sub in enumerate(out.subscriptions):
        sub.subscription_id = i + 1
    return out


def pipeline_tables(pipeline: Pipeline) -> dict[str, Columns]:
    deals = columns(
        "deal_id account_id rep_id deal_type product stage amount created_on closed_on competitor lost_reason"
    )
    for d in pipeline.deals:
        append_row(
            deals,
            (
                d.deal_id,
                d.account.account_id,
                d.rep.rep_id,
                d.deal_type,
                d.product,
                d.stage,
                d.cents / 100,
                d.created,
                d.closed,
                d.competitor,
                d.lost_reason,
            ),
        )
    subs = columns("subscription_id account_id plan started_on ended_on mrr")
    for s in pipeline.subscriptions:
        append_row(
            subs, (s.subscription_id, s.account.account_id, s.plan, s.started, s.ended, s.mrr_cents / 100)
        )
    return {"deals": deals, "subscriptions": subs}
