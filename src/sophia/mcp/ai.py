"""The AI Intelligence MCP server (port 8091): Sophia's models, spend and health as tools.

Every tool goes through the gateway's Python API, so routing, fallbacks, budgets, limits and
cost apply to agents as to any other caller. Argument and result models live in ``ai_models``;
the semantic cache (``cache_stats``, ``cache_purge``) and the learned router (``route_explain``)
add their tools here with one decorated function each.
"""

from __future__ import annotations

from datetime import UTC, datetime
from time import time
from typing import Any

import orjson

from sophia.errors import ModelNotFound
from sophia.mcp.ai_models import (
    AliasRow,
    EmbedIn,
    EmbedOut,
    GenerateIn,
    GenerateOut,
    HealthIn,
    HealthOut,
    ListModelsIn,
    ModelHealth,
    ModelRow,
    ModelsOut,
    UsageIn,
    UsageOut,
)
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import ToolGroup

group = ToolGroup(
    "ai",
    port=8091,
    title="Sophia AI Intelligence",
    instructions=(
        "Sophia's AI gateway: call models through routing, fallbacks, budgets and the cache "
        "(generate, embed), and inspect models, prices, spend and provider health."
    ),
)

#: generate's `priority` -> aliases tried in order (the first one this configuration can serve)
PRIORITY_ALIASES: dict[str, tuple[str, ...]] = {
    "quality": ("sophia/smart",),
    "balanced": ("sophia/auto", "sophia/fast", "sophia/smart"),
    "cost": ("sophia/fast",),
}
#: embeddings model used when the call names none (the first that is enabled)
DEFAULT_EMBEDDERS = ("local/all-minilm-l6-v2", "openai/text-embedding-3-small")


def _router_alias(gw: Any) -> str | None:
    """The name that asks the gateway's router to choose (``sophia/auto``), if this gateway has one."""
    config = getattr(getattr(gw, "auto", None), "config", None)
    return getattr(config, "alias", None)


def _pick_model(gw: Any, args: GenerateIn) -> tuple[str, str]:
    """(model or alias to ask the gateway for, why)."""
    if args.model:
        return args.model, f"model {args.model} was asked for"
    router = _router_alias(gw)
    if args.quality_target is not None:
        if router is None:
            raise ModelNotFound("quality_target needs the router (sophia/auto), which this gateway lacks")
        return router, f"quality_target={args.quality_target:g} asked the router"
    for name in PRIORITY_ALIASES[args.priority]:
        if name == router:
            return name, f"priority={args.priority} asked the router"
        try:
            gw.catalog.resolve(name)
        except ModelNotFound:
            continue
        return name, f"priority={args.priority} chose {name}"
    wanted = ", ".join(PRIORITY_ALIASES[args.priority])
    raise ModelNotFound(
        f"no alias for priority={args.priority} ({wanted}) has an enabled model", param="model"
    )


@group.tool(title="Generate text", read_only=False, destructive=False, idempotent=False, open_world=True)
async def generate(ctx: ToolContext, args: GenerateIn) -> GenerateOut:
    """Ask a model through Sophia's gateway (routing, fallbacks, budgets, cache). Give `prompt` or `messages`; pick a `model`, or let `priority` (quality, balanced, cost) or a `quality_target` choose. Returns the answer with the model used, its cost, cache status and why that model."""
    gw = await ctx.gateway()
    requested, why = _pick_model(gw, args)
    ctx.requested_model, ctx.task_type = requested, args.task_type
    messages = [m.model_dump() for m in args.messages] if args.messages else []
    if args.prompt is not None:
        if args.system:
            messages.append({"role": "system", "content": args.system})
        messages.append({"role": "user", "content": args.prompt})
    body: dict[str, Any] = {"model": requested, "messages": messages}
    for name in ("max_tokens", "temperature"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    body["metadata"] = {
        "mcp_tool": "ai/generate",
        **({"task_type": args.task_type} if args.task_type else {}),
    }
    await ctx.progress(f"asking {requested}")
    result = await gw.chat(body, ctx.key, request_id=ctx.request_id)
    ctx.charge(result)
    data = orjson.loads(result.body)
    choice = (data.get("choices") or [{}])[0]
    alias = gw.catalog.aliases.get(requested)
    chain = f"; chain {' > '.join(alias.chain)}" if alias is not None else ""
    explanation = f"{why}{chain}; tried {result.route}"
    return GenerateOut(
        answer=(choice.get("message") or {}).get("content") or "",
        model=result.model.id,
        requested=requested,
        cost_usd=round(result.cost, 10),
        cache=result.cache,
        route=explanation,
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        finish_reason=choice.get("finish_reason"),
        request_id=result.request_id,
    )


@group.tool(title="Embed text", read_only=False, destructive=False, idempotent=False, open_world=True)
async def embed(ctx: ToolContext, args: EmbedIn) -> EmbedOut:
    """Turn text into embedding vectors through the gateway (budgets and cost apply). `model` defaults to the local MiniLM model when it is enabled."""
    gw = await ctx.gateway()
    model = args.model or next((m for m in DEFAULT_EMBEDDERS if gw.catalog.model(m) is not None), None)
    if model is None:
        raise ModelNotFound("no default embeddings model is enabled: pass `model` (see list_models)")
    ctx.requested_model = model
    body = {"model": model, "input": args.input, "metadata": {"mcp_tool": "ai/embed"}}
    result = await gw.embed(body, ctx.key, request_id=ctx.request_id)
    ctx.charge(result)
    vectors = [item["embedding"] for item in orjson.loads(result.body)["data"]]
    return EmbedOut(
        model=result.model.id,
        dimensions=len(vectors[0]) if vectors else 0,
        embeddings=vectors,
        cost_usd=round(result.cost, 10),
        prompt_tokens=result.usage.prompt_tokens,
    )


def _health(snapshot: dict[str, dict[str, Any]], model_id: str) -> dict[str, Any]:
    state = snapshot.get(model_id)
    if state is None:
        return {"health": "unused"}
    return {"health": state["state"], "error_rate": state["error_rate"], "latency_ms": state["latency_ms"]}


@group.tool(title="List models", read_only=True, destructive=False, idempotent=True, open_world=False)
async def list_models(ctx: ToolContext, args: ListModelsIn) -> ModelsOut:
    """The models this key may use, with prices (USD per million tokens), context windows and health, and the aliases (fallback chains) that route to them."""
    gw = await ctx.gateway()
    snapshot = gw.breakers.snapshot()
    models, aliases = [], []
    for model_id, owner, info, alias in gw.catalog.listing():
        if ctx.key is not None and not ctx.key.allows_model(model_id):
            continue
        if args.provider and info is not None and owner != args.provider:
            continue
        if info is not None and (args.capability is None or args.capability in info.capabilities):
            models.append(
                ModelRow(
                    id=model_id,
                    provider=owner,
                    input_usd_per_mtok=info.input_price,
                    output_usd_per_mtok=info.output_price,
                    context_window=info.context_window,
                    capabilities=sorted(info.capabilities),
                    **_health(snapshot, model_id),
                )
            )
        elif alias is not None and args.capability in (None, "chat"):
            aliases.append(AliasRow(id=model_id, chain=list(alias.chain), description=alias.description))
    return ModelsOut(models=models, aliases=aliases)


@group.tool(title="Usage report", read_only=True, destructive=False, idempotent=True, open_world=False)
async def usage_report(ctx: ToolContext, args: UsageIn) -> UsageOut:
    """Requests, tokens and spend (USD) from the usage ledger over a period, grouped by model, team, task type, day… An admin key sees every team; other keys see their own team."""
    from sophia.timeparse import parse_since

    gw = await ctx.gateway()
    assert gw.ledger is not None
    since = parse_since(args.since)
    until = parse_since(args.until) if args.until else time()
    groups = list(dict.fromkeys(args.group_by))
    team = None if ctx.key is None or ctx.key.admin else ctx.key.team
    query = groups if team is None or "team" in groups else [*groups, "team"]
    rows = await gw.ledger.report(since, until, query)
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


@group.tool(title="Provider health", read_only=True, destructive=False, idempotent=True, open_world=False)
async def provider_health(ctx: ToolContext, args: HealthIn) -> HealthOut:
    """Enabled providers and, per model called so far, its circuit breaker state, error rate, latency and last error."""
    gw = await ctx.gateway()
    health = gw.health()
    models = [ModelHealth(id=model_id, **state) for model_id, state in health["models"].items()]
    return HealthOut(providers=health["providers"], models=models)


# -- resources ----------------------------------------------------------------------------------------


@group.resource(
    "sophia://ai/prices",
    name="prices",
    title="Price table",
    description="Every enabled model's price (USD per million input/output tokens) and context window.",
)
async def prices(ctx: ToolContext) -> str:
    gw = await ctx.gateway()
    rows = [
        {
            "id": info.id,
            "provider": info.provider,
            "input_usd_per_mtok": info.input_price,
            "output_usd_per_mtok": info.output_price,
            "context_window": info.context_window,
        }
        for _, _, info, _ in gw.catalog.listing()
        if info is not None
    ]
    return orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode()


@group.resource(
    "sophia://ai/routing-policy",
    name="routing-policy",
    title="Routing policy",
    description="The aliases and their fallback chains as configured and as enabled now, and generate's priorities.",
)
async def routing_policy(ctx: ToolContext) -> str:
    gw = await ctx.gateway()
    aliases = {}
    for name, alias in gw.catalog.aliases.items():
        try:
            enabled = [m.id for m in gw.catalog.resolve(name).chain]
        except ModelNotFound:
            enabled = []
        aliases[name] = {"chain": alias.chain, "enabled_chain": enabled, "description": alias.description}
    policy = {"aliases": aliases, "generate_priorities": {k: list(v) for k, v in PRIORITY_ALIASES.items()}}
    return orjson.dumps(policy, option=orjson.OPT_INDENT_2).decode()


# Tools defined in sibling modules register on this group when imported.
from sophia.mcp import ai_cache, ai_route  # noqa: E402, F401
