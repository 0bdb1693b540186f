"""``DatabaseBudgets``: daily and monthly budgets held in the database, shared by every process on it.

A budget is a promise, so a call's money is **reserved before it runs**: ``reserve`` adds a hold of the
call's worst-case cost for the key, in one transaction, only while what the key spent this period plus
what its calls in flight hold stays under the budget; ``settle`` removes the hold and adds the real cost.
Concurrent calls (any number of workers and instances on one SQLite file or one PostgreSQL) therefore
overshoot a budget by at most one call's cost: the last one admitted while there was room.

**Leases keep the hot path off the database.** A process asks the database for a *lease* per key: one
hold row, sized for the calls it has in flight plus headroom (up to 16 calls' worst case, at most a
quarter of the room left), granted in the same transaction and by the same rule; while the lease has
room, ``reserve`` and ``settle`` are in memory. A background flush (every 250 ms) adds the costs settled
under the lease to the spend and shrinks the lease by as much, in one transaction; an idle lease shrinks
to what is in flight. When the lease cannot grow enough (the room left is smaller than the calls in
flight), the call takes a hold row of its own under the rule above. Leases and holds of every process
count alike, so the bound holds across processes: leases never exceed the room, and only per-call holds
may pass the budget, by at most one call.

Tables: ``sophia_spend`` (key, period ``day:YYYYMMDD`` / ``month:YYYYMM``, integer nano-dollars spent)
and ``sophia_holds`` (one row per call in flight, expiring after ``HOLD_SECONDS`` so that a process
killed mid-call does not keep its holds). A period's row is seeded from the usage ledger the first time
a process needs it (``INSERT … ON CONFLICT DO NOTHING``: the first seed wins), so budgets survive
restarts and a database that predates this table; after that the row is the authority. A cost
settled into a period whose row does not exist yet is left to that seed (the ledger has it). A
process killed with a lease loses the costs it settled in its last flush interval from the spend
(its ledger buffer is lost the same way); its lease row expires after ``LEASE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import monotonic, time

from sophia.accounts.keys import KeyRecord
from sophia.accounts.limits import (
    HOLD_SECONDS,
    NANOS,
    Hold,
    SpendLookup,
    day_start,
    month_start,
    nanos,
    over_budget,
)
from sophia.errors import BudgetExceeded
from sophia.storage import Database

__all__ = ["HOLD_SECONDS", "DatabaseBudgets", "nanos", "periods"]

log = logging.getLogger(__name__)
#: a lease row lives this long unless its process refreshes it (every flush while it is in use)
LEASE_SECONDS = 60.0
#: seconds between flushes of the costs settled under leases; an idle lease shrinks after IDLE_SECONDS
FLUSH_INTERVAL = 0.25
IDLE_SECONDS = 2.0
#: a lease's headroom: this many calls like the one that asked, at most this share of the room left
LEASE_CALLS = 16
LEASE_SHARE = 4


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


@dataclass(slots=True, eq=False)
class _Lease:
    """This process's share of one key's budgets: ``size`` nano-dollars held by its row."""

    id: str
    key: KeyRecord
    size: int = 0  # what the row holds (0: no row, or an empty one)
    inflight: int = 0  # worst cases of the calls admitted under it and not settled
    unflushed: int = 0  # real costs settled under it, not yet added to the spend
    names: tuple[str, str] = ("", "")  # the day and month it was granted in
    expires: float = 0.0  # when its row expires unless refreshed (epoch seconds)
    used: float = field(default_factory=monotonic)
    busy: bool = False  # being resized: calls wait for the new size (under ``lock``)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def fits(self, worst: int, names: tuple[str, str]) -> bool:
        return (
            not self.busy
            and self.names == names
            and self.size > 0
            and self.inflight + self.unflushed + worst <= self.size
        )


class DatabaseBudgets:
    """Budgets over a ``Database`` (not owned). ``await DatabaseBudgets.open(db, ledger.spend)``."""

    def __init__(self, db: Database, spend_lookup: SpendLookup) -> None:
        self.db = db
        self.spend_lookup = spend_lookup
        self._seeded: set[tuple[str, str]] = set()
        self._seeding: dict[str, asyncio.Lock] = {}
        self._leases: dict[str, _Lease] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._least = "MIN" if db.dialect == "sqlite" else "LEAST"

    @classmethod
    async def open(cls, db: Database, spend_lookup: SpendLookup) -> DatabaseBudgets:
        await db.migrate(SCHEMA)
        return cls(db, spend_lookup)

    async def reserve(self, key: KeyRecord, usd: float, now: float) -> Hold | None:
        """Hold ``usd`` for a call of ``key`` while its budgets have room; None when it has none."""
        budgets = budget_periods(key, now)
        if not budgets:
            return None
        worst = max(nanos(usd), 0)
        names = periods(now)
        lease = self._leases.get(key.id)
        if lease is None:
            lease = self._leases[key.id] = _Lease(f"lease_{secrets.token_hex(8)}", key)
        lease.key = key  # the latest record: its budgets may have changed
        if not lease.fits(worst, names):
            async with lease.lock:  # concurrent calls that do not fit share one renewal
                if not lease.fits(worst, names):
                    lease.busy = True
                    try:
                        await self._renew(lease, budgets, worst, names, now)
                    finally:
                        lease.busy = False
        if lease.fits(worst, names):
            lease.inflight += worst
            lease.used = monotonic()
            return Hold(lease.id, key.id, worst, leased=True)
        return await self._hold(key, worst, budgets, now)

    async def _renew(
        self,
        lease: _Lease,
        budgets: list[tuple[str, str, float, float]],
        worst: int,
        names: tuple[str, str],
        now: float,
    ) -> None:
        """Flush the lease's settled costs and resize its row, in one transaction: to what is in flight
        plus ``worst`` plus headroom when the room left (spend and every other hold and lease of the
        key counted) allows it, else to what is in flight."""
        key = lease.key
        if any((key.id, period) not in self._seeded for _, period, _, _ in budgets):
            await self._seed(key.id, budgets)
        flushed = lease.unflushed
        need = lease.inflight + worst
        expires = max(now, time()) + LEASE_SECONDS
        steps: list[tuple[str, list[object]]] = [
            (
                "DELETE FROM sophia_holds WHERE key_id = ? AND expires <= ? AND id <> ?",
                [key.id, now, lease.id],
            )
        ]
        steps += self._flush_steps(lease, flushed, budgets)
        room = self._room(budgets)
        headroom = f"{self._least}(CAST(? AS BIGINT), (({room}) - CAST(? AS BIGINT)) / {LEASE_SHARE})"
        room_params: list[object] = []
        for _, period, _, budget in budgets:
            room_params += [nanos(budget), key.id, period, key.id, lease.id]
        steps.append(
            (
                "INSERT INTO sophia_holds (id, key_id, nanos, expires) VALUES (?, ?, 0, ?) "
                "ON CONFLICT (id) DO NOTHING",
                [lease.id, key.id, expires],
            )
        )
        steps.append(
            (
                f"UPDATE sophia_holds SET nanos = CASE WHEN ({room}) >= CAST(? AS BIGINT) AND ({room}) > 0 "
                f"THEN CAST(? AS BIGINT) + {headroom} ELSE CAST(? AS BIGINT) END, expires = ? WHERE id = ?",
                [
                    *room_params,
                    need,
                    *room_params,
                    need,
                    LEASE_CALLS * max(worst, 1),
                    *room_params,
                    need,
                    lease.inflight,
                    expires,
                    lease.id,
                ],
            )
        )
        await self.db.transaction(steps, lock=key.id)
        lease.unflushed -= flushed
        row = await self.db.fetchone("SELECT nanos FROM sophia_holds WHERE id = ?", [lease.id])
        lease.size = int(row["nanos"]) if row else 0
        lease.names, lease.expires = names, expires
        self._start_flusher()

    def _room(self, budgets: list[tuple[str, str, float, float]]) -> str:
        """SQL for the smallest room left in the key's budgets, the lease itself not counted (parameters
        per budget: its nanos, key, period, key, lease id)."""
        parts = [
            "CAST(? AS BIGINT) - COALESCE((SELECT nanos FROM sophia_spend WHERE key_id = ? AND period = ?), 0)"
            " - (SELECT COALESCE(SUM(nanos), 0) FROM sophia_holds WHERE key_id = ? AND id <> ?)"
            for _ in budgets
        ]
        return parts[0] if len(parts) == 1 else f"{self._least}({', '.join(parts)})"

    @staticmethod
    def _flush_steps(
        lease: _Lease, flushed: int, budgets: list[tuple[str, str, float, float]]
    ) -> list[tuple[str, list[object]]]:
        """Add ``flushed`` to this period's spend."""
        steps: list[tuple[str, list[object]]] = []
        if flushed > 0:
            for _, period, _, _ in budgets:
                steps.append(
                    (
                        "UPDATE sophia_spend SET nanos = nanos + ? WHERE key_id = ? AND period = ?",
                        [flushed, lease.key.id, period],
                    )
                )
        return steps

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        while self._leases:
            await asyncio.sleep(FLUSH_INTERVAL)
            for lease in list(self._leases.values()):
                try:
                    await self._flush(lease)
                except Exception as exc:  # noqa: BLE001 - the database is down: the next flush retries
                    log.warning("could not flush a budget lease: %s", exc)

    async def _flush(self, lease: _Lease, *, closing: bool = False) -> None:
        """Add the lease's settled costs to the spend and shrink its row by as much (to what is in flight
        once idle or closing), refreshing its expiry; forget an empty, idle lease."""
        idle = closing or monotonic() - lease.used > IDLE_SECONDS
        stale = lease.size > 0 and time() > lease.expires - LEASE_SECONDS / 2
        if lease.unflushed == 0 and not (idle and lease.size > lease.inflight) and not stale:
            if idle and lease.size == 0 and lease.inflight == 0 and not lease.lock.locked():
                self._leases.pop(lease.key.id, None)
            return
        async with lease.lock:
            # Moving settled costs from the lease to the spend shifts the row and the lease's use by the
            # same amount: calls keep being admitted against the lease meanwhile. Only shrinking an idle
            # lease to what is in flight holds calls back (it reads ``inflight`` before the write).
            lease.busy = idle
            try:
                now = time()
                flushed = lease.unflushed
                # The row holds ``lease.size`` (only this process writes it, under the lock).
                size = lease.inflight if idle else lease.size - flushed
                steps = self._flush_steps(lease, flushed, budget_periods(lease.key, now))
                steps.append(
                    (
                        "UPDATE sophia_holds SET nanos = ?, expires = ? WHERE id = ?",
                        [size, now + LEASE_SECONDS, lease.id],
                    )
                )
                await self.db.transaction(steps, lock=lease.key.id)
                lease.unflushed -= flushed
                lease.size = size  # what the row now holds
                lease.expires = now + LEASE_SECONDS
            finally:
                lease.busy = False

    async def close(self) -> None:
        """Flush every lease and give back what it held beyond its calls in flight."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        for lease in list(self._leases.values()):
            try:
                await self._flush(lease, closing=True)
            except Exception as exc:  # noqa: BLE001 - closing: the lease row expires on its own
                log.warning("could not flush a budget lease at close: %s", exc)
        self._leases.clear()

    async def _hold(
        self, key: KeyRecord, worst: int, budgets: list[tuple[str, str, float, float]], now: float
    ) -> Hold:
        """A hold row of the call's own, while what the key spent plus every hold and lease is under
        each budget (the rule that lets at most one call past a budget); else BudgetExceeded."""
        steps: list[tuple[str, list[object]]] = []
        hold = Hold(f"hold_{secrets.token_hex(8)}", key.id, worst)
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
        raise await self._refusal(key, budgets)

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

    async def _refusal(self, key: KeyRecord, budgets: list[tuple[str, str, float, float]]) -> BudgetExceeded:
        """BudgetExceeded for the first budget without room (what is spent, and held)."""
        held_row = await self.db.fetchone(f"SELECT {_HELD} AS held", [key.id])
        held = int(held_row["held"]) if held_row else 0
        for kind, period, _, budget in budgets:
            row = await self.db.fetchone(f"SELECT {_SPENT} AS spent", [key.id, period])
            spent = int(row["spent"]) if row else 0
            if spent + held >= nanos(budget):
                return over_budget(kind, budget, spent / NANOS, held / NANOS)
        kind, _, _, budget = budgets[0]  # room came back between the two reads
        return over_budget(kind, budget, 0.0, held / NANOS)

    async def settle(self, key: KeyRecord, hold: Hold | None, cost_usd: float, now: float) -> None:
        """Release ``hold`` (if any) and add the call's real cost to this period's spend (for a hold
        taken from the lease: in memory, written by the next flush)."""
        if hold is not None and hold.leased:
            lease = self._leases.get(hold.key_id)
            if lease is not None and lease.id == hold.id:
                lease.inflight -= hold.nanos
                lease.unflushed += max(nanos(cost_usd), 0)
                lease.used = monotonic()
                self._start_flusher()
                return
            hold = None  # the lease is gone (this process closed it): book the cost directly
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
