"""Training: from a routing CSV to a ``LearnedRouter`` (what ``sophia router train`` runs).

1. Learn the boilerplate of the prompts (task by task) and cut every prompt to its question.
2. Embed the questions (all-MiniLM-L6-v2) and compute the cheap features.
3. Cross-validate (folds grouped by question text, so a repeated question never sits on both
   sides) each shrinkage setting of ``SHRINKAGE`` and keep the one with the best held-out Brier
   score. Its held-out predictions give, per task and pooled, the accuracy relative to the
   strongest model at every price weight, hence the price weight that meets each quality target
   (``policy.calibrate``).
4. Fit the final model on every row with that setting.

Nothing here is specific to RouterBench: models and tasks come from the file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from sophia import __version__
from sophia.errors import ConfigError
from sophia.router.dataset import RoutingData
from sophia.router.embedding import ENCODER, Embed
from sophia.router.features import Boilerplate, cheap_features, last_user_turn
from sophia.router.learned import ModelConfig, fit_quality_model
from sophia.router.policy import Calibration, calibrate, choose
from sophia.router.router import LearnedRouter, Question

#: quality targets the calibration table covers (relative to the strongest model)
TARGETS = np.round(np.arange(0.5, 1.0001, 0.005), 3)


#: how hard predictions lean on a model's usual accuracy, strongest first; training keeps the one with
#: the best cross-validated Brier score (weak per-prompt signal, as in RouterBench, wants the first)
SHRINKAGE = (
    ModelConfig(),
    ModelConfig(neighbours=30, prior_weight=20.0, embedding_penalty=300.0),
    ModelConfig(neighbours=10, prior_weight=3.0, embedding_penalty=30.0),
)


@dataclass(frozen=True)
class TrainOptions:
    quality_target: float = 0.97
    folds: int = 5
    seed: int = 0
    #: None: pick from ``SHRINKAGE`` by cross-validation
    model: ModelConfig | None = None
    scope: str = "pooled"  # see LearnedRouter.scope


@dataclass
class Prepared:
    """A data set cut to questions and embedded: the inputs of fitting and of evaluation."""

    data: RoutingData
    questions: list[Question]
    embeddings: np.ndarray
    cheap: np.ndarray
    chars: np.ndarray

    def subset(self, rows: np.ndarray) -> Prepared:
        return Prepared(
            self.data.subset(rows),
            [self.questions[i] for i in rows],
            self.embeddings[rows],
            self.cheap[rows],
            self.chars[rows],
        )


def prepare(data: RoutingData, boilerplate: Boilerplate, embed: Embed) -> Prepared:
    questions = []
    for prompt in data.prompts:
        text, task = boilerplate.match(last_user_turn(prompt))
        questions.append(Question(text, task, len(prompt)))
    embeddings = np.asarray(embed([q.text for q in questions]), dtype=np.float32)
    cheap = np.stack([cheap_features(q.text) for q in questions])
    return Prepared(data, questions, embeddings, cheap, np.array([q.prompt_chars for q in questions], float))


def strongest(correct: np.ndarray, cost: np.ndarray) -> int:
    """The most accurate model (filled outcomes); ties go to the costlier one."""
    acc, price = correct.mean(axis=0), cost.mean(axis=0)
    return int(np.lexsort((-price, -np.round(acc, 12)))[0])


def price_grid(cost: np.ndarray) -> np.ndarray:
    """Price weights to sweep, from 0 (quality only) to inf (cheapest only), scaled to the data's costs."""
    typical = float(np.nanmean(cost)) or 1e-6
    return np.concatenate([[0.0], np.geomspace(1e-3 / typical, 1e4 / typical, 281), [math.inf]])


def fold_ids(questions: list[Question], folds: int, seed: int) -> np.ndarray:
    """Fold of each row; rows with the same question text share a fold."""
    groups: dict[str, int] = {}
    ids = np.array([groups.setdefault(q.text, len(groups)) for q in questions])
    perm = np.random.default_rng(seed).permutation(len(groups))
    return perm[ids] % folds


def fit_router(
    prep: Prepared, boilerplate: Boilerplate, rows: np.ndarray, config: ModelConfig
) -> LearnedRouter:
    """A router fitted on ``rows`` of ``prep`` (no calibration: every target routes to the strongest)."""
    data = prep.data.subset(rows)
    task_names = tuple(data.task_names)
    tasks = np.array([task_names.index(t) for t in data.tasks])
    model = fit_quality_model(
        prep.embeddings[rows],
        tasks,
        prep.cheap[rows],
        prep.chars[rows],
        data.correct,
        data.cost,
        data.models,
        task_names,
        config,
    )
    correct, cost = data.filled()
    per_task = tuple(
        data.models[strongest(correct[tasks == t], cost[tasks == t])] for t in range(len(task_names))
    )
    empty = Calibration(TARGETS, np.full((len(task_names) + 1, len(TARGETS)), math.nan))
    return LearnedRouter(boilerplate, model, empty, data.models[strongest(correct, cost)], per_task)


def out_of_fold(
    prep: Prepared,
    boilerplate: Boilerplate,
    options: TrainOptions,
    config: ModelConfig,
    progress: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out ``(task index, quality, cost)`` for every row, by grouped K-fold cross-validation."""
    n, m = prep.data.correct.shape
    folds = fold_ids(prep.questions, options.folds, options.seed)
    tasks, quality, cost = np.zeros(n, dtype=np.intp), np.zeros((n, m)), np.zeros((n, m))
    names = prep.data.task_names
    for k in range(options.folds):
        held = np.flatnonzero(folds == k)
        if len(held) == 0:
            continue
        if progress:
            progress(f"cross-validation fold {k + 1}/{options.folds}")
        router = fit_router(prep, boilerplate, np.flatnonzero(folds != k), config)
        t, q, c = router.predict([prep.questions[i] for i in held], prep.embeddings[held])
        # the fold's task indices -> the full data's (a fold may miss a small task)
        tasks[held] = [names.index(router.tasks[i]) for i in t]
        quality[held], cost[held] = q, c
    return tasks, quality, cost


def brier(quality: np.ndarray, correct: np.ndarray) -> float:
    """Mean squared error of the predicted probabilities over the observed cells."""
    seen = ~np.isnan(correct)
    return float(np.mean((quality[seen] - correct[seen]) ** 2))


def calibration_table(
    data: RoutingData, quality: np.ndarray, cost: np.ndarray
) -> tuple[Calibration, dict[str, list[float]]]:
    """Per task (and pooled), the price weight meeting each target on held-out predictions."""
    correct, true_cost = data.filled()
    grid = price_grid(true_cost)
    picks = np.stack([choose(quality, cost, w) for w in grid])  # (weights, rows)
    rows = np.arange(len(data))
    got = correct[rows[None, :], picks]  # (weights, rows)
    groups = [data.task_rows(t) for t in data.task_names] + [rows]
    ratios = []
    for g in groups:
        ref = strongest(correct[g], true_cost[g])
        ratios.append(got[:, g].mean(axis=1) / max(correct[g, ref].mean(), 1e-12))
    ratio = np.array(ratios)
    weights = calibrate(ratio, np.where(np.isfinite(grid), grid, 1e12), TARGETS)
    curve = {name: [round(float(r), 4) for r in ratio[i]] for i, name in enumerate([*data.task_names, "*"])}
    return Calibration(TARGETS, weights), curve


def train_router(
    data: RoutingData,
    embed: Embed,
    options: TrainOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> LearnedRouter:
    """Train on every row of ``data`` (several tasks at once is fine, and better: the task is a feature)."""
    options = options or TrainOptions()
    boilerplate = Boilerplate.fit([last_user_turn(p) for p in data.prompts], data.tasks)
    if progress:
        progress(f"embedding {len(data)} questions with {ENCODER}")
    return train_prepared(prepare(data, boilerplate, embed), boilerplate, options, progress)


def train_prepared(
    prep: Prepared,
    boilerplate: Boilerplate,
    options: TrainOptions,
    progress: Callable[[str], None] | None = None,
) -> LearnedRouter:
    """``train_router`` on data already cut to questions and embedded."""
    data = prep.data
    if len(data) < 2 * options.folds:
        raise ConfigError(f"{data.source}: {len(data)} rows; training needs at least {2 * options.folds}")
    if not 0 < options.quality_target <= 1:
        raise ConfigError("quality_target must be in (0, 1]")
    if options.scope not in ("pooled", "task"):
        raise ConfigError(f"scope must be 'pooled' or 'task', not {options.scope!r}")
    configs = [options.model] if options.model is not None else list(SHRINKAGE)
    best: tuple[float, ModelConfig, np.ndarray, np.ndarray] | None = None
    scores = []
    for i, config in enumerate(configs):
        if progress:
            progress(f"cross-validating setting {i + 1}/{len(configs)}: {config.describe()}")
        _, quality, cost = out_of_fold(prep, boilerplate, options, config)
        score = brier(quality, data.correct)
        scores.append({"config": config.to_json(), "brier": round(score, 6)})
        if best is None or score < best[0]:
            best = (score, config, quality, cost)
    assert best is not None
    _, config, quality, cost = best
    calibration, ratio_curve = calibration_table(data, quality, cost)
    if progress:
        progress(f"fitting the final model on every row ({config.describe()})")
    router = fit_router(prep, boilerplate, np.arange(len(data)), config)
    router.calibration = calibration
    router.quality_target = options.quality_target
    router.scope = options.scope
    correct, true_cost = data.filled()
    router.info = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sophia_version": __version__,
        "encoder": ENCODER,
        "source": data.source,
        "rows": len(data),
        "rows_per_task": {t: len(data.task_rows(t)) for t in data.task_names},
        "accuracy": dict(zip(data.models, np.round(correct.mean(axis=0), 4).tolist(), strict=True)),
        "mean_cost_usd": dict(zip(data.models, true_cost.mean(axis=0).tolist(), strict=True)),
        "folds": options.folds,
        "seed": options.seed,
        "cv_brier": scores,
        "cv_ratio_by_price_weight": ratio_curve,
    }
    return router
