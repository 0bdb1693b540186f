"""The response cache's section (``cache:`` in sophia.yaml, ``SOPHIA_CACHE__…`` in the environment)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

Strategy = Literal["semantic", "exact", "off"]


class ModelCacheSettings(BaseModel):
    """Overrides for the models (or aliases) whose name matches a pattern."""

    model_config = ConfigDict(extra="forbid")

    strategy: Strategy | None = None
    ttl: float | None = Field(None, gt=0, description="Seconds an entry lives; None: the default TTL.")
    threshold: float | None = Field(None, ge=0, le=1, description="Verifier threshold for this model.")
    max_error_rate: float | None = Field(
        None,
        gt=0,
        le=0.5,
        description="Wrong-answer budget: serve a semantic hit only when the learned chance that it is "
        "wrong stays at or under this (at cache.budget_confidence); None: the verifier threshold alone.",
    )
    check_rate: float | None = Field(
        None,
        ge=0,
        le=0.05,
        description="Share of would-be hits checked (the model answers instead and the answers are "
        "compared); None: cache.check_rate when a budget is set, else no checks.",
    )


_NO_OVERRIDES = ModelCacheSettings()


class CacheSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _resolved: dict[str, ModelCacheSettings] = PrivateAttr(default_factory=dict)

    enabled: bool = True
    strategy: Strategy = Field("semantic", description="Default strategy: semantic, exact or off.")
    models: dict[str, ModelCacheSettings] = Field(
        default_factory=dict,
        description="Per model or alias (fnmatch patterns allowed, e.g. 'openai/*'); the first match wins, "
        "an exact name before any pattern.",
    )
    ttl: float | None = Field(7 * 24 * 3600.0, gt=0, description="Default entry lifetime in seconds.")
    max_temperature: float = Field(
        0.7, ge=0, le=2, description="No semantic reuse above this sampling temperature (exact only)."
    )
    share_across_tenants: bool = Field(False, description="Let one team's entries answer another team.")
    threshold: float | None = Field(
        None, ge=0, le=1, description="Verifier score a neighbour needs; None: the trained default."
    )
    candidates: int = Field(4, ge=1, le=32, description="Nearest neighbours the verifier judges per lookup.")
    min_cosine: float = Field(0.6, ge=-1, le=1, description="Neighbours below this cosine are not judged.")
    max_entries: int = Field(200_000, ge=1, description="Entries kept per instance; the oldest go first.")
    store: Literal["local", "redis"] = Field(
        "local",
        description="local: the database (SQLite or PostgreSQL) + an in-process index; redis: shared.",
    )
    redis_prefix: str = Field("sophia:cache:", description="Key prefix of the Redis store.")
    max_body_bytes: int = Field(1_048_576, ge=1, description="Responses larger than this are not cached.")
    memory_bytes: int = Field(
        8 * 1_048_576, ge=0, description="Answers kept in memory for hits (least recently used go first)."
    )
    confirm_interval: float = Field(
        1.0,
        ge=0,
        description="Seconds a hit is served from memory before the store confirms its entry again: a purge "
        "or bump made by another process takes effect within it (0: confirm every hit).",
    )
    semantic_sample: int = Field(
        16,
        ge=1,
        description="Where semantic lookups do not pay (few hits, fast models), one request in this many is "
        "embedded, to keep measuring (1: embed every request).",
    )

    check_rate: float = Field(
        0.02,
        ge=0,
        le=0.05,
        description="Share of would-be hits checked on aliases with a wrong-answer budget (at most 5%).",
    )
    budget_mode: Literal["per_hit", "average"] = Field(
        "per_hit",
        description="per_hit: serve a hit only when its own risk is within the budget; average: serve the "
        "least risky candidates while their mean risk stays within it (more hits, the same budget on average).",
    )
    budget_confidence: float = Field(
        0.95, ge=0.5, le=0.999, description="Confidence of the upper bound a hit's risk is held to."
    )
    shadow_checks: bool = Field(
        True,
        description="On a miss whose best candidate was rejected, compare the model's answer with that "
        "candidate's (no extra model call): labels below the serving boundary, where learning lowers it.",
    )
    answer_similarity: float = Field(
        0.9, ge=0.5, le=1, description="Answers at least this similar (MiniLM cosine) count as the same."
    )
    budget_cold: Literal["withhold", "threshold"] = Field(
        "withhold",
        description="What an alias with a budget serves before it has learned (cache.warm_after): "
        "withhold: semantic hits only on the same words (case, spacing), so the budget holds from the first "
        "request, and each withheld candidate is labelled by a free comparison; threshold: the verifier "
        "threshold, as without a budget (more hits while it learns, their error not bounded).",
    )
    warm_after: int = Field(
        10, ge=10, description="Labelled rows an alias needs before its learned model replaces the cold rule."
    )
    observations_kept: int = Field(20_000, ge=100, description="Labelled rows kept per alias (newest).")
    sync_interval: float = Field(
        2.0, gt=0, description="Seconds between reads of other instances' labelled rows from the store."
    )

    def for_model(self, model: str) -> ModelCacheSettings:
        """The overrides that apply to ``model`` (an empty set when none match); remembered per name,
        since this is asked on every request (settings do not change while a process runs)."""
        known = self._resolved.get(model)
        if known is not None:
            return known
        found = self.models.get(model)
        if found is None:
            found = next((o for p, o in self.models.items() if fnmatchcase(model, p)), _NO_OVERRIDES)
        if len(self._resolved) < 4096:
            self._resolved[model] = found
        return found

    def strategy_for(self, model: str) -> Strategy:
        if not self.enabled:
            return "off"
        return self.for_model(model).strategy or self.strategy

    def ttl_for(self, model: str) -> float | None:
        return self.for_model(model).ttl or self.ttl
