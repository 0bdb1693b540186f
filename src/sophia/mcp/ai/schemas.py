"""Arguments and results of the AI Intelligence tools (their schemas are what agents read: keep them terse)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from sophia.accounts.ledger import GroupBy
from sophia.mcp.tools import Input, Output

Text = Annotated[str, Field(min_length=1, max_length=200_000)]


class Message(Input):
    role: Literal["system", "user", "assistant"]
    content: Text


class GenerateIn(Input):
    prompt: Text | None = Field(None, description="The request. Give this or `messages`.")
    messages: list[Message] | None = Field(None, min_length=1, max_length=200, description="A conversation.")
    system: str | None = Field(None, max_length=50_000, description="System prompt (with `prompt`).")
    model: str | None = Field(None, max_length=200, description="Model id or alias (list_models).")
    priority: Literal["quality", "balanced", "cost"] = Field(
        "balanced", description="Without `model`: prefer quality, balance, or low cost."
    )
    quality_target: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Without `model`: let the router keep this share of the best model's quality.",
    )
    task_type: str | None = Field(
        None, max_length=64, description="e.g. code, summarize, chat; for routing and reports."
    )
    max_tokens: int | None = Field(None, ge=1, le=65_536)
    temperature: float | None = Field(None, ge=0, le=2)

    @model_validator(mode="after")
    def _one_input(self) -> GenerateIn:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of `prompt` or `messages`")
        if self.system is not None and self.prompt is None:
            raise ValueError("`system` goes with `prompt`; put a system message in `messages` instead")
        return self


class GenerateOut(Output):
    answer: str
    model: str
    requested: str
    cost_usd: float
    cache: str
    route: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    request_id: str

    def render(self) -> str:
        return f"{self.answer}\n\n[model {self.model} | ${self.cost_usd:.6f} | cache {self.cache} | {self.route}]"


class EmbedIn(Input):
    input: Text | Annotated[list[Text], Field(min_length=1, max_length=256)] = Field(
        description="A text or a list of texts."
    )
    model: str | None = Field(None, max_length=200, description="Embeddings model id (list_models).")


class EmbedOut(Output):
    model: str
    dimensions: int
    embeddings: list[list[float]]
    cost_usd: float
    prompt_tokens: int


class ListModelsIn(Input):
    capability: Literal["chat", "embeddings"] | None = Field(None, description="Only models with it.")
    provider: str | None = Field(None, max_length=64, description="Only this provider's models.")


class ModelRow(Output):
    id: str
    provider: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    context_window: int
    capabilities: list[str]
    health: str
    error_rate: float | None = None
    latency_ms: float | None = None


class AliasRow(Output):
    id: str
    chain: list[str]
    description: str


class ModelsOut(Output):
    models: list[ModelRow]
    aliases: list[AliasRow]

    def render(self) -> str:
        lines = [
            f"{m.id}  in ${m.input_usd_per_mtok:g}/M  out ${m.output_usd_per_mtok:g}/M  "
            f"ctx {m.context_window}  {m.health}"
            for m in self.models
        ]
        lines += [f"{a.id} -> {' > '.join(a.chain)}" for a in self.aliases]
        return "\n".join(lines) or "No model is enabled for this key."


class UsageIn(Input):
    since: str = Field("7d", max_length=40, description="Start: 24h, 7d, today, month or an ISO date.")
    until: str | None = Field(None, max_length=40, description="End (default now), same forms.")
    group_by: list[GroupBy] = Field(["model"], min_length=1, max_length=4)


class UsageOut(Output):
    scope: str
    since: str
    until: str
    group_by: list[str]
    rows: list[dict[str, Any]]
    total_cost_usd: float
    total_requests: int


class HealthIn(Input):
    pass


class ModelHealth(Output):
    id: str
    state: str
    calls: int
    errors: int
    error_rate: float
    latency_ms: float | None = None
    consecutive_failures: int
    last_error: str | None = None


class HealthOut(Output):
    providers: list[str]
    models: list[ModelHealth]

    def render(self) -> str:
        lines = [f"providers: {', '.join(self.providers) or 'none'}"]
        lines += [
            f"{m.id}: {m.state}, {m.calls} calls, error rate {m.error_rate:.1%}, latency {m.latency_ms} ms"
            for m in self.models
        ]
        return "\n".join(lines)
