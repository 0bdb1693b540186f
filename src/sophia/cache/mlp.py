"""A small multi-layer perceptron in numpy: the verifier's classifier, trained and run with no framework.

``forward`` is all that runs in the gateway (two matrix products per layer on a handful of rows).
``fit`` trains it with Adam on the binary cross-entropy, with a fixed seed so that a rebuild from
the same data gives the same weights on the same machine (float32 BLAS sums may differ in the last
bits across CPUs).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from itertools import pairwise

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for large logits."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass
class MLP:
    """``x`` -> standardise -> [dense -> ReLU]* -> dense -> logit."""

    mean: np.ndarray
    scale: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = (x - self.mean) * self.scale
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < last:
                np.maximum(h, 0, out=h)
        return h[:, 0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities that each row is a positive pair."""
        return sigmoid(self.logits(x))

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        arrays = {f"{prefix}mean": self.mean, f"{prefix}scale": self.scale}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"{prefix}w{i}"] = w
            arrays[f"{prefix}b{i}"] = b
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> MLP:
        weights: list[np.ndarray] = []
        biases: list[np.ndarray] = []
        while f"{prefix}w{len(weights)}" in arrays:
            i = len(weights)
            weights.append(np.asarray(arrays[f"{prefix}w{i}"], dtype=np.float32))
            biases.append(np.asarray(arrays[f"{prefix}b{i}"], dtype=np.float32))
        mean = np.asarray(arrays[f"{prefix}mean"], dtype=np.float32)
        return cls(mean, np.asarray(arrays[f"{prefix}scale"], dtype=np.float32), weights, biases)


@dataclass(frozen=True)
class FitOptions:
    hidden: tuple[int, ...] = (256, 64)
    epochs: int = 6
    batch: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.1
    seed: int = 20240


def fit(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, opts: FitOptions) -> MLP:
    """Train on float32 rows ``x`` and 0/1 labels ``y`` (weighted), deterministic for a given seed."""
    rng = np.random.default_rng(opts.seed)
    mean = x.mean(axis=0).astype(np.float32)
    std = x.std(axis=0).astype(np.float32)
    scale = (1.0 / np.where(std > 1e-6, std, 1.0)).astype(np.float32)
    sizes = [x.shape[1], *opts.hidden, 1]
    ws = [(rng.standard_normal((m, n)) * np.sqrt(2.0 / m)).astype(np.float32) for m, n in pairwise(sizes)]
    bs = [np.zeros(n, dtype=np.float32) for n in sizes[1:]]
    params = ws + bs
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
    xs = ((x - mean) * scale).astype(np.float32)
    yw = y.astype(np.float32)
    sw = (sample_weight / sample_weight.mean()).astype(np.float32)
    n, last = len(xs), len(ws) - 1
    steps_total = opts.epochs * ((n + opts.batch - 1) // opts.batch)
    for epoch in range(opts.epochs):
        order = rng.permutation(n)
        loss_sum = 0.0
        for start in range(0, n, opts.batch):
            rows = order[start : start + opts.batch]
            h, acts, masks = xs[rows], [], []
            for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
                acts.append(h)
                h = h @ w + b
                if i < last:
                    np.maximum(h, 0, out=h)
                    keep = (rng.random(h.shape) >= opts.dropout).astype(np.float32) / (1 - opts.dropout)
                    h *= keep
                    masks.append(keep)
            z = h[:, 0]
            p = sigmoid(z)
            t, wt = yw[rows], sw[rows]
            loss_sum += float(np.sum(wt * (np.logaddexp(0, z) - t * z)))
            grad = ((p - t) * wt / len(rows))[:, None].astype(np.float32)
            gws, gbs = [None] * len(ws), [None] * len(bs)
            for i in range(last, -1, -1):
                gws[i] = acts[i].T @ grad
                gbs[i] = grad.sum(axis=0)
                if i > 0:
                    grad = (grad @ ws[i].T) * masks[i - 1] * (acts[i] > 0)
            step += 1
            lr = opts.lr * 0.5 * (1 + np.cos(np.pi * step / steps_total))  # cosine decay
            for j, (p_, g) in enumerate(zip(params, [*gws, *gbs], strict=True)):
                assert g is not None
                if j < len(ws):
                    g = g + opts.weight_decay * p_
                m1[j] = b1 * m1[j] + (1 - b1) * g
                m2[j] = b2 * m2[j] + (1 - b2) * g * g
                mh = m1[j] / (1 - b1**step)
                vh = m2[j] / (1 - b2**step)
                p_ -= (lr * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        print(f"    epoch {epoch + 1}/{opts.epochs}: loss {loss_sum / n:.4f}", file=sys.stderr, flush=True)
    return MLP(mean, scale, ws, bs)
