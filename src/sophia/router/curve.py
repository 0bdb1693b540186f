"""Cost-quality curves, AIQ and savings, as RouterBench measures routers.

A router with a knob (the price weight λ, or a quality target) gives one (average cost, average
quality) point per setting. Mixing two settings at random reaches every point on the segment
between them, so what a router *can* do is the **non-decreasing convex hull** of its points: the
least concave, non-decreasing function above them, starting at the router's cheapest point and
flat after its best one. The zero router is that hull over the single models.

**AIQ** (Average Improvement in Quality, RouterBench, Hu et al. 2024, ``evaluation/AIQ.py``)
is the area under that hull, extended flat to the largest cost of all the routers compared,
divided by the cost range. RouterBench's code integrates from each router's own cheapest point
and divides by the largest cost (``c_lo = 0``, the default here, so figures are comparable with
theirs); the paper writes ``1/(c_max - c_min) ∫ R̃(c) dc``, which is ``c_lo = c_min``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def hull(points: np.ndarray | Iterable[tuple[float, float]]) -> np.ndarray:
    """Vertices (cost ascending) of the non-decreasing convex hull of (cost, quality) points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise ValueError("no points")
    # by cost, and for equal cost the best quality first (only it can be a vertex)
    pts = pts[np.lexsort((-pts[:, 1], pts[:, 0]))]
    vertices: list[tuple[float, float]] = []
    for x, y in pts:
        if vertices and x == vertices[-1][0]:
            continue
        if vertices and y <= vertices[-1][1]:
            continue  # costs more for no more quality: never on a non-decreasing hull
        while len(vertices) >= 2:
            (x1, y1), (x2, y2) = vertices[-2], vertices[-1]
            # drop the middle vertex when it lies on or under the chord from x1 to x
            if (y2 - y1) * (x - x1) <= (y - y1) * (x2 - x1):
                vertices.pop()
            else:
                break
        vertices.append((float(x), float(y)))
    return np.array(vertices)


def quality_at(vertices: np.ndarray, cost: float) -> float:
    """The hull's quality at ``cost`` (NaN below its cheapest point, flat after its last)."""
    if cost < vertices[0, 0]:
        return float("nan")
    return float(np.interp(cost, vertices[:, 0], vertices[:, 1]))


def aiq(points: np.ndarray | Iterable[tuple[float, float]], c_hi: float, c_lo: float = 0.0) -> float:
    """Area under the hull of ``points`` between ``c_lo`` and ``c_hi``, divided by ``c_hi - c_lo``.

    The hull counts as zero below the router's cheapest point and stays flat after its best one.
    """
    if c_hi <= c_lo:
        raise ValueError("c_hi must exceed c_lo")
    v = hull(points)
    xs = np.concatenate([v[:, 0], [max(c_hi, v[-1, 0])]])
    ys = np.concatenate([v[:, 1], [v[-1, 1]]])
    lo = max(c_lo, xs[0])
    if lo >= c_hi:
        return 0.0
    grid = np.concatenate([[lo], xs[(xs > lo) & (xs < c_hi)], [c_hi]])
    values = np.interp(grid, xs, ys)
    area = float(np.sum((grid[1:] - grid[:-1]) * (values[1:] + values[:-1]) / 2))
    return area / (c_hi - c_lo)


def cost_at(points: np.ndarray | Iterable[tuple[float, float]], quality: float) -> float | None:
    """Least average cost at which the hull reaches ``quality`` (None if it never does)."""
    v = hull(points)
    if quality <= v[0, 1]:
        return float(v[0, 0])
    if quality > v[-1, 1] + 1e-12:
        return None
    i = int(np.searchsorted(v[:, 1], quality))  # v[i-1, 1] < quality <= v[i, 1]
    (x1, y1), (x2, y2) = v[i - 1], v[min(i, len(v) - 1)]
    if y2 == y1:
        return float(x2)
    return float(x1 + (quality - y1) * (x2 - x1) / (y2 - y1))


def saving_at(
    points: np.ndarray | Iterable[tuple[float, float]], ref_cost: float, ref_quality: float, fraction: float
) -> float | None:
    """Share of ``ref_cost`` saved at ``fraction`` of ``ref_quality`` (None if not reached)."""
    cost = cost_at(points, fraction * ref_quality)
    return None if cost is None else 1.0 - cost / ref_cost
