"""Evaluation: the learned router against its baselines, per task and pooled, on one data set.

Every router is scored on the same rows, by the real outcomes and costs of the models it picks:

* **sophia**: the price-weight sweep (its cost-quality curve, AIQ, hull savings), and the fixed
  operating points a quality target gives through the calibration table learnt on train;
* **always <strongest>** and **cheapest <model>**: one model for everything;
* **zero router**: the convex hull of the single models (a random mix, needs no prompt);
* **kNN-20**: mean outcome of the 20 nearest training questions (MiniLM, whole bank), with the
  same cost predictor and sweep as sophia, so only the quality predictor differs;
* **oracle**: knows every outcome; the sweep over true outcomes and costs.

Savings are ``1 - cost / cost of the strongest model`` at 95 / 97 / 100% of its accuracy.
An unobserved outcome counts as the model's mean over the observed rows (``RoutingData.filled``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sophia.errors import ConfigError
from sophia.router.curve import aiq, saving_at
from sophia.router.dataset import RoutingData
from sophia.router.embedding import Embed
from sophia.router.features import Boilerplate, last_user_turn
from sophia.router.policy import choose
from sophia.router.router import LearnedRouter
from sophia.router.train import Prepared, TrainOptions, fold_ids, prepare, price_grid, train_prepared

FRACTIONS = (0.95, 0.97, 1.0)
TARGETS = (0.95, 0.97, 1.0)
KNN_BASELINE = 20
SCOPES = ("task", "pooled")


@dataclass
class Predictions:
    """What the routers predicted for each evaluated row (columns in the data's model order)."""

    tasks: list[str]  # the task each row was routed as
    quality: np.ndarray
    cost: np.ndarray
    knn_quality: np.ndarray
    at_target: dict[tuple[str, float], np.ndarray] = field(default_factory=dict)  # (scope, target) -> column


@dataclass
class Entry:
    name: str
    points: np.ndarray  # (k, 2): average cost, accuracy
    curve: bool  # a sweep (AIQ, hull savings) rather than one operating point
    aiq: float | None = None
    savings: dict[float, float | None] = field(default_factory=dict)


@dataclass
class Section:
    task: str
    rows: int
    reference: str
    ref_accuracy: float
    ref_cost: float
    entries: list[Entry]


def predict(router: LearnedRouter, prep: Prepared, targets: tuple[float, ...] = TARGETS) -> Predictions:
    """Run ``router`` over prepared rows (tasks inferred as in serving: template, else centroid)."""
    data = prep.data
    if data.models != router.models:
        raise ConfigError(
            f"{data.source}: columns must rate the router's models in its order; use data.select_models()"
        )
    tasks, quality, cost = router.predict(prep.questions, prep.embeddings)
    model = router.model
    knn = _knn(model.bank.astype(np.float32), model.bank_outcomes, prep.embeddings)
    out = Predictions([router.tasks[t] for t in tasks], quality, cost, knn)
    for scope in SCOPES:
        strongest = np.array([data.models.index(router.strongest_for(int(t), scope)) for t in tasks])
        for target in targets:
            weights = np.array([router.price_weight_for(int(t), target, scope) for t in tasks])
            picks = choose(out.quality, out.cost, np.nan_to_num(weights, nan=0.0))
            out.at_target[(scope, target)] = np.where(np.isnan(weights), strongest, picks)
    return out


def _knn(bank: np.ndarray, outcomes: np.ndarray, embeddings: np.ndarray, k: int = KNN_BASELINE) -> np.ndarray:
    k = min(k, len(bank))
    out = np.empty((len(embeddings), outcomes.shape[1]))
    for start in range(0, len(embeddings), 512):
        sims = embeddings[start : start + 512] @ bank.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        out[start : start + 512] = outcomes[top].mean(axis=1)
    return out


def cross_validate(
    data: RoutingData,
    embed: Embed,
    options: TrainOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> Predictions:
    """Held-out predictions for every row: K routers, each trained (and calibrated) on the other folds."""
    options = options or TrainOptions()
    boilerplate = Boilerplate.fit([last_user_turn(p) for p in data.prompts], data.tasks)
    prep = prepare(data, boilerplate, embed)
    folds = fold_ids(prep.questions, options.folds, options.seed)
    n, m = data.correct.shape
    out = Predictions([""] * n, np.zeros((n, m)), np.zeros((n, m)), np.zeros((n, m)))
    for k in range(options.folds):
        held = np.flatnonzero(folds == k)
        if progress:
            progress(f"outer fold {k + 1}/{options.folds}")
        router = train_prepared(prep.subset(np.flatnonzero(folds != k)), boilerplate, options)
        part = predict(router, prep.subset(held))
        for i, row in enumerate(held):
            out.tasks[row] = part.tasks[i]
        out.quality[held], out.cost[held], out.knn_quality[held] = part.quality, part.cost, part.knn_quality
        for target, picks in part.at_target.items():
            out.at_target.setdefault(target, np.zeros(n, dtype=np.intp))[held] = picks
    return out


def _sweep(quality: np.ndarray, cost: np.ndarray, correct: np.ndarray, true_cost: np.ndarray) -> np.ndarray:
    rows = np.arange(len(quality))
    points = []
    for weight in price_grid(true_cost):
        pick = choose(quality, cost, weight)
        points.append((true_cost[rows, pick].mean(), correct[rows, pick].mean()))
    return np.array(points)


def _point(name: str, correct: np.ndarray, true_cost: np.ndarray, pick: np.ndarray) -> Entry:
    rows = np.arange(len(pick))
    return Entry(name, np.array([[true_cost[rows, pick].mean(), correct[rows, pick].mean()]]), curve=False)


def report(data: RoutingData, pred: Predictions, reference: str) -> list[Section]:
    """One section per task of ``data`` (its ``eval_name``) and, with several tasks, one pooled."""
    if reference not in data.models:
        raise ConfigError(f"reference model {reference!r} is not in {data.source}")
    correct, true_cost = data.filled()
    ref = data.models.index(reference)
    groups = [(t, data.task_rows(t)) for t in data.task_names]
    if len(groups) > 1:
        groups.append(("pooled", np.arange(len(data))))
    sections = []
    for task, rows in groups:
        y, c = correct[rows], true_cost[rows]
        n = len(rows)
        cheapest = int(np.argmin(c.mean(axis=0)))
        entries = [
            Entry(
                "sophia (price-weight sweep)", _sweep(pred.quality[rows], pred.cost[rows], y, c), curve=True
            ),
            *(
                _point(
                    f"sophia @ target {t:g} ({'per task' if scope == 'task' else scope})", y, c, picks[rows]
                )
                for (scope, t), picks in sorted(
                    pred.at_target.items(), key=lambda kv: (kv[0][0] != "task", kv[0][1])
                )
            ),
            Entry(
                "zero router (hull of models)", np.column_stack([c.mean(axis=0), y.mean(axis=0)]), curve=True
            ),
            Entry(
                f"kNN-{KNN_BASELINE} on question embeddings",
                _sweep(pred.knn_quality[rows], pred.cost[rows], y, c),
                curve=True,
            ),
            Entry("oracle", _sweep(y, c, y, c), curve=True),
            _point(f"always {reference}", y, c, np.full(n, ref)),
            _point(f"cheapest: {data.models[cheapest]}", y, c, np.full(n, cheapest)),
        ]
        ref_acc, ref_cost = float(y[:, ref].mean()), float(c[:, ref].mean())
        c_hi = max(float(e.points[:, 0].max()) for e in entries)
        for e in entries:
            if e.curve:
                e.aiq = aiq(e.points, c_hi)
                e.savings = {f: saving_at(e.points, ref_cost, ref_acc, f) for f in FRACTIONS}
            else:
                cost, acc = e.points[0]
                e.savings = {
                    f: (1 - cost / ref_cost if acc >= f * ref_acc - 1e-12 else None) for f in FRACTIONS
                }
        sections.append(Section(task, n, reference, ref_acc, ref_cost, entries))
    return sections


def format_report(sections: list[Section], task_accuracy: float | None = None) -> str:
    """The plain-text table ``sophia router eval`` prints."""
    lines = []
    head = f"{'router':<40} {'accuracy':>8} {'vs ref':>7} {'$/prompt':>10} {'saved':>7} " + " ".join(
        f"{'@' + format(100 * f, 'g') + '%':>7}" for f in FRACTIONS
    )
    for s in sections:
        lines.append(
            f"\n{s.task}: {s.rows} prompts; reference {s.reference}: accuracy {s.ref_accuracy:.3f}, "
            f"${s.ref_cost:.5f}/prompt"
        )
        lines.append(head + f" {'AIQ':>7}")
        for e in s.entries:
            if e.curve:
                fixed = f"{'':>8} {'':>7} {'':>10} {'':>7}"
            else:
                cost, acc = e.points[0]
                fixed = (
                    f"{acc:>8.3f} {acc / s.ref_accuracy:>7.1%} {cost:>10.5f} {1 - cost / s.ref_cost:>7.1%}"
                )
            saved = " ".join(f"{'-' if v is None else format(v, '.1%'):>7}" for v in e.savings.values())
            score = f"{e.aiq:>7.4f}" if e.aiq is not None else f"{'':>7}"
            lines.append(f"{e.name:<40} {fixed} {saved} {score}")
    if task_accuracy is not None and not math.isnan(task_accuracy):
        lines.append(
            f"\ntask recognised for {task_accuracy:.1%} of prompts (template, else nearest centroid)"
        )
    lines.append(
        "saved @x%: least cost (random mix of operating points allowed, as RouterBench) reaching x% of the "
        "reference's accuracy; '-': never reached. AIQ: area under the cost-quality hull / max cost."
    )
    return "\n".join(lines)


def task_accuracy(data: RoutingData, pred: Predictions) -> float:
    """Share of rows routed as their own ``eval_name`` (NaN when the names do not overlap)."""
    known = set(pred.tasks)
    rows = [i for i, t in enumerate(data.tasks) if t in known]
    if not rows:
        return math.nan
    return sum(pred.tasks[i] == data.tasks[i] for i in rows) / len(rows)
