"""``cache_stats`` and ``cache_purge``: the response cache, seen and cleaned from an IDE (the cache and the
accounts alone: no model gateway is started)."""

from __future__ import annotations

from pydantic import Field

from sophia.cache.service import CACHE, CACHE_REPORTS
from sophia.errors import InvalidRequest
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import Confirmable, Input, Output, ToolSet

tools = ToolSet()


class CacheStatsIn(Input):
    since: str = Field("7d", max_length=40, description="Start: 24h, 7d, today, month or an ISO date.")


class CacheStatsOut(Output):
    since: str
    store: str
    entries: int
    threshold: float | None = None
    lookups: int
    hits_exact: int
    hits_semantic: int
    hit_rate: float
    saved_usd: float
    false_hits_reported: int
    false_hit_rate_semantic: float


class CachePurgeIn(Confirmable):
    tag: str | None = Field(
        None, min_length=1, max_length=200, description="Answers that used this data source."
    )
    model: str | None = Field(
        None, min_length=1, max_length=200, description="Answers of this model or alias."
    )
    all: bool = Field(
        False, description="Every answer in scope (needed when neither tag nor model is given)."
    )


class CachePurgeOut(Output):
    deleted: int
    scope: str


@tools.tool(title="Cache statistics", read_only=True, destructive=False, idempotent=True, open_world=False)
async def cache_stats(ctx: ToolContext, args: CacheStatsIn) -> CacheStatsOut:
    """Response-cache hit rate (exact, semantic), USD saved, false hits reported and entries stored over a period."""
    from datetime import UTC, datetime

    from sophia.cache import admin
    from sophia.timeparse import parse_since

    cache = await ctx.service(CACHE)
    ledger = (await ctx.services.open()).ledger
    since = parse_since(args.since)
    data = await admin.stats(cache, ledger, await ctx.service(CACHE_REPORTS), since)
    data["since"] = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
    return CacheStatsOut(**{k: v for k, v in data.items() if k in CacheStatsOut.model_fields})


@tools.tool(title="Purge the cache", read_only=False, destructive=True, idempotent=True, open_world=False)
async def cache_purge(ctx: ToolContext, args: CachePurgeIn) -> CachePurgeOut:
    """Delete cached answers by data source (`tag`), `model`, or `all`; a non-admin key reaches only its team's. Asks to confirm."""
    from sophia.cache import admin

    cache = await ctx.service(CACHE)
    team = None if ctx.key is None or ctx.key.admin else ctx.key.team
    if args.tag is None and args.model is None and not args.all:
        raise InvalidRequest("give a tag or a model to purge, or all=true for every answer in scope")
    parts = [f"{k} {v}" for k, v in (("tag", args.tag), ("model", args.model), ("team", team)) if v]
    scope = ", ".join(parts) or "every cached answer"
    await ctx.confirm(f"Delete cached answers ({scope})?")
    deleted = await admin.purge(cache, tag=args.tag, model=args.model, team=team, everything=True)
    return CachePurgeOut(deleted=deleted, scope=scope)
