"""``list_models`` and the resources ``prices`` and ``routing-policy``: what the gateway offers this key
and what it costs.

A resource names the tools whose information it carries (``prices``: list_models; ``routing-policy``:
generate and route_explain), so a key's ``allowed_tools`` filter covers it too; like list_models, both
show only the models and aliases the key may use."""

from __future__ import annotations

from typing import Any

import orjson

from sophia.errors import ModelNotFound
from sophia.gateway.service import GATEWAY
from sophia.mcp.ai.calls import PRIORITY_ALIASES
from sophia.mcp.ai.schemas import (
    AliasRow,
    ListModelsIn,
    ModelRow,
    ModelsOut,
)
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import ToolSet

tools = ToolSet()


def _health(snapshot: dict[str, dict[str, Any]], model_id: str) -> dict[str, Any]:
    state = snapshot.get(model_id)
    if state is None:
        return {"health": "unused"}
    return {"health": state["state"], "error_rate": state["error_rate"], "latency_ms": state["latency_ms"]}


@tools.tool(title="List models", read_only=True, destructive=False, idempotent=True, open_world=False)
async def list_models(ctx: ToolContext, args: ListModelsIn) -> ModelsOut:
    """The models this key may use, with prices (USD per million tokens), context windows and health, and the aliases (fallback chains) that route to them."""
    gw = await ctx.service(GATEWAY)
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


@tools.resource(
    "sophia://ai/prices",
    name="prices",
    title="Price table",
    description="The price (USD per million input/output tokens) and context window of every model this key may use.",
    tools=["list_models"],
)
async def prices(ctx: ToolContext) -> str:
    gw = await ctx.service(GATEWAY)
    key = ctx.key
    rows = [
        {
            "id": info.id,
            "provider": info.provider,
            "input_usd_per_mtok": info.input_price,
            "output_usd_per_mtok": info.output_price,
            "context_window": info.context_window,
        }
        for _, _, info, _ in gw.catalog.listing()
        if info is not None and (key is None or key.allows_model(info.id))
    ]
    return orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode()


@tools.resource(
    "sophia://ai/routing-policy",
    name="routing-policy",
    title="Routing policy",
    description="The aliases this key may use, their fallback chains as configured and as enabled now, and generate's priorities.",
    tools=["generate", "route_explain"],
)
async def routing_policy(ctx: ToolContext) -> str:
    gw = await ctx.service(GATEWAY)
    aliases = {}
    for name, alias in gw.catalog.aliases.items():
        if ctx.key is not None and not ctx.key.allows_model(name):
            continue
        try:
            enabled = [m.id for m in gw.catalog.resolve(name).chain]
        except ModelNotFound:
            enabled = []
        aliases[name] = {"chain": alias.chain, "enabled_chain": enabled, "description": alias.description}
    policy = {"aliases": aliases, "generate_priorities": {k: list(v) for k, v in PRIORITY_ALIASES.items()}}
    return orjson.dumps(policy, option=orjson.OPT_INDENT_2).decode()
