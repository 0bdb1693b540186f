"""Prometheus metrics from what the ledger keeps: one figure for cost, counted off the request path.

``LedgerMetrics.observe`` is a ledger observer (``Ledger.observers``): it runs on each batch *after*
it is written, so the request path pays nothing and ``/metrics`` shows exactly the requests, tokens
and money the ledger holds (cost is the ledger's own integer ``cost_nanos``, never computed again). Gauges read
at scrape time: the breakers' states, and each budgeted key's budget use (``sophia_budget_*``, below).
Served at ``GET /metrics`` (and ``/admin/metrics``) on the gateway for a key allowed to read every
team's usage (Prometheus: ``authorization: {credentials: …}``).

**Budget use** is read from the database in one query per scrape (``LedgerMetrics.refresh``, which
``GET /metrics`` awaits before rendering; scrapes under a second apart share one read; the time of the
read is ``sophia_budget_read_timestamp_seconds``). Nothing is read while nobody scrapes. Rendered
without a refresh (a script), the gauges show the last read and start the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sophia.accounts.budgets import DatabaseBudgets, periods
from sophia.accounts.ledger import UsageRecord
from sophia.accounts.limits import day_start, month_start, nanos
from sophia.errors import StorageError
from sophia.storage.db import Database

if TYPE_CHECKING:
    from sophia.accounts import Accounts

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BREAKER_STATES = ("closed", "half_open", "open")


class _Breakers(Collector):
    def __init__(self, snapshot: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "sophia_breaker_state",
            "1 for the state each model's circuit breaker is in",
            labels=["model", "state"],
        )
        for model, snap in self.snapshot().items():
            for state in BREAKER_STATES:
                family.add_metric([model, state], 1.0 if str(snap.get("state")) == state else 0.0)
        yield family


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """One budget of one key: its limit and what the key spent in the current period (nano-dollars)."""

    key_id: str
    team: str
    period: str  # "daily" or "monthly"
    limit_nanos: int
    spent_nanos: int

    @property
    def share(self) -> float:
        """Share of the budget used (1.0 for a zero budget: nothing may be spent)."""
        return self.spent_nanos / self.limit_nanos if self.limit_nanos > 0 else 1.0


def _spent(budget: str, spend_table: bool) -> str:
    """SQL for what key ``k`` spent in a period, 0 when it has no ``budget`` (parameters: with the spend
    table, the period's name and start; else the start)."""
    ledger = "(SELECT SUM(u.cost_nanos) FROM sophia_usage u WHERE u.key_id = k.id AND u.ts >= ?)"
    if spend_table:
        row = "(SELECT s.nanos FROM sophia_spend s WHERE s.key_id = k.id AND s.period = ?)"
        spent = f"COALESCE({row}, {ledger}, 0)"
    else:
        spent = f"COALESCE({ledger}, 0)"
    return f"CASE WHEN k.{budget} IS NULL THEN 0 ELSE {spent} END"


class BudgetReader:
    """Every active key with a budget and what it spent this UTC day / month, in one query.

    What a key spent is its budgets' own figure where the limiter keeps budgets in the database
    (``sophia_spend``, the row ``reserve`` checks; ``spend_table``), and for a period without a row
    yet (no call reserved in it) the ledger's sum, which is what the row would be seeded with. With
    Redis the counters live there, and the ledger's sum (what seeds them) is read instead."""

    def __init__(
        self,
        db: Database,
        *,
        spend_table: bool,
        clock: Callable[[], float] = time.time,
        min_age: float = 1.0,
    ) -> None:
        self.db = db
        self.spend_table = spend_table
        self.clock = clock
        self.min_age = min_age  # scrapes closer together than this share one read
        self.uses: list[BudgetUse] = []
        self.read_at: float | None = None  # when ``uses`` were read (epoch seconds)
        self.reads = 0
        self._task: asyncio.Task[None] | None = None
        self._sql = (
            "SELECT k.id AS key_id, k.team AS team, k.budget_daily_usd AS daily, "
            f"k.budget_monthly_usd AS monthly, {_spent('budget_daily_usd', spend_table)} AS day_spent, "
            f"{_spent('budget_monthly_usd', spend_table)} AS month_spent FROM sophia_keys k "
            "WHERE k.revoked_at IS NULL AND (k.budget_daily_usd IS NOT NULL OR k.budget_monthly_usd IS NOT NULL) "
            "ORDER BY k.id"
        )

    async def read(self) -> list[BudgetUse]:
        """Read the budgets now (one query) and keep them for the next scrape."""
        now = self.clock()
        day, month = periods(now)
        if self.spend_table:
            params: list[object] = [day, day_start(now), month, month_start(now)]
        else:
            params = [day_start(now), month_start(now)]
        rows = await self.db.fetchall(self._sql, params)
        uses = []
        for row in rows:
            for period, limit, spent in (
                ("daily", row["daily"], row["day_spent"]),
                ("monthly", row["monthly"], row["month_spent"]),
            ):
                if limit is not None:
                    uses.append(
                        BudgetUse(str(row["key_id"]), str(row["team"]), period, nanos(limit), int(spent))
                    )
        self.uses, self.read_at = uses, now
        self.reads += 1
        return uses

    def scraped(self) -> None:
        """A scrape took the figures: start the next read, unless one runs or the last is very recent."""
        if self._task is not None and not self._task.done():
            return
        if self.read_at is not None and self.clock() - self.read_at < self.min_age:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # rendered outside the event loop (a script): nothing to read with
        self._task = loop.create_task(self.refresh())

    async def refresh(self) -> None:
        try:
            await self.read()
        except StorageError as exc:  # the figures stay as they were; the next scrape tries again
            log.warning("could not read the budgets for /metrics: %s", exc)

    async def settled(self) -> None:
        """Wait for the read in flight, if any."""
        if self._task is not None:
            await asyncio.shield(self._task)


#: the budget gauges: name, help, the figure of a ``BudgetUse``
_BUDGET_GAUGES: tuple[tuple[str, str, Callable[[BudgetUse], float]], ...] = (
    ("sophia_budget_limit_nanodollars", "A key's budget for the period (1e-9 USD)", lambda u: u.limit_nanos),
    (
        "sophia_budget_spent_nanodollars",
        "What the key spent in the current UTC day or month (1e-9 USD)",
        lambda u: u.spent_nanos,
    ),
    ("sophia_budget_used_ratio", "Share of the key's budget used in the current period", lambda u: u.share),
)


class _Budgets(Collector):
    def __init__(self, reader: BudgetReader) -> None:
        self.reader = reader

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self._families([], None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        uses, read_at = self.reader.uses, self.reader.read_at
        self.reader.scraped()
        return self._families(uses, read_at)

    @staticmethod
    def _families(uses: list[BudgetUse], read_at: float | None) -> Iterator[GaugeMetricFamily]:
        for name, text, figure in _BUDGET_GAUGES:
            family = GaugeMetricFamily(name, text, labels=["key", "team", "period"])
            for use in uses:
                family.add_metric([use.key_id, use.team, use.period], figure(use))
            yield family
        when = GaugeMetricFamily(
            "sophia_budget_read_timestamp_seconds", "When the budget gauges were read from the database"
        )
        if read_at is not None:
            when.add_metric([], read_at)
        yield when


class LedgerMetrics:
    """Counters fed by the ledger's written batches; the breakers' states and (given ``accounts``) every
    key's budget use at scrape time."""

    def __init__(
        self,
        breakers: Callable[[], dict[str, dict[str, Any]]] | None = None,
        *,
        accounts: Accounts | None = None,
    ) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "sophia_requests",
            "Requests recorded in the ledger",
            ["endpoint", "model", "outcome", "cache"],
            registry=r,
        )
        self.latency = Histogram(
            "sophia_request_latency_seconds",
            "Request latency",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("sophia_tokens", "Tokens used", ["model", "kind"], registry=r)
        self.cost = Counter(
            "sophia_cost_nanodollars",
            "Nano-dollars spent (1e-9 USD), the ledger's own integer figure",
            ["model", "team"],
            registry=r,
        )
        self.saved = Counter(
            "sophia_cache_saved_nanodollars", "Nano-dollars cache hits saved", ["team"], registry=r
        )
        self.cache_hits = Counter("sophia_cache_hits", "Answers served from the cache", ["kind"], registry=r)
        self.tool_calls = Counter(
            "sophia_mcp_tool_calls", "MCP tool calls", ["server", "tool", "outcome"], registry=r
        )
        if breakers is not None:
            r.register(_Breakers(breakers))
        self.budgets: BudgetReader | None = None
        if accounts is not None:
            spend_table = isinstance(getattr(accounts.limiter, "budgets", None), DatabaseBudgets)
            self.budgets = BudgetReader(accounts.db, spend_table=spend_table)
            r.register(_Budgets(self.budgets))

    def observe(self, records: Sequence[UsageRecord]) -> None:
        for rec in records:
            endpoint = rec.endpoint
            if endpoint.startswith("mcp:"):
                server, _, tool = endpoint[4:].partition("/")
                self.tool_calls.labels(server, tool, rec.outcome).inc()
                endpoint = "mcp"
            model = rec.served_model or rec.requested_model or "-"
            self.requests.labels(endpoint, model, rec.outcome, rec.cache).inc()
            self.latency.labels(endpoint).observe(max(0.0, rec.latency_ms) / 1000)
            if rec.prompt_tokens:
                self.tokens.labels(model, "prompt").inc(rec.prompt_tokens)
            if rec.completion_tokens:
                self.tokens.labels(model, "completion").inc(rec.completion_tokens)
            if rec.cost_nanos:
                self.cost.labels(model, rec.team).inc(rec.cost_nanos)
            if rec.cache in ("exact", "semantic"):
                self.cache_hits.labels(rec.cache).inc()
                if rec.saved_nanos:
                    self.saved.labels(rec.team).inc(rec.saved_nanos)

    async def refresh(self) -> None:
        """Read the budgets for the scrape about to render (unless a read is under a second old)."""
        reader = self.budgets
        if reader is None:
            return
        await reader.settled()
        if reader.read_at is None or reader.clock() - reader.read_at >= reader.min_age:
            await reader.refresh()

    def render(self) -> bytes:
        return generate_latest(self.registry)
