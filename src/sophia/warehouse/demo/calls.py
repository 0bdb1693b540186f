"""Sales calls: the calls of every deal by the stage it reached, customer check-ins, and the moderate
sample of calls that were recorded (``has_transcript``), which transcripts.py writes out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from sophia.warehouse.demo.common import END, START, Columns, append_row, offset, stream, weekday_at
from sophia.warehouse.demo.deals import Deal, Pipeline
from sophia.warehouse.demo.world import Account, Contact, Rep, World

#: seconds a call of each type lasts
_DURATION = {
    "discovery": (1200, 2700),
    "demo": (1800, 3600),
    "negotiation": (1200, 2400),
    "check_in": (900, 1800),
    "renewal": (1200, 2400),
}
#: how likely each type of call is to be among the recorded ones
_RECORD_WEIGHT = {"discovery": 3.0, "demo": 3.0, "negotiation": 3.0, "renewal": 2.0, "check_in": 1.0}
_NO_SHOW = 0.06


@dataclass
class Call:
    call_id: int
    deal: Deal | None
    account: Account
    rep: Rep
    contact: Contact
    started: dt.datetime
    duration: int
    call_type: str
    outcome: str
    has_transcript: bool = False


def _deal_plan(rng: np.random.Generator, deal: Deal) -> list[str]:
    """The types of a deal's calls, in order, from the stage it reached."""
    if deal.deal_type == "renewal":
        return ["renewal"] * int(rng.integers(1, 3))
    if deal.deal_type == "expansion":
        return ["discovery", "demo", "negotiation"][: max(1, deal.reached)]
    reached = deal.reached
    if reached == 0:
        return ["discovery"] if rng.random() < 0.5 else []
    plan = ["discovery"] * int(rng.integers(1, 3))
    if reached >= 2:
        plan += ["demo"] * int(rng.integers(1, 3))
    if reached >= 3:
        plan += ["negotiation"] * (1 if reached == 3 else int(rng.integers(1, 3)))
    return plan


def _outcome(rng: np.random.Generator, deal: Deal, last: bool) -> str:
    if last and deal.stage == "closed_won":
        return "won"
    if last and deal.stage == "closed_lost":
        return "lost"
    if last:
        return ("follow_up", "stalled")[int(rng.integers(0, 2))]
    return ("advanced", "advanced", "follow_up")[int(rng.integers(0, 3))]


def _contact(rng: np.random.Generator, account: Account, decider: bool) -> Contact:
    pool = [c for c in account.contacts if c.decider] if decider else account.contacts
    return pool[int(rng.integers(0, len(pool)))]


def build_calls(world: World, pipeline: Pipeline, seed: int, scale: float) -> list[Call]:
    rng = stream(seed, "calls")
    calls: list[Call] = []
    for deal in pipeline.deals:
        plan = _deal_plan(rng, deal)
        lo = offset(deal.created)
        hi = offset(deal.closed or END)
        points = sorted(int(p) for p in rng.integers(lo, hi + 1, len(plan)))
        for k, (kind, at) in enumerate(zip(plan, points, strict=True)):
            started = weekday_at(rng, at, at)
            outcome = _outcome(rng, deal, k == len(plan) - 1)
            contact = _contact(rng, deal.account, kind in ("negotiation", "renewal"))
            rep = deal.rep if deal.rep.active(started.date()) else deal.account.owner_at(started.date())
            calls.append(Call(0, deal, deal.account, rep, contact, started, 0, kind, outcome))
    for account in world.accounts:
        if account.became_customer is None:
            continue
        at = offset(max(account.became_customer, START)) + int(rng.integers(20, 100))
        stop = offset(account.churned or END)
        while at <= stop:
            started = weekday_at(rng, at, at)
            risky = account.health < 0.8 or (account.churned is not None and stop - at < 180)
            outcome = ("at_risk" if risky else "healthy") if rng.random() < 0.8 else "follow_up"
            rep = account.owner_at(started.date())
            contact = _contact(rng, account, False)
            calls.append(Call(0, None, account, rep, contact, started, 0, "check_in", outcome))
            at += int(rng.integers(70, 130))
    calls.sort(key=lambda c: (c.started, c.account.account_id, c.call_type))
    for i, call in enumerate(calls):
        call.call_id = i + 1
        if rng.random() < _NO_SHOW:
            call.outcome, call.duration = "no_show", int(rng.integers(60, 300))
        else:
            call.duration = int(rng.integers(*_DURATION[call.call_type]))
    _record(rng, calls, max(12, round(680 * scale)))
    return calls


def _record(rng: np.random.Generator, calls: list[Call], count: int) -> None:
    """Mark ``count`` calls (not no-shows) as recorded, deal calls more likely than check-ins."""
    eligible = [c for c in calls if c.outcome != "no_show"]
    if not eligible:
        return
    weights = np.array([_RECORD_WEIGHT[c.call_type] for c in eligible])
    picks = rng.choice(
        len(eligible), size=min(count, len(eligible)), replace=False, p=weights / weights.sum()
    )
    for pick in picks:
        eligible[int(pick)].has_transcript = True


def call_table(calls: list[Call]) -> Columns:
    out: Columns = {
        k: []
        for k in (
            "call_id",
            "deal_id",
            "account_id",
            "rep_id",
            "contact_id",
            "started_at",
            "duration_seconds",
            "call_type",
            "outcome",
            "has_transcript",
        )
    }
    for c in calls:
        append_row(
            out,
            (
                c.call_id,
                c.deal.deal_id if c.deal else None,
                c.account.account_id,
                c.rep.rep_id,
                c.contact.contact_id,
                c.started,
                c.duration,
                c.call_type,
                c.outcome,
                c.has_transcript,
            ),
        )
    return out
