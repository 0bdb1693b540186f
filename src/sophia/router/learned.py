"""The learned part of the router: per prompt, each model's chance of a good answer and its cost.

Quality is the average of two small predictors over the question embedding (all-MiniLM-L6-v2),
the task and the cheap features; both are deliberately biased towards "this model's usual
accuracy on this task", because per-prompt signal in a sentence embedding is weak and a router
that believes noise loses to the zero router:

* **neighbours**: the outcomes of the ``neighbours`` most similar training questions *of the
  same task*, shrunk towards the task's mean with ``prior_weight`` pseudo-observations;
* **linear**: one logistic regression per model on [embedding, task one-hot, cheap features],
  standardised, with a heavy L2 penalty on the 384 embedding weights and a light one on the
  task and cheap features (``logistic.py``).

Cost is a per-model least-squares fit of the observed dollar cost on the task and the prompt's
length in thousands of characters (input tokens grow with the prompt; output length depends on
the kind of task), floored at half the cheapest cost seen.

The task of a new prompt is the request's ``task_type`` when the model knows it, else the one
whose few-shot template the prompt carries (``features.Boilerplate``), else the nearest task
centroid in embedding space.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from sophia.router.logistic import fit_logistic, sigmoid

#: standardised features are clipped to +-CLIP standard deviations at prediction time
CLIP = 4.0


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of the quality predictor (defaults chosen by cross-validation on RouterBench train)."""

    neighbours: int = 100
    prior_weight: float = 100.0
    embedding_penalty: float = 3000.0
    feature_penalty: float = 10.0
    neighbour_share: float = 0.5
    max_bank_rows: int = 20_000  # neighbour search cost grows with the bank: keep a decision in ~1 ms
    seed: int = 0

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"{self.neighbours} neighbours + {self.prior_weight:g} prior, "
            f"embedding penalty {self.embedding_penalty:g}"
        )


@dataclass
class QualityModel:
    """Fitted predictor; every array is plain numpy, so it saves without pickle (``artifact.py``)."""

    models: tuple[str, ...]
    tasks: tuple[str, ...]
    config: ModelConfig
    centroids: np.ndarray  # (tasks, dim) unit rows
    task_prior: np.ndarray  # (tasks, models) mean outcome per task
    bank: np.ndarray  # (rows, dim) training question embeddings, grouped by task
    bank_outcomes: np.ndarray  # (rows, models), missing filled with the task prior
    task_offsets: np.ndarray  # (tasks + 1,) bank rows of task t: offsets[t]:offsets[t+1]
    feature_mean: np.ndarray  # (features,)
    feature_scale: np.ndarray  # (features,)
    weights: np.ndarray  # (features + 1, models), last row: constant
    cost_weights: np.ndarray  # (tasks + 1, models): task intercepts, then USD per 1000 prompt chars
    cost_floor: np.ndarray  # (models,)
    _bank32: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._bank32 = np.ascontiguousarray(self.bank, dtype=np.float32)

    # -- prediction ------------------------------------------------------------------------------

    def nearest_tasks(self, embeddings: np.ndarray) -> np.ndarray:
        """Index of the nearest task centroid of each embedding row."""
        return np.argmax(np.asarray(embeddings, dtype=np.float32) @ self.centroids.T, axis=1)

    def quality(self, embeddings: np.ndarray, tasks: np.ndarray, cheap: np.ndarray) -> np.ndarray:
        """Predicted probability of a good answer, ``(rows, models)``."""
        share = self.config.neighbour_share
        linear = sigmoid(self._design(embeddings, tasks, cheap) @ self.weights)
        if share <= 0:
            return linear
        return share * self._neighbours(embeddings, tasks) + (1.0 - share) * linear

    def cost(self, tasks: np.ndarray, prompt_chars: np.ndarray) -> np.ndarray:
        """Predicted USD cost of each model, ``(rows, models)``."""
        x = np.column_stack(
            [_one_hot(tasks, len(self.tasks)), np.asarray(prompt_chars, dtype=np.float64) / 1000]
        )
        return np.maximum(x @ self.cost_weights, self.cost_floor)

    def _design(self, embeddings: np.ndarray, tasks: np.ndarray, cheap: np.ndarray) -> np.ndarray:
        raw = np.column_stack([embeddings, _one_hot(tasks, len(self.tasks)), cheap]).astype(np.float64)
        # clipped: a request far outside the training range must not extrapolate a linear model
        scaled = np.clip((raw - self.feature_mean) / self.feature_scale, -CLIP, CLIP)
        return np.column_stack([scaled, np.ones(len(raw))])

    def _neighbours(self, embeddings: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        emb = np.asarray(embeddings, dtype=np.float32)
        out = np.empty((len(emb), len(self.models)))
        k_max, alpha = self.config.neighbours, self.config.prior_weight
        for t in np.unique(tasks):
            rows = np.flatnonzero(tasks == t)
            lo, hi = int(self.task_offsets[t]), int(self.task_offsets[t + 1])
            prior = self.task_prior[t]
            if hi <= lo:
                out[rows] = prior
                continue
            sims = emb[rows] @ self._bank32[lo:hi].T
            k = min(k_max, hi - lo)
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < hi - lo else None
            outcomes = self.bank_outcomes[lo:hi]
            total = outcomes.sum(axis=0)[None, :] if top is None else outcomes[top].sum(axis=1)
            out[rows] = (total + alpha * prior) / (k + alpha)
        return out


def _one_hot(index: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((len(index), size))
    out[np.arange(len(index)), np.asarray(index, dtype=np.intp)] = 1.0
    return out


def fit_quality_model(
    embeddings: np.ndarray,
    tasks: np.ndarray,
    cheap: np.ndarray,
    prompt_chars: np.ndarray,
    correct: np.ndarray,
    cost: np.ndarray,
    models: tuple[str, ...],
    task_names: tuple[str, ...],
    config: ModelConfig | None = None,
) -> QualityModel:
    """Fit on training rows; ``tasks`` are indices into ``task_names``; NaN marks an unobserved cell."""
    config = config or ModelConfig()
    emb = np.asarray(embeddings, dtype=np.float32)
    tasks = np.asarray(tasks, dtype=np.intp)
    n_tasks = len(task_names)
    prior = np.stack([_nanmean(correct[tasks == t]) for t in range(n_tasks)])
    centroids = np.stack([_unit(emb[tasks == t].mean(axis=0)) for t in range(n_tasks)])
    filled = np.where(np.isnan(correct), prior[tasks], correct)
    bank_rows = _bank_rows(tasks, n_tasks, config)
    offsets = np.searchsorted(tasks[bank_rows], np.arange(n_tasks + 1))
    raw = np.column_stack([emb, _one_hot(tasks, n_tasks), cheap]).astype(np.float64)
    mean, scale = raw.mean(axis=0), raw.std(axis=0) + 1e-6
    design = np.column_stack([np.clip((raw - mean) / scale, -CLIP, CLIP), np.ones(len(raw))])
    dim = emb.shape[1]
    penalty = np.concatenate(
        [np.full(dim, config.embedding_penalty), np.full(raw.shape[1] - dim, config.feature_penalty), [0.0]]
    )
    weights = fit_logistic(design, correct, penalty)
    cost_weights, floor = _fit_cost(tasks, n_tasks, prompt_chars, cost)
    return QualityModel(
        models,
        task_names,
        config,
        centroids.astype(np.float32),
        prior,
        emb[bank_rows].astype(np.float16),
        filled[bank_rows].astype(np.float32),
        offsets.astype(np.int64),
        mean,
        scale,
        weights,
        cost_weights,
        floor,
    )


def _nanmean(values: np.ndarray) -> np.ndarray:
    seen = ~np.isnan(values)
    counts = seen.sum(axis=0)
    sums = np.where(seen, values, 0.0).sum(axis=0)
    overall = 0.5 if not seen.any() else float(sums.sum() / counts.sum())
    return np.where(counts > 0, sums / np.maximum(counts, 1), overall)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _bank_rows(tasks: np.ndarray, n_tasks: int, config: ModelConfig) -> np.ndarray:
    """Training rows kept for the neighbour search, grouped by task (subsampled past ``max_bank_rows``)."""
    rows = np.arange(len(tasks))
    if len(rows) > config.max_bank_rows:
        rng = np.random.default_rng(config.seed)
        rows = np.sort(rng.choice(rows, size=config.max_bank_rows, replace=False))
    return rows[np.argsort(tasks[rows], kind="stable")]


def _fit_cost(
    tasks: np.ndarray, n_tasks: int, prompt_chars: np.ndarray, cost: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    x = np.column_stack([_one_hot(tasks, n_tasks), np.asarray(prompt_chars, dtype=np.float64) / 1000])
    weights = np.zeros((n_tasks + 1, cost.shape[1]))
    floor = np.zeros(cost.shape[1])
    for j in range(cost.shape[1]):
        seen = ~np.isnan(cost[:, j])
        if not seen.any():
            continue
        weights[:, j] = np.linalg.lstsq(x[seen], cost[seen, j], rcond=None)[0]
        positive = cost[seen, j][cost[seen, j] > 0]
        floor[j] = 0.5 * positive.min() if len(positive) else 0.0
    return weights, floor
