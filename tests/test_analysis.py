"""Pareto fronts, EDFs, complexity-normalized EDFs and KS statistics against hand computations."""

from __future__ import annotations

import pytest

from nasx.analysis import (bin_index, complexity_weights, edf, edf_at, ks_statistic, log_bins, pareto_front,
                           pareto_mask)

MAX_ACC_MIN_FLOPS = (True, False)


def test_pareto_front_on_hand_made_points_with_ties_and_duplicates():
    points = [
        (0.70, 10),  # 0 front
        (0.70, 10),  # 1 duplicate of 0: kept as well
        (0.70, 12),  # 2 same accuracy, more FLOPs: dominated by 0
        (0.80, 20),  # 3 front
        (0.75, 20),  # 4 same FLOPs, less accurate: dominated by 3
        (0.60, 5),   # 5 front (cheapest)
        (0.60, 8),   # 6 dominated by 5
        (0.90, 40),  # 7 front
        (0.85, 50),  # 8 dominated by 7
    ]
    assert pareto_mask(points, MAX_ACC_MIN_FLOPS) == [True, True, False, True, False, True, False, True, False]
    assert pareto_front(points, MAX_ACC_MIN_FLOPS) == [7, 3, 0, 1, 5]
    # the general N-d path agrees with the 2-d sweep
    three = [p + (0,) for p in points]
    assert pareto_mask(three, (True, False, True)) == pareto_mask(points, MAX_ACC_MIN_FLOPS)


def test_plain_edf_with_ties():
    xs, fs = edf([3.0, 1.0, 2.0, 2.0])
    assert xs == [1.0, 2.0, 3.0]
    assert fs == pytest.approx([0.25, 0.75, 1.0])
    assert edf_at([3.0, 1.0, 2.0, 2.0], [0.5, 1.0, 2.5, 9.0]) == pytest.approx([0.0, 0.25, 0.75, 1.0])
    assert edf([]) == ([], [])


def test_log_bins_and_bin_index():
    edges = log_bins([1e6, 1e8, 1e7], 2)
    assert edges == pytest.approx([1e6, 1e7, 1e8])
    assert [bin_index(v, edges) for v in (1e6, 9.99e6, 1.001e7, 1e8, 2e8, 1)] == [0, 0, 1, 1, -1, -1]
    with pytest.raises(ValueError):
        log_bins([0, 1], 3)


def test_normalized_edf_matches_a_hand_computation():
    # bins [1e6, 1e7) and [1e7, 1e8]: three models in the first, one in the second
    flops = [1e6, 2e6, 5e6, 5e7]
    errors = [40.0, 30.0, 20.0, 10.0]
    w = complexity_weights(flops, log_bins(flops, 2))
    # raw weights 1/3, 1/3, 1/3, 1 -> sum 2 -> 1/6, 1/6, 1/6, 1/2
    assert w == pytest.approx([1 / 6, 1 / 6, 1 / 6, 1 / 2])
    xs, fs = edf(errors, w)
    assert xs == [10.0, 20.0, 30.0, 40.0]
    assert fs == pytest.approx([0.5, 2 / 3, 5 / 6, 1.0])
    # the plain EDF would give 0.25 to the big model
    assert edf(errors)[1] == pytest.approx([0.25, 0.5, 0.75, 1.0])


def test_ks_matches_a_hand_computation():
    a = [1.0, 2.0, 3.0]
    b = [2.0, 4.0]
    # pooled support 1, 2, 3, 4: Fa = 1/3, 2/3, 1, 1; Fb = 0, 1/2, 1/2, 1 -> max |diff| = 1/2 at 3
    assert ks_statistic(a, b) == pytest.approx(0.5)
    assert ks_statistic(a, a) == 0.0
    assert ks_statistic([1.0], [2.0]) == 1.0
    # weighted: a's weights 0.5, 0.25, 0.25 -> Fa = 0.5, 0.75, 1, 1; b weights 0.9, 0.1 -> Fb = 0, 0.9, 0.9, 1
    assert ks_statistic(a, b, [0.5, 0.25, 0.25], [0.9, 0.1]) == pytest.approx(0.5)
    assert ks_statistic(a, b, [0.1, 0.1, 0.8], [0.9, 0.1]) == pytest.approx(0.7)  # at 2: 0.2 vs 0.9
    with pytest.raises(ValueError):
        ks_statistic([], b)
    with pytest.raises(ValueError):
        edf([1.0], [1.0, 2.0])
