"""``DatabaseBudgets``: daily and monthly budgets held in the database, shared by every process on it.

A budget is a promise, so a call's money is **reserved before it runs**: ``reserve`` adds a hold of the
call's worst-case cost for the key, in one transaction, only while what the key spent this period plus
what its calls in flight hold stays under the budget; ``settle`` removes the hold and adds the real cost.
Concurrent calls (any number of workers and instances on one SQLite file or one PostgreSQL) therefore
overshoot a budget by at most one call's cost: the last one admitted while there was room.

Tables: ``sophia_spend`` (key, period ``day:YYYYMMDD`` / ``month:YYYYMM``, integer nano-dollars spent)
and ``sophia_holds`` (one row per call in flight, expiring after ``HOLD_SECONDS`` so that a process
killed mid-call does not keep its holds). A period's row is seeded from the usage ledger the first time
a process needs it (``INSERT … ON CONFLICT DO NOTHING``: the first seed wins), so budgets survive
restarts and a database that predates this table; after that the row is the authority. A cost
settled into a period whose row does not exist yet is left to that seed (the ledger has it).
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

from sophia.accounts.keys import KeyRecord
from sophia.accounts.limits import HOLD_SECONDS, NANOS, Hold, SpendLookup, day_start, month_start, over_budget
from sophia.storage import Database

__all__ = ["HOLD_SECONDS", "DatabaseBudgets", "nanos", "periods"]


SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sophia_spend (
        key_id TEXT NOT NULL,
        period TEXT NOT NULL,
        nanos BIGINT NOT NULL,
        PRIMARY KEY (key_id, period)
    )""",
    """CREATE TABLE IF NOT EXISTS sophia_holds (
        id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        nanos BIGINT NOT NULL,
        expires DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS sophia_holds_key ON sophia_holds (key_id, expires)",
)

_SPENT = "COALESCE((SELECT nanos FROM sophia_spend WHERE key_id = ? AND period = ?), 0)"
_HELD = "(SELECT COALESCE(SUM(nanos), 0) FROM sophia_holds WHERE key_id = ?)"


def nanos(usd: float) -> int:
    """USD as integer nano-dollars (how budgets count money)."""
    return round(usd * NANOS)


_names: dict[float, tuple[str, str]] = {}


def periods(now: float) -> tuple[str, str]:
    """The names of ``now``'s UTC day and month (``day:YYYYMMDD``, ``month:YYYYMM``), memoised per day."""
    day = day_start(now)
    names = _names.get(day)
    if names is None:
        t = datetime.fromtimestamp(now, UTC)
        names = (f"day:{t:%Y%m%d}", f"month:{t:%Y%m}")
        if len(_names) > 64:
            _names.clear()
        _names[day] = names
    return names


def budget_periods(key: KeyRecord, now: float) -> list[tuple[str, str, float, float]]:
    """(kind, period name, period start, budget USD) for each budget the key has."""
    day, month = periods(now)
    out = []
    if key.budget_daily_usd is not None:
        out.append(("daily", day, day_start(now), key.budget_daily_usd))
    if key.budget_monthly_usd is not None:
        out.append(("monthly", month, month_start(now), key.budget_monthly_usd))
    return out


class DatabaseBudgets:
    """Budgets over a ``Database`` (not owned). ``await DatabaseBudgets.open(db, ledger.spend)``."""

    def __init__(self, db: Database, spend_lookup: SpendLookup) -> None:
        self.db = db
        self.spend_lookup = spend_lookup
        self._seeded: set[tuple[str, str]] = set()
        self._seeding: dict[str, asyncio.Lock] = {}

    @classmethod
    async def open(cls, db: Database, spend_lookup: SpendLookup) -> DatabaseBudgets:
        await db.migrate(SCHEMA)
        return cls(db, spend_lookup)

    async def reserve(self, key: KeyRecord, usd: float, now: float) -> Hold | None:
        """Hold ``usd`` for a call of ``key`` while its budgets have room; None when it has none."""
        budgets = budget_periods(key, now)
        if not budgets:
            return None
        if any((key.id, period) not in self._seeded for _, period, _, _ in budgets):
            await self._seed(key.id, budgets)
        steps: list[tuple[str, list[object]]] = []
        hold = Hold(f"hold_{secrets.token_hex(8)}", key.id, max(nanos(usd), 0))
        steps.append(("DELETE FROM sophia_holds WHERE key_id = ? AND expires <= ?", [key.id, now]))
        conditions = " AND ".join(f"{_SPENT} + {_HELD} < ?" for _ in budgets)
        params: list[object] = [hold.id, key.id, hold.nanos, now + HOLD_SECONDS]
        for _, period, _, budget in budgets:
            params += [key.id, period, key.id, nanos(budget)]
        steps.append(
            (
                f"INSERT INTO sophia_holds (id, key_id, nanos, expires) SELECT ?, ?, ?, ? WHERE {conditions}",
                params,
            )
        )
        counts = await self.db.transaction(steps, lock=key.id)
        if counts[-1] == 1:
            return hold
        await self._refuse(key, budgets)
        return None  # not reached: _refuse raises

    async def _seed(self, key_id: str, budgets: list[tuple[str, str, float, float]]) -> None:
        """Create this period's spend rows from the ledger, once per process (concurrent first calls of
        a key share one lookup); the first process to insert a row wins."""
        lock = self._seeding.setdefault(key_id, asyncio.Lock())
        async with lock:
            steps: list[tuple[str, list[object]]] = []
            for _, period, start, _ in budgets:
                if (key_id, period) not in self._seeded:
                    spent = await self.spend_lookup(key_id, start)
                    steps.append(
                        (
                            "INSERT INTO sophia_spend (key_id, period, nanos) VALUES (?, ?, ?) "
                            "ON CONFLICT (key_id, period) DO NOTHING",
                            [key_id, period, nanos(spent)],
                        )
                    )
            if steps:
                await self.db.transaction(steps)
            self._seeded.update((key_id, period) for _, period, _, _ in budgets)
        if len(self._seeding) > 10_000 or len(self._seeded) > 100_000:
            self._seeding.clear()  # bounded memory; a forgotten row costs one ledger lookup again
            self._seeded.clear()

    async def _refuse(self, key: KeyRecord, budgets: list[tuple[str, str, float, float]]) -> None:
        """Raise BudgetExceeded for the first budget without room (what is spent, and held)."""
        held_row = await self.db.fetchone(f"SELECT {_HELD} AS held", [key.id])
        held = int(held_row["held"]) if held_row else 0
        for kind, period, _, budget in budgets:
            row = await self.db.fetchone(f"SELECT {_SPENT} AS spent", [key.id, period])
            spent = int(row["spent"]) if row else 0
            if spent + held >= nanos(budget):
                raise over_budget(kind, budget, spent / NANOS, held / NANOS)
        kind, _, _, budget = budgets[0]  # room came back between the two reads
        raise over_budget(kind, budget, 0.0, held / NANOS)

    async def settle(self, key: KeyRecord, hold: Hold | None, cost_usd: float, now: float) -> None:
        """Release ``hold`` (if any) and add the call's real cost to this period's spend."""
        steps: list[tuple[str, list[object]]] = []
        if hold is not None:
            steps.append(("DELETE FROM sophia_holds WHERE id = ?", [hold.id]))
        cost = nanos(cost_usd)
        if cost > 0:
            for _, period, _, _ in budget_periods(key, now):
                steps.append(
                    (
                        "UPDATE sophia_spend SET nanos = nanos + ? WHERE key_id = ? AND period = ?",
                        [cost, key.id, period],
                    )
                )
        if steps:
            await self.db.transaction(steps)
