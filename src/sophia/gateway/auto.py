"""``sophia/auto``: pick, per request, the cheapest model that is good enough.

1. The static ranking (``router.policy``, cheapest by default) keeps the enabled chat models that
   can serve this request (context, tools, vision, JSON mode) and orders them, healthy ones first
   (an open breaker excludes, a half-open one or a high error rate demotes).
2. The learned router (``router.path``, default: the bundled one trained on RouterBench) scores
   the mapped candidates for the question itself and picks one for the quality target.
3. The chain is the pick, then the static order: fallbacks stay in force.

The router and MiniLM load on the first ``sophia/auto`` request, never at start-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sophia.accounts.keys import KeyRecord
from sophia.embedder import run_model
from sophia.errors import InvalidRequest, ModelNotFound
from sophia.gateway.breaker import BreakerBoard
from sophia.providers.base import CHAT
from sophia.providers.catalog import Catalog, Route
from sophia.settings import Settings

BUNDLED = Path(__file__).resolve().parents[1] / "router" / "data" / "routerbench.bin"
#: characters per token, to estimate a prompt's size before any tokenizer has seen it
CHARS_PER_TOKEN = 4


@dataclass(slots=True)
class Embedded:
    """A request's user text and its MiniLM vector, computed once for the cache and the router."""

    text: str
    vector: Any = None


def _option(name: str, *sources: Mapping[str, Any] | None) -> float | None:
    for source in sources:
        value = (source or {}).get(name)
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidRequest(
                f"metadata.{name} must be a number, not {value!r}", param=f"metadata.{name}"
            ) from None
        if not 0 <= number < math.inf:  # NaN and infinities too
            raise InvalidRequest(
                f"metadata.{name} must be a finite, non-negative number, not {value!r}",
                param=f"metadata.{name}",
            )
        return number
    return None


class AutoRouter:
    def __init__(self, settings: Settings, catalog: Catalog, breakers: BreakerBoard) -> None:
        self.config = settings.router
        self.catalog = catalog
        self.breakers = breakers

    @cached_property
    def learned(self) -> Any:
        """The learned router restricted to the enabled, mapped models; None when there is none."""
        from sophia.router import load_router

        if not self.config.learned:
            return None
        mapping = {gid: name for gid, name in self.config.model_map.items() if gid in self.catalog.models}
        if not mapping:
            return None
        return load_router(self.config.path or BUNDLED, mapping)

    async def route(
        self,
        body: dict[str, Any],
        key: KeyRecord | None,
        metadata: dict[str, str] | None,
        shared: Embedded | None = None,
    ) -> tuple[Route, str]:
        """The chain to try for this request, and the one-line explanation for ``x-sophia-route``.

        ``shared`` is the cache's text for this request: when the router's question is the same
        text (the usual single-turn chat), the vector is computed once, by whichever needs it first.
        """
        from sophia.router import Needs, StaticPolicy, rank

        prompt_tokens = sum(len(str(m.get("content") or "")) for m in body["messages"]) // CHARS_PER_TOKEN
        candidates = [m for m in self.catalog.models.values() if CHAT in m.capabilities]
        if key is not None and key.allowed_models is not None:
            candidates = [m for m in candidates if key.allows_model(m.id)]
        ranking = rank(
            StaticPolicy(self.config.policy),
            candidates,
            self.breakers.snapshot(),
            Needs.of_request(body, prompt_tokens),
            prompt_tokens=prompt_tokens,
        )
        if not ranking.chain:
            raise ModelNotFound(f"no enabled model can serve this request ({ranking.reason})", param="model")
        limit = self.config.max_chain
        learned = self.learned
        mapped = [m for m in ranking.chain if m.id in self.config.model_map] if learned is not None else []
        if not mapped:
            return Route(
                self.config.alias, ranking.chain[:limit]
            ), f"static {self.config.policy} {ranking.reason}"
        key_meta = key.metadata if key is not None else None
        team = self.config.teams.get(key.team) if key is not None else None
        question = learned.question(body["messages"])
        if shared is not None and shared.text == " ".join(question.text.split()):
            if shared.vector is None:
                shared.vector, _ = await run_model(_embed, question.text)
            embedding = shared.vector
        else:
            embedding, _ = await run_model(_embed, question.text)
        decision = learned.decide(
            question,
            embedding,
            mapped,
            quality_target=_option("quality_target", metadata, key_meta, team) or self.config.quality_target,
            max_price=_option("max_price", metadata, key_meta, team),
            price_weight=self.config.price_weight,
            task_type=(metadata or {}).get("task_type"),
        )
        chosen = self.catalog.models[decision.model]
        chain = (chosen, *(m for m in ranking.chain if m.id != chosen.id))
        return Route(self.config.alias, chain[:limit]), decision.header


def ordered(route: Route, breakers: BreakerBoard, body: Mapping[str, Any]) -> Route:
    """An alias's chain in its policy's order, unhealthy models last (open breakers out)."""
    from sophia.router import Needs, StaticPolicy, rank

    alias = route.alias
    if alias is None or alias.policy == "priority":
        return route
    prompt_tokens = (
        sum(len(str(m.get("content") or "")) for m in body.get("messages") or ()) // CHARS_PER_TOKEN
    )
    ranking = rank(
        StaticPolicy(alias.policy, weights=alias.weights),
        route.chain,
        breakers.snapshot(),
        Needs.of_request(body, prompt_tokens),
        prompt_tokens=prompt_tokens,
    )
    if not ranking.chain:
        raise ModelNotFound(
            f"no model of alias {route.requested!r} can serve this request ({ranking.reason})"
        )
    return Route(route.requested, ranking.chain, alias)


def _embed(text: str) -> Any:
    from sophia.embedder import get_encoder

    return get_encoder().encode([text])[0]
