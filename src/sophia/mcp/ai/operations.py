"""``usage_report`` and ``provider_health``: what was spent (from the ledger: the accounts alone, no model
gateway is started) and how the providers are doing (the gateway's breakers).

Who sees what is ``sophia.accounts.permissions``, as for the admin API: an admin key reads every team's
usage, another key its own team's (``usage.all_teams``); provider health is for admin keys only
(``providers.health``; the admin API's ``/admin/providers`` answers 403 to other keys too)."""

from __future__ import annotations

from datetime import UTC, datetime
from time import time

from sophia.accounts import permissions
from sophia.gateway.service import GATEWAY
from sophia.mcp.ai.schemas import HealthIn, HealthOut, ModelHealth, UsageIn, UsageOut
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import ToolSet
from sophia.timeparse import parse_since

tools = ToolSet()


@tools.tool(title="Usage report", read_only=True, destructive=False, idempotent=True, open_world=False)
async def usage_report(ctx: ToolContext, args: UsageIn) -> UsageOut:
    """Requests, tokens and spend (USD) from the usage ledger over a period, grouped by model, team, task type, day… An admin key sees every team; other keys see their own team."""
    ledger = (await ctx.services.open()).ledger
    since = parse_since(args.since)
    until = parse_since(args.until, param="until") if args.until else time()
    groups = list(dict.fromkeys(args.group_by))
    team = permissions.team_scope(ctx.key, "usage.all_teams")
    query = groups if team is None or "team" in groups else [*groups, "team"]
    rows = await ledger.report(since, until, query)
    if team is not None:
        rows = [r for r in rows if r.get("team") == team]
        if "team" not in groups:
            rows = [{k: v for k, v in r.items() if k != "team"} for r in rows]
    return UsageOut(
        scope="all teams" if team is None else f"team {team}",
        since=datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds"),
        until=datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds"),
        group_by=groups,
        rows=rows,
        total_cost_usd=round(sum(r["cost_usd"] for r in rows), 10),
        total_requests=sum(r["requests"] for r in rows),
    )


@tools.tool(title="Provider health", read_only=True, destructive=False, idempotent=True, open_world=False)
async def provider_health(ctx: ToolContext, args: HealthIn) -> HealthOut:
    """Admin keys only: enabled providers and, per model called so far, its circuit breaker state, error rate, latency and last error (other keys: list_models shows their models' health)."""
    permissions.require(ctx.key, "providers.health")
    gw = await ctx.service(GATEWAY)
    health = gw.health()
    models = [ModelHealth(id=model_id, **state) for model_id, state in health["models"].items()]
    return HealthOut(providers=health["providers"], models=models)
