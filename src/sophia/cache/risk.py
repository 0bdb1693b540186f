"""The wrong-answer budget: how likely is a semantic hit to be wrong, and may it be served?

A user sets ``cache.models.<alias>.max_error_rate`` (δ, e.g. 0.02). For every candidate the
verifier judged, the cache estimates the chance that serving it is wrong from what it has learned
on this alias's own traffic, and serves it only when the upper end of that estimate (at
``cache.budget_confidence``) stays at or under δ.

**What is learned.** One Bayesian logistic regression per alias, P(wrong | x) = sigmoid(wᵀx), on the
candidate's features (``Features``): the verifier's logit, the cosine of the two questions, the
margin over the next judged candidate and the cross-encoder's disagreement between the two reading
orders. Its prior says what the verifier's training says (P(wrong) = sigmoid(-logit)), worth a few dozen
labels; the labelled rows (``sophia.cache.observations``) move it from there. The posterior is a
Laplace approximation (MAP by Newton steps, covariance = inverse Hessian), so the upper bound of
a candidate is sigmoid(ŵᵀx + z_c·√(xᵀΣx)): wide where the alias has few labels like this one, tight where
it has many.

**Cold start.** Until an alias has ``warm_after`` labelled rows with at least ``MIN_EACH`` of each
outcome, the rule is today's: serve when the verifier score reaches the threshold. Labels are
collected from the first request on.

**Where labels come from** (``ResponseCache.learn``): sampled checks of would-be hits (the model is
called instead of serving, at most 5%), free comparisons on misses whose best candidate was
rejected (the model is called anyway), reports of wrong answers, and replaced entries.

The fit is a few Newton steps on at most ``observations_kept`` rows x 6 features (a few milliseconds
at 20,000 rows); the learner runs it in a worker thread every ``sync_interval`` when rows arrived, and a
decision refits first only when the model is far behind (under 200 rows, or a tenth of them new). A decision is a
6-vector dot product and a 6x6 quadratic form.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from sophia.cache.observations import Observation

#: the verifier logit given to a candidate with the same normalised text (score 1.0)
SAME_LOGIT = 8.0
#: logit of a candidate with no other judged candidate beside it (margin)
LONE_MARGIN = 4.0
#: labelled rows an alias needs of each outcome (right, wrong) before its model decides
MIN_EACH = 5
D = 6


#: the learning key suffix of an alias's exact hits on data-tagged answers (how often they go out of date)
EXACT_SUFFIX = "@exact"


@dataclass(frozen=True, slots=True)
class Features:
    """What the verifier saw of one (question, stored entry) pair."""

    z: float  # the verifier's logit (clipped to ±8)
    cos: float  # cosine of the two questions' embeddings
    margin: float  # z minus the z of the best other judged candidate (LONE_MARGIN: none)
    spread: float  # |z(q, c) - z(c, q)|

    def vector(self) -> np.ndarray:
        return design(np.array([[self.z, self.cos, self.margin, self.spread]], dtype=np.float64))[0]


def logit(score: float) -> float:
    """The verifier's probability as a logit, clipped to ±SAME_LOGIT."""
    p = min(max(score, 1e-6), 1 - 1e-6)
    return max(-SAME_LOGIT, min(SAME_LOGIT, math.log(p / (1 - p))))


def design(raw: np.ndarray) -> np.ndarray:
    """Rows of (z, cos, margin, spread) as the model reads them: an intercept, the scaled features and
    a hinge in z."""
    raw = np.asarray(raw, dtype=np.float64).reshape(-1, 4)
    out = np.empty((len(raw), D), dtype=np.float64)
    out[:, 0] = 1.0
    out[:, 1] = np.clip(raw[:, 0], -SAME_LOGIT, SAME_LOGIT) / 4.0
    out[:, 2] = (np.clip(raw[:, 1], 0.0, 1.0) - 0.85) * 10.0
    out[:, 3] = np.clip(raw[:, 2], -8.0, 8.0) / 4.0
    out[:, 4] = np.clip(raw[:, 3], 0.0, 8.0) / 2.0
    # a hinge: the slope in z may change above z = 2 (on QQP the wrong rate falls with z up to there,
    # then stays flat at about a third until the same words; one straight line extrapolates too low)
    out[:, 5] = np.maximum(np.clip(raw[:, 0], -SAME_LOGIT, SAME_LOGIT) - 2.0, 0.0) / 4.0
    return out


def candidate_features(
    logits: Sequence[float], cosines: Sequence[float], spreads: Sequence[float]
) -> list[Features]:
    """Features of each judged candidate of one lookup (margins are relative to the others)."""
    out = []
    for i, (z, cos, spread) in enumerate(zip(logits, cosines, spreads, strict=True)):
        others = [o for j, o in enumerate(logits) if j != i]
        margin = z - max(others) if others else LONE_MARGIN
        out.append(Features(float(z), float(cos), float(margin), float(spread)))
    return out


#: the prior mean: the verifier's own calibration, P(wrong) = sigmoid(-logit) (= -4 on z/4), nothing else known
PRIOR_MEAN = np.array([0.0, -4.0, 0.0, 0.0, 0.0, 0.0])
#: the prior's standard deviation per weight (on the scaled features)
PRIOR_SD = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.5])


class AliasModel:
    """The labelled rows of one alias (a ring of the newest ``kept``) and the posterior fitted on them."""

    def __init__(self, kept: int = 20_000) -> None:
        self.kept = kept
        self._x = np.zeros((min(kept, 1024), D), dtype=np.float64)
        self._y = np.zeros(min(kept, 1024), dtype=np.float64)
        self._weight = np.zeros(min(kept, 1024), dtype=np.float64)  # how many would-be hits a row stands for
        self.n = 0  # rows held (≤ kept)
        self._next = 0  # where the next row goes once the ring is full
        self.total = 0  # rows ever added
        self.wrong = 0  # of those held, labelled wrong
        self._since_fit = 0
        self.w = PRIOR_MEAN.copy()
        self.cov = np.diag(PRIOR_SD**2)
        self.fits = 0
        self._lines: dict[tuple[int, float, float], float] = {}

    def add(self, x: np.ndarray, y: int, weight: float = 1.0) -> None:
        """One labelled row; ``weight``: how many of the alias's judged candidates it stands for (a
        check sampled at rate r stands for 1/r served hits; a report for none: it is no sample)."""
        if self.n < self.kept:
            if self.n == len(self._y):
                grow = min(self.kept, 2 * len(self._y))
                self._x = np.resize(self._x, (grow, D))
                self._y = np.resize(self._y, grow)
                self._weight = np.resize(self._weight, grow)
            i = self.n
            self.n += 1
        else:
            i = self._next
            self._next = (self._next + 1) % self.kept
            self.wrong -= int(self._y[i])
        self._x[i] = x
        self._y[i] = y
        self._weight[i] = weight
        self.wrong += int(y)
        self.total += 1
        self._since_fit += 1

    @property
    def warm_rows(self) -> tuple[int, int]:
        """(right, wrong) labelled rows held."""
        return self.n - self.wrong, self.wrong

    def fit(self, steps: int = 50) -> None:
        """MAP weights by damped Newton steps from the current ones (halved until the penalised
        log-loss falls: collinear or separable rows cannot throw it off); Laplace covariance at the end."""
        x, y = self._x[: self.n], self._y[: self.n]
        precision0 = np.diag(1.0 / PRIOR_SD**2)

        def loss(w: np.ndarray) -> float:
            eta = x @ w
            d = w - PRIOR_MEAN
            return float(np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * d @ precision0 @ d)

        w = self.w.copy()
        current = loss(w)
        for _ in range(steps):
            p = _sigmoid(x @ w)
            grad = x.T @ (p - y) + precision0 @ (w - PRIOR_MEAN)
            hessian = (x * (p * (1 - p))[:, None]).T @ x + precision0
            step = np.linalg.solve(hessian, grad)
            scale = 1.0
            while scale > 1e-4:
                trial = w - scale * step
                after = loss(trial)
                if after <= current:
                    break
                scale *= 0.5
            else:
                break
            w, moved, current = trial, float(np.max(np.abs(scale * step))), after
            if moved < 1e-6:
                break
        p = _sigmoid(x @ w)
        hessian = (x * (p * (1 - p))[:, None]).T @ x + precision0
        self.w = w
        self.cov = np.linalg.inv(hessian)
        self._since_fit = 0
        self.fits += 1
        self._lines.clear()

    def line(self, budget: float, z_c: float) -> float:
        """The ``average`` rule's serving line: the largest upper bound λ such that serving every judged
        candidate whose upper bound is at most λ keeps the mean upper bound of the served ones within
        ``budget``, the candidates being the labelled rows weighted by what they stand for (shadowed
        misses 1, checks 1/check rate). Never below ``budget``: a candidate within it is always served.
        Remembered until the next fit (O(n log n) once)."""
        key = (self.fits, budget, z_c)
        found = self._lines.get(key)
        if found is not None:
            return found
        x, weight = self._x[: self.n], self._weight[: self.n]
        sd = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", x, self.cov, x), 0.0))
        upper = _sigmoid(x @ self.w + z_c * sd)
        order = np.argsort(upper, kind="stable")
        upper, weight = upper[order], weight[order]
        mass = np.cumsum(weight)
        mean = np.cumsum(weight * upper) / np.maximum(mass, 1e-12)
        within = np.nonzero((mean <= budget) & (mass > 0))[0]
        line = max(budget, float(upper[within[-1]])) if len(within) else budget
        if len(self._lines) > 16:
            self._lines.clear()
        self._lines[key] = line
        return line

    @property
    def stale(self) -> bool:
        """Rows arrived since the last fit (the learner refits stale models off the event loop)."""
        return self._since_fit > 0

    def refit_if_due(self) -> None:
        """Refit before a decision only when the fit is far behind: few rows (a fit is cheap) or a
        tenth of them new. Otherwise the learner's background refit keeps up, off the request path."""
        if self._since_fit and (self.n < 200 or self._since_fit * 10 >= self.n):
            self.fit()

    def upper(self, x: np.ndarray, z_c: float) -> float:
        """The upper end of the chance that serving a candidate with design row ``x`` is wrong."""
        eta = float(x @ self.w)
        sd = math.sqrt(max(float(x @ self.cov @ x), 0.0))
        return 1.0 / (1.0 + math.exp(-(eta + z_c * sd)))

    def mean(self, x: np.ndarray) -> float:
        return 1.0 / (1.0 + math.exp(-float(x @ self.w)))


class RiskModel:
    """Every alias's model, fed with observation rows, asked for one decision per lookup."""

    def __init__(
        self, *, confidence: float = 0.95, warm_after: int = 10, kept: int = 20_000, mode: str = "per_hit"
    ) -> None:
        self.z_c = NormalDist().inv_cdf(confidence)
        self.mode = (
            mode  # "per_hit": each served hit within the budget; "average": the served ones on average
        )
        self.warm_after = warm_after
        self.kept = kept
        self.aliases: dict[str, AliasModel] = {}

    def model(self, alias: str) -> AliasModel:
        found = self.aliases.get(alias)
        if found is None:
            found = self.aliases[alias] = AliasModel(self.kept)
        return found

    def add(self, rows: Iterable[Observation], check_rate: Callable[[str], float] | None = None) -> None:
        """Learn from labelled rows. ``replace`` rows teach only an alias's exact-hit model (``@exact``:
        how an answer's age predicts that a fresh one differs); elsewhere they measure the comparator.
        ``check_rate(alias)``: the share of served hits checked, so a check row stands for 1/rate of them."""
        for row in rows:
            if row.kind == "replace" and not row.alias.endswith(EXACT_SUFFIX):
                continue
            x = Features(row.z, row.cos, row.margin, row.spread).vector()
            if row.kind == "report":
                weight = 0.0
            elif row.kind == "check" and check_rate is not None:
                weight = 1.0 / max(check_rate(row.alias), 1e-3)
            else:
                weight = 1.0
            self.model(row.alias).add(x, row.y, weight)

    def warm(self, alias: str) -> bool:
        found = self.aliases.get(alias)
        if found is None or found.n < self.warm_after:
            return False
        right, wrong = found.warm_rows
        return right >= MIN_EACH and wrong >= MIN_EACH

    def upper(self, alias: str, features: Features) -> float:
        found = self.model(alias)
        found.refit_if_due()
        return found.upper(features.vector(), self.z_c)

    def choose(self, alias: str, features: Sequence[Features], budget: float) -> int | None:
        """The candidate with the lowest upper bound, if it is within the serving line (``budget``
        itself per hit; the ``average`` rule's line otherwise); else None."""
        if not features:
            return None
        found = self.model(alias)
        found.refit_if_due()
        bounds = [found.upper(f.vector(), self.z_c) for f in features]
        best = int(np.argmin(bounds))
        line = budget if self.mode == "per_hit" else found.line(budget, self.z_c)
        return best if bounds[best] <= line else None


def _sigmoid(eta: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * eta))


def wilson(wrong: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (0, 1 when n = 0)."""
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = wrong / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
