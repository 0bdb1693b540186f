"""``LearnedRouter``: a trained router, ready to decide per request (what the gateway holds).

The gateway's side of a request, in order::

    q = router.question(messages)                  # the question without few-shot boilerplate
    vec = embedder.encode([q.text])[0]             # all-MiniLM-L6-v2, shared with the cache
    d = router.decide(q, vec, candidates, quality_target=..., max_price=..., task_type=...)
    d.model, d.header, d.to_json()                 # the pick, x-sophia-route, ledger metadata

Candidates are gateway model ids (or ``ModelInfo``); ``model_map`` (from config) says which
training-data model each stands for. Candidates with no mapping are not scored; if none is
left, ``decide`` raises ``ModelNotFound`` so the caller can fall back to a static policy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sophia.errors import ModelNotFound
from sophia.providers.base import ModelInfo
from sophia.router.features import Boilerplate, cheap_features, content_text, last_user_turn
from sophia.router.learned import QualityModel
from sophia.router.policy import Calibration, Decision, Scored, choose


@dataclass(frozen=True, slots=True)
class Question:
    """What the router reads from a request: the question, its template's task, the prompt size."""

    text: str
    template_task: str | None
    prompt_chars: int


@dataclass
class LearnedRouter:
    boilerplate: Boilerplate
    model: QualityModel
    calibration: Calibration
    reference: str  # the strongest model on the training data (pooled)
    task_reference: tuple[str, ...]  # the strongest model of each task
    quality_target: float = 0.97
    #: "pooled": one price weight (one price of quality) for every request, calibrated so that the
    #: training mix of tasks keeps the target on average: the cheapest way to hold it on that mix.
    #: "task": each task its own weight and strongest model, so the target holds task by task
    #: (safer when the traffic mix differs from training; costs more).
    scope: str = "pooled"
    model_map: Mapping[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # training facts, for `sophia router eval` and humans

    @property
    def models(self) -> tuple[str, ...]:
        return self.model.models

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.model.tasks

    def with_model_map(self, model_map: Mapping[str, str]) -> LearnedRouter:
        """A copy that scores gateway ids: ``{"openai/gpt-4.1": "gpt-4-1106-preview", ...}``."""
        unknown = sorted(set(model_map.values()) - set(self.models))
        if unknown:
            raise ValueError(f"model_map names models the router was not trained on: {', '.join(unknown)}")
        return replace(self, model_map=dict(model_map))

    # -- reading a request -----------------------------------------------------------------------

    def question(self, prompt: str | Sequence[Mapping[str, Any]]) -> Question:
        """The question of a prompt string or chat ``messages`` list, with its boilerplate removed."""
        text, task = self.boilerplate.match(last_user_turn(prompt))
        if isinstance(prompt, str):
            chars = len(prompt)
        else:
            chars = sum(len(content_text(m.get("content"))) for m in prompt)
        return Question(text, task, chars)

    def task_index(self, question: Question, embedding: np.ndarray, task_type: str | None = None) -> int:
        """The request's task: ``task_type`` if known, else its template's, else the nearest centroid."""
        for name in (task_type, question.template_task):
            if name is not None and name in self.tasks:
                return self.tasks.index(name)
        return int(self.model.nearest_tasks(np.asarray(embedding).reshape(1, -1))[0])

    def predict(
        self,
        questions: Sequence[Question],
        embeddings: np.ndarray,
        task_types: Sequence[str | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batch prediction: ``(task index (n,), quality (n, models), cost (n, models))``."""
        emb = np.asarray(embeddings, dtype=np.float32).reshape(len(questions), -1)
        hints = task_types or [None] * len(questions)
        tasks = np.array([self.task_index(q, e, t) for q, e, t in zip(questions, emb, hints, strict=True)])
        cheap = np.stack([cheap_features(q.text) for q in questions])
        chars = np.array([q.prompt_chars for q in questions], dtype=np.float64)
        return tasks, self.model.quality(emb, tasks, cheap), self.model.cost(tasks, chars)

    # -- deciding --------------------------------------------------------------------------------

    def price_weight_for(self, task: int, target: float, scope: str | None = None) -> float:
        """Calibrated price weight for ``target`` on ``task``; NaN means "route to the strongest"."""
        pooled = (scope or self.scope) == "pooled"
        return self.calibration.price_weight(None if pooled else task, target)

    def strongest_for(self, task: int, scope: str | None = None) -> str:
        """The model a target no price weight meets falls back to."""
        return self.reference if (scope or self.scope) == "pooled" else self.task_reference[task]

    def decide(
        self,
        question: Question | str,
        embedding: np.ndarray,
        candidates: Sequence[str | ModelInfo] | None = None,
        *,
        quality_target: float | None = None,
        max_price: float | None = None,
        price_weight: float | None = None,
        task_type: str | None = None,
        costs: Mapping[str, float] | None = None,
    ) -> Decision:
        """Pick one of ``candidates`` (default: every trained model) for this question.

        ``price_weight`` (quality per USD) overrides ``quality_target``, which overrides the
        router's default target. ``costs`` overrides the predicted USD cost of some candidates
        (e.g. from the gateway's own prices).
        """
        q = question if isinstance(question, Question) else Question(question, None, len(question))
        ids, trained = self._candidates(candidates)
        tasks, quality, cost = self.predict([q], embedding, [task_type])
        task = int(tasks[0])
        cols = [self.models.index(t) for t in trained]
        qual, price = quality[0, cols], cost[0, cols].copy()
        for i, model_id in enumerate(ids):
            if costs is not None and model_id in costs:
                price[i] = float(costs[model_id])
        note = ""
        keep = np.ones(len(ids), dtype=bool)
        if max_price is not None:
            keep = price <= max_price
            if not keep.any():
                keep = price <= price.min()
                note = "max_price below every candidate: cheapest kept"
        target = None
        if price_weight is None:
            target = self.quality_target if quality_target is None else quality_target
            weight = self.price_weight_for(task, target)
        else:
            weight = float(price_weight)
        pool = np.flatnonzero(keep)
        if len(ids) == 1:
            rule, pick = "only_candidate", 0
        elif math.isnan(weight):
            rule, pick = "strongest", self._strongest(self.strongest_for(task), trained, pool, qual)
        else:
            rule = "target" if target is not None else "price_weight"
            pick = int(pool[choose(qual[pool][None, :], price[pool][None, :], weight)[0]])
        scored = tuple(
            Scored(i, t, float(a), float(b))
            for i, t, a, b in sorted(zip(ids, trained, qual, price, strict=True), key=lambda s: s[3])
        )
        return Decision(
            ids[pick],
            self.tasks[task],
            rule,
            scored,
            None if math.isnan(weight) else weight,
            target,
            max_price,
            note,
        )

    def _candidates(self, candidates: Sequence[str | ModelInfo] | None) -> tuple[list[str], list[str]]:
        if candidates is None:
            return list(self.models), list(self.models)
        ids, trained = [], []
        for c in candidates:
            model_id = c.id if isinstance(c, ModelInfo) else c
            name = self.model_map.get(model_id, model_id if model_id in self.models else None)
            if name is not None:
                ids.append(model_id)
                trained.append(name)
        if not ids:
            raise ModelNotFound(
                "the learned router knows none of the candidate models; map them to trained models "
                f"in the router's model_map (trained: {', '.join(self.models)})",
                param="model",
            )
        return ids, trained

    @staticmethod
    def _strongest(strongest: str, trained: list[str], pool: np.ndarray, quality: np.ndarray) -> int:
        """The strongest model if it is a candidate within the price, else the best predicted."""
        for i in pool:
            if trained[i] == strongest:
                return int(i)
        return int(pool[np.argmax(quality[pool])])
