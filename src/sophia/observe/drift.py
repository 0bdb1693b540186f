"""Drift: is the recent window of a signal different from its reference window, and by which test?

Every check names its test and returns its statistic, p-value (when the test has one), threshold and
verdict, so an alert says *why* it fired:

* numeric signals (latency, tokens): **Kolmogorov-Smirnov** two-sample test (p < ``alpha``), with the
  **population stability index** beside it (PSI over the reference's deciles; 0.1 moderate, 0.25 large);
* rates (error rate, cache hit rate): a **two-proportion z-test** (p < ``alpha``);
* categories (models, routes, tools): **Jensen-Shannon distance** of the two distributions, with a
  chi-square test of homogeneity for its p-value;
* embeddings (prompts): the **distance between the windows' mean embeddings** against the same distance
  for random re-splits of the pooled vectors (a permutation test, p < ``alpha``), which holds its false
  alarm rate whatever the embedding model's geometry.

Pure numpy (no scipy); the KS and chi-square p-values use their asymptotic distributions, accurate for
the window sizes drift is judged on (tens of samples and up). ``alpha`` is 0.01 by default: with one
check per signal per hour, a 5% level would raise a false alarm about every 20 hours per signal.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from sophia.errors import InvalidRequest

ALPHA = 0.01
MIN_SAMPLES = 20


@dataclass(frozen=True)
class DriftResult:
    signal: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    reference_n: int
    current_n: int
    extra: dict[str, float] | None = None

    def describe(self) -> str:
        p = "" if self.p_value is None else f", p = {self.p_value:.3g}"
        verdict = "drifted" if self.drifted else "stable"
        return f"{self.signal}: {verdict} ({self.test} {self.statistic:.4g}{p}, threshold {self.threshold:g})"


def _check(signal: str, reference: Sequence[object], current: Sequence[object]) -> None:
    if len(reference) < MIN_SAMPLES or len(current) < MIN_SAMPLES:
        raise InvalidRequest(
            f"{signal}: drift needs at least {MIN_SAMPLES} samples in each window "
            f"(reference {len(reference)}, current {len(current)})"
        )


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value of the two-sample KS statistic ``d`` (Kolmogorov's series,
    with Stephens' small-sample correction)."""
    en = math.sqrt(n * m / (n + m))
    lam = (en + 0.12 + 0.11 / en) * d
    if lam < 1e-3:
        return 1.0
    total = sum(2 * (-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return min(1.0, max(0.0, total))


def ks(
    signal: str, reference: Sequence[float], current: Sequence[float], *, alpha: float = ALPHA
) -> DriftResult:
    """Kolmogorov-Smirnov two-sample test, with the PSI over the reference's deciles beside it."""
    _check(signal, reference, current)
    a, b = np.sort(np.asarray(reference, dtype=float)), np.sort(np.asarray(current, dtype=float))
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    p = ks_pvalue(d, len(a), len(b))
    return DriftResult(signal, "ks", d, p, alpha, p < alpha, len(a), len(b), {"psi": psi(a, b)})


def psi(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, bins: int = 10
) -> float:
    """Population stability index over the reference's quantile bins (0.1 moderate, 0.25 large)."""
    a, b = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    edges = np.unique(np.quantile(a, np.linspace(0, 1, bins + 1)[1:-1]))
    pa = np.bincount(np.searchsorted(edges, a, side="right"), minlength=len(edges) + 1) / len(a)
    pb = np.bincount(np.searchsorted(edges, b, side="right"), minlength=len(edges) + 1) / len(b)
    pa, pb = np.clip(pa, 1e-4, None), np.clip(pb, 1e-4, None)
    return float(np.sum((pb - pa) * np.log(pb / pa)))


def proportion(
    signal: str, reference: tuple[int, int], current: tuple[int, int], *, alpha: float = ALPHA
) -> DriftResult:
    """Two-proportion z-test on (events, trials) of each window: error rate, cache hit rate."""
    (x1, n1), (x2, n2) = reference, current
    if min(n1, n2) < MIN_SAMPLES or not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        raise InvalidRequest(
            f"{signal}: give (events, trials) with at least {MIN_SAMPLES} trials in each window"
        )
    pooled = (x1 + x2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = 0.0 if spread == 0 else (x2 / n2 - x1 / n1) / spread
    p = math.erfc(abs(z) / math.sqrt(2))
    return DriftResult(
        signal, "two-proportion z", z, p, alpha, p < alpha, n1, n2, {"reference": x1 / n1, "current": x2 / n2}
    )


def chi2_sf(x: float, k: int) -> float:
    """Upper tail of the chi-square distribution (Wilson-Hilferty; good to ~1e-3 for k >= 1)."""
    if k <= 0 or x <= 0:
        return 1.0
    z = ((x / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return 0.5 * math.erfc(z / math.sqrt(2))


def categorical(
    signal: str, reference: Sequence[Hashable], current: Sequence[Hashable], *, alpha: float = ALPHA
) -> DriftResult:
    """Jensen-Shannon distance (base 2, 0..1) of two category mixes; chi-square homogeneity p-value."""
    _check(signal, reference, current)
    ca, cb = Counter(reference), Counter(current)
    keys = sorted(set(ca) | set(cb), key=repr)
    a = np.array([ca[k] for k in keys], dtype=float)
    b = np.array([cb[k] for k in keys], dtype=float)
    pa, pb = a / a.sum(), b / b.sum()
    mid = (pa + pb) / 2

    def kl(p: np.ndarray, q: np.ndarray) -> float:
        mask = p > 0
        return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))

    js = math.sqrt(max(0.0, (kl(pa, mid) + kl(pb, mid)) / 2))
    table = np.vstack([a, b])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    chi2 = float(np.sum((table - expected) ** 2 / np.where(expected > 0, expected, 1)))
    p = chi2_sf(chi2, len(keys) - 1)
    return DriftResult(
        signal, "jensen-shannon", js, p, alpha, p < alpha, len(reference), len(current), {"chi2": chi2}
    )


def embeddings(
    signal: str,
    reference: np.ndarray,
    current: np.ndarray,
    *,
    alpha: float = ALPHA,
    permutations: int = 200,
    seed: int = 0,
) -> DriftResult:
    """Distance between the windows' mean embeddings, judged against random re-splits (permutation test)."""
    a, b = np.asarray(reference, dtype=np.float32), np.asarray(current, dtype=np.float32)
    _check(signal, list(range(len(a))), list(range(len(b))))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InvalidRequest(f"{signal}: both windows must be (n, d) arrays of the same width")
    observed = float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)))
    pooled = np.vstack([a, b])
    total = pooled.sum(axis=0)
    rng = np.random.default_rng(seed)
    n, m = len(a), len(b)
    beats = 0
    for _ in range(permutations):
        pick = rng.choice(len(pooled), size=n, replace=False)
        sum_a = pooled[pick].sum(axis=0)
        if np.linalg.norm(sum_a / n - (total - sum_a) / m) >= observed:
            beats += 1
    p = (beats + 1) / (permutations + 1)
    return DriftResult(signal, "mean-embedding permutation", observed, p, alpha, p < alpha, n, m)
