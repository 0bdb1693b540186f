"""Running the cache: statistics, purges, data-version bumps and false-hit reports.

One implementation behind the admin API (``/admin/cache…``), the CLI (``sophia cache …``) and the
AI MCP server's ``cache_stats`` / ``cache_purge`` tools.

* **Statistics** come from the usage ledger, so they cover every gateway process and survive
  restarts: chat lookups, exact and semantic hits, hit rate and dollars saved over a period; plus
  the entries in the store and the false hits reported.
* **A false-hit report** names the request that was answered wrongly (its ``x-request-id``): the
  ledger row of that request names the entry that answered it (its ``cache_entry`` column), the
  entry is deleted at once and the report is kept in the cache's own ``cache_reports`` table, so
  the false-hit rate of the semantic layer is measured in production, not only on the benchmark.
  On an alias with a wrong-answer budget the report also becomes a labelled row its risk model
  learns from (``sophia.cache.risk``).
* **Per alias** that learns: hits and checks (and what the checks cost) from the ledger, and the
  served error rate estimated from every instance's checks, with its interval.

The ledger comes from ``sophia.accounts`` (below this room); the reports table lives in the
process's database, which the caller hands in (``Reports(db)``), like every room's tables.
"""

from __future__ import annotations

import re
from time import time
from typing import TYPE_CHECKING, Any

from sophia.cache.observations import Observation
from sophia.cache.risk import logit
from sophia.errors import ConfigError, InvalidRequest

if TYPE_CHECKING:
    from sophia.accounts.ledger import Ledger
    from sophia.cache.cache import ResponseCache
    from sophia.storage import Database

REPORTS_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS cache_reports (request_id TEXT PRIMARY KEY, entry_id TEXT NOT NULL, "
    "kind TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, reporter TEXT)",
]


class Reports:
    """False-hit reports, in the ``cache_reports`` table of ``db`` (created on first use)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ready = False

    async def _table(self) -> None:
        if not self._ready:
            await self.db.migrate(REPORTS_SCHEMA)
            self._ready = True

    async def add(self, request_id: str, entry_id: str, kind: str, reporter: str | None) -> None:
        """Keep one report (a second report of the same request is not counted twice)."""
        await self._table()
        already = await self.db.fetchone(
            "SELECT 1 AS x FROM cache_reports WHERE request_id = ?", [request_id]
        )
        if already is None:
            await self.db.execute(
                "INSERT INTO cache_reports (request_id, entry_id, kind, ts, reporter) VALUES (?, ?, ?, ?, ?)",
                [request_id, entry_id, kind, time(), reporter],
            )

    async def counts(self, since: float) -> dict[str, int]:
        """Reports since ``since`` per kind of hit (exact, semantic)."""
        await self._table()
        rows = await self.db.fetchall(
            "SELECT kind, COUNT(*) AS n FROM cache_reports WHERE ts >= ? GROUP BY kind", [float(since)]
        )
        return {r["kind"]: int(r["n"]) for r in rows}


async def stats(cache: ResponseCache, ledger: Ledger, reports: Reports, since: float) -> dict[str, Any]:
    """Hits, misses and savings of chat requests since ``since`` (all processes), and the store's size."""
    rows = [
        r
        for r in await ledger.report(since, time(), ["endpoint", "cache", "requested_model"])
        if r["endpoint"] == "chat"
    ]
    chat: dict[str, dict[str, float]] = {}
    for r in rows:
        total = chat.setdefault(r["cache"], {})
        for k in ("requests", "saved_usd", "cost_usd"):
            total[k] = total.get(k, 0) + (r.get(k) or 0)
    exact = int(chat.get("exact", {}).get("requests", 0))
    semantic = int(chat.get("semantic", {}).get("requests", 0))
    checks = int(chat.get("check", {}).get("requests", 0))
    misses = int(chat.get("miss", {}).get("requests", 0))
    lookups = exact + semantic + checks + misses
    reported = await reports.counts(since)
    return {
        "since": since,
        "store": cache.settings.store,
        "strategy": cache.settings.strategy if cache.settings.enabled else "off",
        "entries": await cache.store_backend.count(),
        "threshold": _threshold(cache),
        "lookups": lookups,
        "hits_exact": exact,
        "hits_semantic": semantic,
        "hit_rate": round((exact + semantic) / lookups, 4) if lookups else 0.0,
        "saved_usd": round(sum(r.get("saved_usd", 0.0) for r in chat.values()), 6),
        "spent_usd": round(sum(r.get("cost_usd", 0.0) for r in chat.values()), 6),
        "false_hits_reported": sum(reported.values()),
        "false_hit_rate_semantic": round(reported.get("semantic", 0) / semantic, 4) if semantic else 0.0,
        "checks": checks,
        "aliases": await _aliases(cache, rows),
    }


async def _aliases(cache: ResponseCache, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per alias that learns (a wrong-answer budget or checks) or has labelled rows: hits and checks
    from the ledger (all processes, the period), the estimate from every instance's labelled rows
    (all kept rows, not only the period's: the estimate needs them)."""
    await cache.learner.load()
    learned = cache.learner.summary()
    aliases = {a for a in learned} | {
        str(r["requested_model"])
        for r in rows
        if r["cache"] == "check" or cache.learner.learns(str(r["requested_model"]))
    }
    out: dict[str, Any] = {}
    for alias in sorted(aliases):
        mine = [r for r in rows if r["requested_model"] == alias]
        count = {
            k: int(sum(r["requests"] for r in mine if r["cache"] == k))
            for k in ("exact", "semantic", "check", "miss")
        }
        row = learned.get(alias) or cache.learner.summary_of(alias)
        row.pop("this_instance", None)
        out[alias] = {
            "hits_exact": count["exact"],
            "hits_semantic": count["semantic"],
            "checks_in_period": count["check"],
            "check_share": round(count["check"] / (count["semantic"] + count["check"]), 4)
            if count["semantic"] + count["check"]
            else 0.0,
            "check_cost_usd_in_period": round(
                sum(r.get("cost_usd") or 0 for r in mine if r["cache"] == "check"), 6
            ),
            **row,
        }
    return out


def _threshold(cache: ResponseCache) -> float | None:
    try:
        return cache.threshold
    except ConfigError:  # unreadable verifier weights: the lookups log it; stats still answer
        return None


async def purge(
    cache: ResponseCache,
    *,
    tag: str | None = None,
    model: str | None = None,
    team: str | None = None,
    everything: bool = False,
) -> int:
    """Delete the entries matching every criterion given; with none, only when ``everything`` is set."""
    if tag is None and model is None and team is None and not everything:
        raise InvalidRequest("name a tag, a model or a team to purge, or ask for everything explicitly")
    return await cache.purge(tag=tag, model=model, tenant=team)


async def report_false_hit(
    cache: ResponseCache, ledger: Ledger, reports: Reports, request_id: str, reporter: str | None = None
) -> dict[str, Any]:
    """Record that ``request_id`` got a wrong cached answer and delete the entry that gave it."""
    record = await ledger.find(request_id)
    if record is None:
        raise InvalidRequest(f"no request {request_id!r} in the usage ledger", code="not_found")
    kind, entry_id = record.get("cache"), record.get("cache_entry")
    if kind not in ("exact", "semantic") or not entry_id:
        raise InvalidRequest(f"request {request_id!r} was not answered from the cache", param="request_id")
    removed = await cache.drop([entry_id])
    await reports.add(request_id, entry_id, kind, reporter)
    learned = await _learn_from_report(cache, record, entry_id)
    return {
        "request_id": request_id,
        "entry_id": entry_id,
        "kind": kind,
        "removed": removed > 0,
        "learned": learned,
    }


_FEATURE = re.compile(r"\b(cos|score|margin|spread)=(-?[0-9.]+)")


async def _learn_from_report(cache: ResponseCache, record: dict[str, Any], entry_id: str) -> bool:
    """A reported semantic hit of an alias that learns becomes a ``report`` row (wrong), with the
    features its trail recorded: every instance's risk model reads it. Reports are not a random
    sample, so they only make the model more careful; the served error rate is estimated from checks."""
    alias = str(record.get("requested_model") or "")
    if record.get("cache") != "semantic" or not cache.learner.learns(alias):
        return False
    found = dict(_FEATURE.findall(str(record.get("route") or "")))
    if "score" not in found or "margin" not in found:
        return False  # served before its alias learned: the trail lacks what the model reads
    row = Observation(
        alias=alias,
        namespace="",
        entry_id=entry_id,
        kind="report",
        ts=time(),
        z=logit(float(found["score"])),
        cos=float(found.get("cos", 0.0)),
        margin=float(found["margin"]),
        spread=float(found.get("spread", 0.0)),
        y=1,
        origin="report",
    )
    await cache.store_backend.add_observations([row])
    return True
