"""Running the cache: statistics, purges, data-version bumps and false-hit reports.

One implementation behind the admin API (``/admin/cache…``), the CLI (``sophia cache …``) and the
AI MCP server's ``cache_stats`` / ``cache_purge`` tools.

* **Statistics** come from the usage ledger, so they cover every gateway process and survive
  restarts: chat lookups, exact and semantic hits, hit rate and dollars saved over a period; plus
  the entries in the store and the false hits reported.
* **A false-hit report** names the request that was answered wrongly (its ``x-request-id``): the
  entry that answered it is deleted at once and the report is kept, so the false-hit rate of the
  semantic layer is measured in production, not only on the benchmark.
"""

from __future__ import annotations

import re
import weakref
from time import time
from typing import TYPE_CHECKING, Any

from sophia.errors import ConfigError, InvalidRequest

if TYPE_CHECKING:
    from sophia.cache.cache import ResponseCache
    from sophia.gateway.ledger import Ledger

REPORTS_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS cache_reports (request_id TEXT PRIMARY KEY, entry_id TEXT NOT NULL, "
    "kind TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, reporter TEXT)",
]
_ENTRY = re.compile(r"\bcache=(exact|semantic) entry=([0-9a-f]+)")
#: ledger databases whose ``cache_reports`` table this process has already created
_READY: weakref.WeakSet[Any] = weakref.WeakSet()


async def _reports_table(ledger: Ledger) -> None:
    """Create ``cache_reports`` beside the ledger once per database handle (idempotent DDL)."""
    if ledger.db not in _READY:
        await ledger.db.migrate(REPORTS_SCHEMA)
        _READY.add(ledger.db)


async def stats(cache: ResponseCache, ledger: Ledger, since: float) -> dict[str, Any]:
    """Hits, misses and savings of chat requests since ``since`` (all processes), and the store's size."""
    rows = await ledger.report(since, time(), ["endpoint", "cache"])
    chat = {r["cache"]: r for r in rows if r["endpoint"] == "chat"}
    exact = chat.get("exact", {}).get("requests", 0)
    semantic = chat.get("semantic", {}).get("requests", 0)
    misses = chat.get("miss", {}).get("requests", 0)
    lookups = exact + semantic + misses
    await _reports_table(ledger)
    reported = await ledger.db.fetchall(
        "SELECT kind, COUNT(*) AS n FROM cache_reports WHERE ts >= ? GROUP BY kind", [float(since)]
    )
    reports = {r["kind"]: int(r["n"]) for r in reported}
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
        "false_hits_reported": sum(reports.values()),
        "false_hit_rate_semantic": round(reports.get("semantic", 0) / semantic, 4) if semantic else 0.0,
    }


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
    cache: ResponseCache, ledger: Ledger, request_id: str, reporter: str | None = None
) -> dict[str, Any]:
    """Record that ``request_id`` got a wrong cached answer and delete the entry that gave it."""
    record = await ledger.find(request_id)
    if record is None:
        raise InvalidRequest(f"no request {request_id!r} in the usage ledger", code="not_found")
    found = _ENTRY.search(record.get("route") or "")
    if record.get("cache") not in ("exact", "semantic") or found is None:
        raise InvalidRequest(f"request {request_id!r} was not answered from the cache", param="request_id")
    kind, entry_id = found.groups()
    removed = await cache.drop([entry_id])
    await _reports_table(ledger)
    already = await ledger.db.fetchone("SELECT 1 AS x FROM cache_reports WHERE request_id = ?", [request_id])
    if already is None:
        await ledger.db.execute(
            "INSERT INTO cache_reports (request_id, entry_id, kind, ts, reporter) VALUES (?, ?, ?, ?, ?)",
            [request_id, entry_id, kind, time(), reporter],
        )
    return {"request_id": request_id, "entry_id": entry_id, "kind": kind, "removed": removed > 0}
