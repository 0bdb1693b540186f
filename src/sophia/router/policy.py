"""Decision rules of the learned router, and the ``Decision`` it hands back to the gateway.

The core rule is the Lagrangian one: pick the model that maximises
``predicted quality - price_weight * predicted cost``. With ``price_weight`` 0 that is the model
most likely to answer well; as it grows, cheaper models win wherever they are nearly as good.
Sweeping it traces the router's cost-quality curve, and for an average-quality constraint it
is the cheapest rule there is (a knapsack relaxation).

A ``quality_target`` (e.g. 0.97: "97% of the strongest model's accuracy, as cheaply as
possible") is turned into a price weight by a ``Calibration`` table that training measured by
cross-validation, task by task: the largest weight whose held-out accuracy still reached the
target. A target no weight reached routes to the task's strongest model.

``max_price`` drops the models predicted to cost more than it (if that drops all of them, the
cheapest one is kept, and the decision says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Scored:
    """One candidate as the router saw it."""

    model: str  # the gateway's model id
    trained: str  # the training-data model it stands for
    quality: float  # predicted probability of a good answer
    cost: float  # predicted USD cost of this request


@dataclass(frozen=True, slots=True)
class Decision:
    """The chosen model, what the router predicted for every candidate, and why."""

    model: str
    task: str
    rule: str  # "target", "price_weight", "strongest", "only_candidate"
    candidates: tuple[Scored, ...]
    price_weight: float | None = None
    quality_target: float | None = None
    max_price: float | None = None
    note: str = ""

    @property
    def chosen(self) -> Scored:
        return next(c for c in self.candidates if c.model == self.model)

    @property
    def header(self) -> str:
        """One ASCII line for the ``x-sophia-route`` response header."""
        c = self.chosen
        parts = [f"learned {self.rule}", f"task={self.task}"]
        if self.quality_target is not None:
            parts.append(f"target={self.quality_target:g}")
        if self.price_weight is not None:
            parts.append(f"lambda={self.price_weight:.4g}")
        if self.max_price is not None:
            parts.append(f"max_price={self.max_price:.4g}")
        parts.append(f"chose {c.model} p={c.quality:.2f} ${c.cost:.2g}")
        best = max(self.candidates, key=lambda s: (s.quality, -s.cost))
        if best.model != c.model:
            parts.append(f"best {best.model} p={best.quality:.2f} ${best.cost:.2g}")
        if self.note:
            parts.append(self.note)
        text = "; ".join(parts)
        return text.encode("ascii", "replace").decode("ascii").replace("\r", " ").replace("\n", " ")

    def to_json(self) -> dict[str, Any]:
        """For the ledger's ``metadata``: the rule, the settings and every candidate's prediction."""
        return {
            "model": self.model,
            "task": self.task,
            "rule": self.rule,
            "price_weight": self.price_weight,
            "quality_target": self.quality_target,
            "max_price": self.max_price,
            "note": self.note,
            "candidates": [
                {"model": s.model, "trained": s.trained, "quality": round(s.quality, 4), "cost": s.cost}
                for s in self.candidates
            ],
        }


def choose(quality: np.ndarray, cost: np.ndarray, price_weight: np.ndarray | float) -> np.ndarray:
    """Row-wise argmax of ``quality - price_weight * cost`` (ties go to the cheaper model).

    ``price_weight`` is a scalar or one value per row; ``inf`` picks the cheapest model.
    """
    weight = np.broadcast_to(np.asarray(price_weight, dtype=np.float64), (len(quality),))
    finite = np.isfinite(weight)
    score = np.where(finite[:, None], quality - np.where(finite, weight, 0.0)[:, None] * cost, -cost)
    best = score.max(axis=1, keepdims=True)
    ties = score >= best - 1e-12
    return np.argmin(np.where(ties, cost, np.inf), axis=1)


@dataclass(frozen=True)
class Calibration:
    """Price weight per quality target, per task (last row: all tasks pooled); NaN = "use the strongest"."""

    targets: np.ndarray  # (targets,) ascending
    weights: np.ndarray  # (tasks + 1, targets)

    def price_weight(self, task: int | None, target: float) -> float:
        """The calibrated weight for ``target`` (the next grid target up, so never less strict)."""
        row = self.weights[-1 if task is None else task]
        i = int(np.searchsorted(self.targets, target - 1e-9))
        if i >= len(self.targets):
            return math.nan
        return float(row[i])


def calibrate(ratios: np.ndarray, price_weights: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target, the largest weight before the held-out quality ratio first falls below it.

    ``ratios`` is (groups, weights): accuracy relative to the strongest model at each weight of
    ``price_weights`` (ascending). Returns (groups, targets), NaN where even weight 0 misses.
    """
    out = np.full((ratios.shape[0], len(targets)), math.nan)
    running = np.minimum.accumulate(ratios, axis=1)  # the ratio must hold at every smaller weight too
    for g in range(ratios.shape[0]):
        for i, target in enumerate(targets):
            ok = np.flatnonzero(running[g] >= target - 1e-12)
            if len(ok):
                out[g, i] = price_weights[ok[-1]]
    return out
