"""The router's section (``router:``): what ``sophia/auto`` optimises and which models it may pick."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from sophia.settings.gateway import Section


def _default_model_map() -> dict[str, str]:
    # Today's models paired with the 2023 RouterBench model of the same tier, for the bundled router.
    return {
        "openai/gpt-4.1": "gpt-4-1106-preview",
        "openrouter/openai/gpt-4.1": "gpt-4-1106-preview",
        "openai/gpt-4.1-mini": "gpt-3.5-turbo-1106",
        "openrouter/openai/gpt-4.1-mini": "gpt-3.5-turbo-1106",
        "anthropic/claude-sonnet-4-5": "claude-v2",
        "openrouter/anthropic/claude-sonnet-4.5": "claude-v2",
        "anthropic/claude-haiku-4-5": "claude-instant-v1",
        "openrouter/anthropic/claude-haiku-4.5": "claude-instant-v1",
        "together/meta-llama/Llama-3.3-70B-Instruct-Turbo": "meta/llama-2-70b-chat",
        "openrouter/meta-llama/llama-3.3-70b-instruct": "meta/llama-2-70b-chat",
        "together/mistralai/Mixtral-8x7B-Instruct-v0.1": "mistralai/mixtral-8x7b-chat",
        "together/Qwen/Qwen2.5-72B-Instruct-Turbo": "zero-one-ai/Yi-34B-Chat",
    }


class RouterSettings(Section):
    """``sophia/auto``: a static ranking (capabilities, health), then the learned router picks."""

    alias: str = Field("sophia/auto", description="The model name that asks for routing.")
    path: Path | None = Field(
        None, description="Trained router (sophia router train); default: the bundled one."
    )
    model_map: dict[str, str] = Field(
        default_factory=_default_model_map,
        description="Gateway model id -> the model it stands for in the router's training data.",
    )
    quality_target: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Share of the strongest model's quality to keep (default: the router's).",
    )
    price_weight: float | None = Field(None, ge=0, description="Quality per USD; overrides quality_target.")
    policy: Literal["cheapest", "fastest", "priority", "weighted"] = Field(
        "cheapest", description="Static order of the fallbacks, and of everything when no model is mapped."
    )
    max_chain: int = Field(3, ge=1, le=10, description="Models tried per request: the pick, then fallbacks.")
    teams: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Team -> defaults for quality_target / max_price (a key's metadata and the request override).",
    )
    learned: bool = Field(True, description="False: the static policy alone.")
