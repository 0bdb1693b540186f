"""``generate`` and ``embed``: model calls through the gateway's typed Python API.

Routing, fallbacks, budgets, limits, the cache and cost apply to agents as to any other caller;
the cost is booked on the model call's own ledger row (same request id as the tool call's).
"""

from __future__ import annotations

from typing import Any

from sophia.errors import ModelNotFound
from sophia.gateway.service import GATEWAY
from sophia.mcp.ai.schemas import EmbedIn, EmbedOut, GenerateIn, GenerateOut
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import ToolSet

tools = ToolSet()

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


@tools.tool(title="Generate text", read_only=False, destructive=False, idempotent=False, open_world=True)
async def generate(ctx: ToolContext, args: GenerateIn) -> GenerateOut:
    """Ask a model through Sophia's gateway (routing, fallbacks, budgets, cache). Give `prompt` or `messages`; pick a `model`, or let `priority` (quality, balanced, cost) or a `quality_target` choose. Returns the answer with the model used, its cost, cache status and why that model."""
    gw = await ctx.service(GATEWAY)
    requested, why = _pick_model(gw, args)
    ctx.requested_model, ctx.task_type = requested, args.task_type
    messages: list[dict[str, Any]] = [m.model_dump() for m in args.messages] if args.messages else []
    if args.prompt is not None:
        if args.system:
            messages.append({"role": "system", "content": args.system})
        messages.append({"role": "user", "content": args.prompt})
    metadata = {"mcp_tool": "ai/generate", **({"task_type": args.task_type} if args.task_type else {})}
    await ctx.progress(f"asking {requested}")
    answer = await gw.complete(
        messages,
        key=ctx.key,
        model=requested,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        metadata=metadata,
        request_id=ctx.request_id,
        traceparent=ctx.traceparent,
    )
    ctx.charge(answer.cost_usd, answer.model, answer.cache)
    alias = gw.catalog.aliases.get(requested)
    chain = f"; chain {' > '.join(alias.chain)}" if alias is not None else ""
    return GenerateOut(
        answer=answer.text,
        model=answer.model,
        requested=requested,
        cost_usd=round(answer.cost_usd, 10),
        cache=answer.cache,
        route=f"{why}{chain}; tried {answer.route}",
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        finish_reason=answer.finish_reason,
        request_id=answer.request_id,
    )


@tools.tool(title="Embed text", read_only=False, destructive=False, idempotent=False, open_world=True)
async def embed(ctx: ToolContext, args: EmbedIn) -> EmbedOut:
    """Turn text into embedding vectors through the gateway (budgets and cost apply). `model` defaults to the local MiniLM model when it is enabled."""
    gw = await ctx.service(GATEWAY)
    model = args.model or next((m for m in DEFAULT_EMBEDDERS if gw.catalog.model(m) is not None), None)
    if model is None:
        raise ModelNotFound("no default embeddings model is enabled: pass `model` (see list_models)")
    ctx.requested_model = model
    result = await gw.embed_texts(
        args.input,
        key=ctx.key,
        model=model,
        metadata={"mcp_tool": "ai/embed"},
        request_id=ctx.request_id,
        traceparent=ctx.traceparent,
    )
    ctx.charge(result.cost_usd, result.model)
    return EmbedOut(
        model=result.model,
        dimensions=result.dimensions,
        embeddings=result.vectors,
        cost_usd=round(result.cost_usd, 10),
        prompt_tokens=result.prompt_tokens,
    )
