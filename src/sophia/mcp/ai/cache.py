"""``cache_stats`` and ``cache_purge``: the response cache, seen and cleaned from an IDE (the cache and the
accounts alone: no model gateway is started).

Who sees and purges what is ``sophia.accounts.permissions``, as for the admin API: an admin key covers
every team, another key its own team only (``cache.stats.all_teams``, ``cache.purge.all_teams``). A
purge is confirmed by the user (``ToolContext.confirm``); its refusal names the ``sophia cache purge``
command that does the same from a terminal.
"""

from __future__ import annotations

import shlex
from time import time
from typing import Any

from pydantic import Field, StrictBool

from sophia.accounts import permissions
from sophia.cache.service import CACHE, CACHE_REPORTS
from sophia.errors import InvalidRequest
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import Confirmable, Input, Output, ToolSet

tools = ToolSet()


class CacheStatsIn(Input):
    since: str = Field("7d", max_length=40, description="Start: 24h, 7d, today, month or an ISO date.")


class CacheStatsOut(Output):
    scope: str
    since: str
    store: str
    entries: int | None = Field(None, description="Entries stored (all teams: admin keys only).")
    threshold: float | None = None
    lookups: int
    hits_exact: int
    hits_semantic: int
    hit_rate: float
    saved_usd: float
    false_hits_reported: int | None = None
    false_hit_rate_semantic: float | None = None


class CachePurgeIn(Confirmable):
    tag: str | None = Field(
        None, min_length=1, max_length=200, description="Answers that used this data source."
    )
    model: str | None = Field(
        None, min_length=1, max_length=200, description="Answers of this model or alias."
    )
    all: StrictBool = Field(
        False, description="Every answer in scope (needed when neither tag nor model is given)."
    )


class CachePurgeOut(Output):
    deleted: int
    scope: str


#: figures of the whole store, which a key that may not read every team's does not get
_STORE_WIDE = frozenset({"entries", "false_hits_reported", "false_hit_rate_semantic"})


async def _team_figures(ledger: Any, since: float, team: str) -> dict[str, Any]:
    """One team's chat lookups, hits and savings since ``since``, from the ledger (all processes)."""
    rows = await ledger.report(since, time(), ["endpoint", "cache", "team"])
    chat = {r["cache"]: r for r in rows if r["endpoint"] == "chat" and r.get("team") == team}
    exact = chat.get("exact", {}).get("requests", 0)
    semantic = chat.get("semantic", {}).get("requests", 0)
    lookups = exact + semantic + chat.get("miss", {}).get("requests", 0)
    return {
        "lookups": lookups,
        "hits_exact": exact,
        "hits_semantic": semantic,
        "hit_rate": round((exact + semantic) / lookups, 4) if lookups else 0.0,
        "saved_usd": round(sum(r.get("saved_usd", 0.0) for r in chat.values()), 6),
    }


@tools.tool(title="Cache statistics", read_only=True, destructive=False, idempotent=True, open_world=False)
async def cache_stats(ctx: ToolContext, args: CacheStatsIn) -> CacheStatsOut:
    """Response-cache hit rate (exact, semantic), USD saved, false hits reported and entries stored over a period. An admin key sees every team; other keys see their own team's lookups, hits and savings."""
    from datetime import UTC, datetime

    from sophia.cache import admin
    from sophia.timeparse import parse_since

    team = permissions.team_scope(ctx.key, "cache.stats.all_teams")
    cache = await ctx.service(CACHE)
    ledger = (await ctx.services.open()).ledger
    since = parse_since(args.since)
    data = await admin.stats(cache, ledger, await ctx.service(CACHE_REPORTS), since)
    if team is not None:  # the store-wide figures (entries, false-hit reports) are not split by team
        data = {k: v for k, v in data.items() if k not in _STORE_WIDE} | await _team_figures(
            ledger, since, team
        )
    data["scope"] = "all teams" if team is None else f"team {team}"
    data["since"] = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
    return CacheStatsOut(**{k: v for k, v in data.items() if k in CacheStatsOut.model_fields})


def _purge_command(args: CachePurgeIn, team: str | None) -> str:
    """The ``sophia cache purge`` command a person runs to do the same (it asks them to confirm)."""
    flags = [
        f"--{name} {shlex.quote(value)}"
        for name, value in (("tag", args.tag), ("model", args.model))
        if value
    ]
    if team is not None:
        flags.append(f"--team {shlex.quote(team)}")
    return " ".join(["sophia cache purge", *(flags or ["--all"])])


@tools.tool(title="Purge the cache", read_only=False, destructive=True, idempotent=True, open_world=False)
async def cache_purge(ctx: ToolContext, args: CachePurgeIn) -> CachePurgeOut:
    """Delete cached answers by data source (`tag`), `model`, or `all`; a non-admin key reaches only its team's. The user confirms (elicitation); `confirm` counts only for keys made for unattended work."""
    from sophia.cache import admin

    team = permissions.team_scope(ctx.key, "cache.purge.all_teams")
    if args.tag is None and args.model is None and not args.all:
        raise InvalidRequest("give a tag or a model to purge, or all=true for every answer in scope")
    cache = await ctx.service(CACHE)
    parts = [f"{k} {v}" for k, v in (("tag", args.tag), ("model", args.model), ("team", team)) if v]
    scope = ", ".join(parts) or "every cached answer"
    await ctx.confirm(f"Delete cached answers ({scope})?", instead=_purge_command(args, team))
    deleted = await admin.purge(cache, tag=args.tag, model=args.model, team=team, everything=True)
    return CachePurgeOut(deleted=deleted, scope=scope)
