"""Static routing policies: cheapest, fastest, priority list, weighted; per alias, no training.

Each policy is a pure function of the candidate models (``ModelInfo``), what the request needs
(``Needs``: context length, tools, vision, JSON mode) and a health snapshot (the gateway's
``BreakerBoard.snapshot()``: per model id its breaker ``state``, ``error_rate``, ``calls`` and
EWMA ``latency_ms``). It returns a ``Ranking``: the models to try, in order (the first is the
pick, the rest the fallback chain), and why each other candidate was left out or pushed back.

Health rules, the same for every policy:

* a model that lacks a needed capability or context is **excluded**;
* an **open** breaker excludes the model (it would fail fast anyway);
* a **half-open** breaker, or an error rate above ``max_error_rate`` over at least
  ``min_calls`` calls, **demotes** the model behind every healthy one (still a fallback).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sophia.providers.base import JSON_MODE, TOOLS, VISION, ModelInfo

CHEAPEST, FASTEST, PRIORITY, WEIGHTED = "cheapest", "fastest", "priority", "weighted"
POLICIES = (CHEAPEST, FASTEST, PRIORITY, WEIGHTED)
_OPEN, _HALF_OPEN = "open", "half_open"


@dataclass(frozen=True, slots=True)
class Needs:
    """What a request requires of a model."""

    context_tokens: int = 0  # prompt tokens + max output tokens
    capabilities: frozenset[str] = frozenset()

    @classmethod
    def of_request(cls, body: Mapping[str, Any], prompt_tokens: int) -> Needs:
        """Needs of an OpenAI chat-completions body: tools, images, JSON mode, context."""
        caps = set()
        if body.get("tools") or body.get("functions"):
            caps.add(TOOLS)
        response_format = body.get("response_format")
        if isinstance(response_format, Mapping) and response_format.get("type") in (
            "json_object",
            "json_schema",
        ):
            caps.add(JSON_MODE)
        for message in body.get("messages") or ():
            content = message.get("content") if isinstance(message, Mapping) else None
            if isinstance(content, list) and any(
                isinstance(p, Mapping) and p.get("type") == "image_url" for p in content
            ):
                caps.add(VISION)
        out = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        return cls(prompt_tokens + int(out), frozenset(caps))


@dataclass(frozen=True)
class StaticPolicy:
    """An alias's policy. ``weights`` (model id -> weight) is for ``weighted``; ``order`` for ``priority``
    (default: the candidates' order)."""

    kind: str = CHEAPEST
    weights: Mapping[str, float] = field(default_factory=dict)
    order: Sequence[str] = ()
    max_error_rate: float = 0.5
    min_calls: int = 5
    #: token counts the ``cheapest`` policy prices a request at when the caller does not know them
    expected_prompt_tokens: int = 1000
    expected_completion_tokens: int = 300

    def __post_init__(self) -> None:
        if self.kind not in POLICIES:
            raise ValueError(f"unknown policy {self.kind!r}; expected one of {', '.join(POLICIES)}")


@dataclass(frozen=True)
class Ranking:
    chain: tuple[ModelInfo, ...]
    excluded: Mapping[str, str]  # model id -> reason
    demoted: Mapping[str, str]  # model id -> reason

    @property
    def reason(self) -> str:
        """One ASCII line for ``x-sophia-route``."""
        parts = [f"-> {self.chain[0].id}" if self.chain else "no usable model"]
        parts += [f"{m} excluded ({why})" for m, why in self.excluded.items()]
        parts += [f"{m} demoted ({why})" for m, why in self.demoted.items()]
        return "; ".join(parts).encode("ascii", "replace").decode("ascii")


def _health_issue(
    model_id: str, health: Mapping[str, Mapping[str, Any]], policy: StaticPolicy
) -> tuple[str, str]:
    """("exclude" | "demote" | "", reason) from the model's breaker snapshot."""
    snap = health.get(model_id) or {}
    state = snap.get("state")
    if state == _OPEN:
        return "exclude", "breaker open"
    if state == _HALF_OPEN:
        return "demote", "breaker half-open"
    calls, rate = int(snap.get("calls") or 0), float(snap.get("error_rate") or 0.0)
    if calls >= policy.min_calls and rate > policy.max_error_rate:
        return "demote", f"error rate {rate:.0%}"
    return "", ""


def _capability_issue(model: ModelInfo, needs: Needs) -> str:
    missing = sorted(needs.capabilities - model.capabilities)
    if missing:
        return f"no {', '.join(missing)}"
    if needs.context_tokens > model.context_window:
        return f"context {model.context_window} < {needs.context_tokens}"
    return ""


def rank(
    policy: StaticPolicy,
    candidates: Sequence[ModelInfo],
    health: Mapping[str, Mapping[str, Any]] | None = None,
    needs: Needs | None = None,
    *,
    prompt_tokens: int | None = None,
    rng: random.Random | None = None,
) -> Ranking:
    """Order ``candidates`` by ``policy``, after the capability and health rules (module docstring)."""
    health, needs = health or {}, needs or Needs()
    excluded: dict[str, str] = {}
    demoted: dict[str, str] = {}
    usable: list[ModelInfo] = []
    for model in candidates:
        issue = _capability_issue(model, needs)
        verdict, why = ("exclude", issue) if issue else _health_issue(model.id, health, policy)
        if verdict == "exclude":
            excluded[model.id] = why
            continue
        if verdict == "demote":
            demoted[model.id] = why
        usable.append(model)
    ordered = _order(policy, usable, health, prompt_tokens, rng)
    chain = [m for m in ordered if m.id not in demoted] + [m for m in ordered if m.id in demoted]
    return Ranking(tuple(chain), excluded, demoted)


def _order(
    policy: StaticPolicy,
    models: list[ModelInfo],
    health: Mapping[str, Mapping[str, Any]],
    prompt_tokens: int | None,
    rng: random.Random | None,
) -> list[ModelInfo]:
    if policy.kind == CHEAPEST:
        tokens = policy.expected_prompt_tokens if prompt_tokens is None else prompt_tokens
        return sorted(models, key=lambda m: m.cost(tokens, policy.expected_completion_tokens))
    if policy.kind == FASTEST:
        # measured EWMA latency; never-measured models after measured ones, in the given order
        def latency(m: ModelInfo) -> tuple[bool, float]:
            value = (health.get(m.id) or {}).get("latency_ms")
            return (value is None, float(value) if value is not None else 0.0)

        return sorted(models, key=latency)
    if policy.kind == PRIORITY:
        position = {name: i for i, name in enumerate(policy.order)}
        return sorted(models, key=lambda m: position.get(m.id, len(position)))
    return _weighted_shuffle(models, policy.weights, rng or random.Random())


def _weighted_shuffle(
    models: list[ModelInfo], weights: Mapping[str, float], rng: random.Random
) -> list[ModelInfo]:
    """Draw without replacement, each draw proportional to weight (default 1; weight 0: last)."""
    pool = [(m, max(float(weights.get(m.id, 1.0)), 0.0)) for m in models]
    out: list[ModelInfo] = []
    while pool:
        total = sum(w for _, w in pool)
        if total <= 0:
            out.extend(m for m, _ in pool)
            break
        x = rng.random() * total
        for i, (m, w) in enumerate(pool):
            x -= w
            if x < 0 or i == len(pool) - 1:
                out.append(m)
                pool.pop(i)
                break
    return out
