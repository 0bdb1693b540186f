"""``route_explain``: what ``sophia/auto`` would pick for a prompt, and why, without calling a model."""

from __future__ import annotations

from pydantic import Field

from sophia.gateway.service import GATEWAY
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import Input, Output, ToolSet

tools = ToolSet()


class RouteExplainIn(Input):
    prompt: str = Field(min_length=1, max_length=100_000, description="The question to route.")
    task_type: str | None = Field(None, max_length=64, description="Task label, e.g. summarise.")
    quality_target: float | None = Field(None, gt=0, le=1, description="Share of the best model's quality.")
    max_price: float | None = Field(None, ge=0, description="Most USD this request may cost.")


class RouteExplainOut(Output):
    model: str = Field(description="The model sophia/auto would call first.")
    fallbacks: list[str] = Field(description="The models tried next, in order.")
    why: str = Field(description="The router's explanation (as in x-sophia-route).")


@tools.tool(title="Explain a route", read_only=True, destructive=False, idempotent=True, open_world=False)
async def route_explain(ctx: ToolContext, args: RouteExplainIn) -> RouteExplainOut:
    """Which model `sophia/auto` would pick for this prompt and why (predicted quality and cost of the pick and the strongest model), without calling any model."""
    gw = await ctx.service(GATEWAY)
    metadata = {
        name: str(value)
        for name, value in (
            ("task_type", args.task_type),
            ("quality_target", args.quality_target),
            ("max_price", args.max_price),
        )
        if value is not None
    }
    body = {"model": gw.auto.config.alias, "messages": [{"role": "user", "content": args.prompt}]}
    route, why = await gw.auto.route(body, ctx.key, metadata)
    chain = [m.id for m in route.chain]
    return RouteExplainOut(model=chain[0], fallbacks=chain[1:], why=why)
