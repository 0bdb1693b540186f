"""Cost-quality hulls, AIQ and savings on examples small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sophia.router.curve import aiq, cost_at, hull, quality_at, saving_at


def test_hull_drops_points_under_chords_and_after_the_best() -> None:
    points = [(1, 0.5), (2, 0.6), (3, 0.9), (4, 0.8), (5, 0.9), (2, 0.55)]
    # (2, 0.6) lies under the chord (1, 0.5)-(3, 0.9) (0.7 there); after (3, 0.9) nothing is higher
    np.testing.assert_allclose(hull(points), [[1, 0.5], [3, 0.9]])


def test_hull_keeps_the_best_of_equal_costs_and_is_non_decreasing() -> None:
    np.testing.assert_allclose(hull([(1, 0.2), (1, 0.4), (2, 0.3)]), [[1, 0.4]])


def test_quality_at_interpolates_and_is_flat_after_the_last_vertex() -> None:
    v = hull([(1, 0.5), (3, 0.9)])
    assert quality_at(v, 2) == pytest.approx(0.7)
    assert quality_at(v, 10) == pytest.approx(0.9)
    assert np.isnan(quality_at(v, 0.5))


def test_aiq_by_hand() -> None:
    # hull (1, .5) -> (2, .9), flat to 3: area .5 * (.5 + .9) * 1 + .9 * 1 = 1.6
    points = [(1, 0.5), (2, 0.9), (3, 0.7)]
    assert aiq(points, c_hi=3) == pytest.approx(1.6 / 3)  # RouterBench: zero below the first point, / c_max
    assert aiq(points, c_hi=3, c_lo=1) == pytest.approx(1.6 / 2)  # the paper's (c_max - c_min)
    assert aiq(points, c_hi=4) == pytest.approx((1.6 + 0.9) / 4)  # extended flat to a larger c_max


def test_aiq_of_a_single_point_is_its_quality_over_the_rest_of_the_range() -> None:
    assert aiq([(2, 0.8)], c_hi=4) == pytest.approx(0.8 * 2 / 4)


def test_a_router_above_the_zero_router_has_a_higher_aiq() -> None:
    models = [(1, 0.5), (4, 0.9)]
    router = [*models, (2, 0.85)]  # beats the mix of the two models at cost 2 (0.633)
    assert aiq(router, 4) > aiq(models, 4)


def test_cost_at_and_saving_at() -> None:
    points = [(1, 0.6), (5, 1.0)]
    assert cost_at(points, 0.5) == 1.0  # already reached by the cheapest point
    assert cost_at(points, 0.8) == pytest.approx(3.0)
    assert cost_at(points, 1.01) is None
    # 97% of a reference at (5, 1.0): 0.97 -> cost 1 + 0.37 / 0.4 * 4 = 4.7 -> 6% saved
    assert saving_at(points, 5, 1.0, 0.97) == pytest.approx(1 - 4.7 / 5)
    assert saving_at(points, 5, 1.0, 1.0) == pytest.approx(0.0)


def test_empty_points_and_bad_range_are_errors() -> None:
    with pytest.raises(ValueError, match="no points"):
        hull([])
    with pytest.raises(ValueError, match="c_hi"):
        aiq([(1, 1)], c_hi=1, c_lo=2)
