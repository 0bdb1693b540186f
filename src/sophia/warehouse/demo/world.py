"""The people and companies of the demo: teams, reps, accounts and contacts, with hidden traits.

Hidden traits are what makes the questions answerable: a rep's ``skill`` moves win rates and
``retention`` moves how often the rep's customers churn; an account's ``health`` moves churn,
tickets and usage. They are spread on purpose (a shuffled ladder, not a lottery) so that differences
are clear even at small scales.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from sophia.warehouse.demo import names
from sophia.warehouse.demo.common import (
    END,
    REGIONS,
    START,
    Columns,
    append_row,
    day,
    offset,
    stream,
)

_SEGMENT_SHARE = (0.55, 0.33, 0.12)
_UNIT_RANGE = {"SMB": (60, 999), "Mid-Market": (1_000, 9_999), "Enterprise": (10_000, 90_000)}
_REGION_SHARE = (0.22, 0.2, 0.17, 0.15, 0.17, 0.09)
_PMS_SHARE = {  # Yardi, RealPage, AppFolio, Entrata, Buildium, ResMan
    "SMB": (0.1, 0.04, 0.36, 0.1, 0.3, 0.1),
    "Mid-Market": (0.3, 0.2, 0.15, 0.2, 0.05, 0.1),
    "Enterprise": (0.46, 0.36, 0.0, 0.14, 0.0, 0.04),
}
_PMS = ("Yardi", "RealPage", "AppFolio", "Entrata", "Buildium", "ResMan")
#: new accounts per calendar month: busy January and autumn, slow summer and December
_MONTH_WEIGHT = (1.3, 1.15, 1.1, 1.0, 0.95, 0.8, 0.75, 0.85, 1.1, 1.2, 1.0, 0.7)
_LEGACY_SHARE = 0.3


@dataclass
class Rep:
    rep_id: int
    team_id: int
    region: str
    name: str
    title: str
    hired: dt.date
    left: dt.date | None
    skill: float  # logit added to every win
    retention: float  # multiplier on the churn risk of the rep's customers

    def active(self, date: dt.date) -> bool:
        return self.hired <= date and (self.left is None or date < self.left)


@dataclass
class Contact:
    contact_id: int
    name: str
    title: str
    decider: bool


@dataclass
class Account:
    account_id: int
    name: str
    region: str
    segment: str
    units: int
    properties: int
    pms: str
    created: dt.date
    owner: Rep
    successor: Rep | None
    health: float  # > 1: happier customer (fewer tickets, more usage, less churn)
    legacy_since: dt.date | None  # a customer since before the window
    domain: str
    contacts: list[Contact] = field(default_factory=list)
    became_customer: dt.date | None = None
    churned: dt.date | None = None

    def owner_at(self, date: dt.date) -> Rep:
        if self.successor is not None and self.owner.left is not None and date >= self.owner.left:
            return self.successor
        return self.owner

    @property
    def current_owner(self) -> Rep:
        return self.successor or self.owner


@dataclass
class World:
    teams: list[tuple[int, str, str, str]]  # team_id, name, region, manager
    reps: list[Rep]
    accounts: list[Account]


def build_world(seed: int, scale: float) -> World:
    rng = stream(seed, "world")
    per_region = max(1, min(3, round(2 * scale)))
    managers = names.person_names(rng, len(REGIONS) * per_region)
    teams = []
    for i in range(len(REGIONS) * per_region):
        region = REGIONS[i % len(REGIONS)]
        label = f"{region} {'Enterprise' if i >= len(REGIONS) else 'Commercial'}"
        teams.append((i + 1, label if per_region > 1 else region, region, managers[i]))
    reps = _reps(rng, teams, max(2 * len(teams), round(60 * scale)))
    accounts = _accounts(rng, reps, max(20, round(2000 * scale)))
    return World(teams, reps, accounts)


def _reps(rng: np.random.Generator, teams: list[tuple[int, str, str, str]], count: int) -> list[Rep]:
    skills = rng.permutation(np.linspace(-0.8, 0.8, count))
    retention = rng.permutation(np.geomspace(0.35, 2.6, count))
    rep_names = names.person_names(rng, count)
    reps = []
    for i in range(count):
        team = teams[i % len(teams)]
        anchor = i < len(teams)  # the first rep of every team stays all along
        if anchor or rng.random() < 0.7:
            hired = day(-int(rng.integers(60, 1800)))
        else:
            hired = day(int(rng.integers(0, 800)))
        left = None
        if not anchor and rng.random() < 0.22:
            leave = max(offset(hired), 0) + int(rng.integers(200, 700))
            left = day(leave) if day(leave) < END - dt.timedelta(days=30) else None
        title = names.REP_TITLES[int(rng.integers(0, 2)) if not anchor else 2 if i % 2 else 1]
        reps.append(
            Rep(
                i + 1,
                team[0],
                team[2],
                rep_names[i],
                title,
                hired,
                left,
                float(skills[i]),
                float(retention[i]),
            )
        )
    return reps


def _created_on(rng: np.random.Generator) -> dt.date:
    """A creation day in the window, months weighted by the season (up to two months before END)."""
    firsts = [START.replace(year=START.year + m // 12, month=m % 12 + 1) for m in range(35 - 2)]
    weights = np.array([_MONTH_WEIGHT[d.month - 1] for d in firsts])
    first = firsts[int(rng.choice(len(firsts), p=weights / weights.sum()))]
    return first + dt.timedelta(days=int(rng.integers(0, 28)))


def _accounts(rng: np.random.Generator, reps: list[Rep], count: int) -> list[Account]:
    companies = names.company_names(rng, count)
    by_region = {region: [r for r in reps if r.region == region] for region in REGIONS}
    accounts = []
    for i in range(count):
        segment = str(rng.choice(("SMB", "Mid-Market", "Enterprise"), p=_SEGMENT_SHARE))
        lo, hi = _UNIT_RANGE[segment]
        units = int(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        properties = max(1, round(units / rng.uniform(40, 260)))
        region = REGIONS[int(rng.choice(len(REGIONS), p=_REGION_SHARE))]
        pms = _PMS[int(rng.choice(len(_PMS), p=_PMS_SHARE[segment]))]
        legacy = None
        if rng.random() < _LEGACY_SHARE:
            legacy = day(-int(rng.integers(20, 1000)))
            created = legacy - dt.timedelta(days=int(rng.integers(60, 400)))
        else:
            created = _created_on(rng)
        pool = by_region[region]
        when = max(created, START)
        active = [r for r in pool if r.active(when)] or pool[:1]
        owner = active[int(rng.integers(0, len(active)))]
        successor = None
        if owner.left is not None:
            stay = [r for r in pool if r.left is None and r.hired <= owner.left] or pool[:1]
            successor = stay[int(rng.integers(0, len(stay)))]
        health = float(np.exp(rng.normal(0.0, 0.35)))
        account = Account(
            i + 1,
            companies[i],
            region,
            segment,
            units,
            properties,
            pms,
            created,
            owner,
            successor,
            health,
            legacy,
            names.domain_of(companies[i]),
        )
        accounts.append(account)
    _contacts(rng, accounts)
    return accounts


def _contacts(rng: np.random.Generator, accounts: list[Account]) -> None:
    sizes = {"SMB": (2, 4), "Mid-Market": (3, 6), "Enterprise": (5, 9)}
    counts = [int(rng.integers(sizes[a.segment][0], sizes[a.segment][1] + 1)) for a in accounts]
    people = iter(names.person_names(rng, sum(counts)))
    next_id = 1
    for account, n in zip(accounts, counts, strict=True):
        for k in range(n):
            decider = k == 0 or rng.random() < 0.2
            pool = names.DECIDER_TITLES if decider else names.OTHER_TITLES
            title = pool[int(rng.integers(0, len(pool)))]
            account.contacts.append(Contact(next_id, next(people), title, decider))
            next_id += 1


def world_tables(world: World) -> dict[str, Columns]:
    """teams, reps, accounts and contacts as columns (accounts' customer dates must be set first)."""
    teams: Columns = {"team_id": [], "name": [], "region": [], "manager_name": []}
    for team in world.teams:
        append_row(teams, team)
    reps: Columns = {k: [] for k in ("rep_id", "team_id", "name", "email", "title", "hired_on", "left_on")}
    for r in world.reps:
        email = names.email(r.name, "sophia-demo.com")
        append_row(reps, (r.rep_id, r.team_id, r.name, email, r.title, r.hired, r.left))
    accounts: Columns = {
        k: []
        for k in (
            "account_id",
            "name",
            "region",
            "segment",
            "portfolio_units",
            "property_count",
            "pms_vendor",
            "owner_rep_id",
            "created_on",
            "became_customer_on",
            "churned_on",
        )
    }
    contacts: Columns = {
        k: [] for k in ("contact_id", "account_id", "name", "title", "email", "is_decision_maker")
    }
    for a in world.accounts:
        append_row(
            accounts,
            (
                a.account_id,
                a.name,
                a.region,
                a.segment,
                a.units,
                a.properties,
                a.pms,
                a.current_owner.rep_id,
                a.created,
                a.became_customer,
                a.churned,
            ),
        )
        for c in a.contacts:
            append_row(
                contacts,
                (c.contact_id, a.account_id, c.name, c.title, names.email(c.name, a.domain), c.decider),
            )
    return {"teams": teams, "reps": reps, "accounts": accounts, "contacts": contacts}
