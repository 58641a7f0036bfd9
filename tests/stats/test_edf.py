"""KS edge cases and the within-bin permutation test's pieces (issue 18)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nasx.stats import (bin_index, kish_ess, ks_statistic, ks_stratified_test, log_bins, stratified_weights)


def test_ks_statistic_is_nan_when_a_side_has_no_weight():
    assert math.isnan(ks_statistic([0.1, 0.2], [0.3, 0.4], [0.0, 0.0], [1.0, 1.0]))
    assert math.isnan(ks_statistic([0.1, 0.2], [0.3, 0.4], [1.0, 1.0], [0.0, 0.0]))
    assert ks_statistic([0.1, 0.2], [0.3, 0.4], [0.0, 1.0], [1.0, 1.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ks_statistic([], [0.3])


def test_stratified_weights_leave_out_one_sided_bins_and_weigh_shared_bins_the_same():
    wa, wb = stratified_weights([0, 0, 1, 2], [0, 1, 1, 1, 3])
    # shared bins 0 and 1: each weighs 1/2 on both sides; bins 2 and 3 hold one side only
    assert wa.tolist() == pytest.approx([0.25, 0.25, 0.5, 0.0])
    assert wb.tolist() == pytest.approx([0.5, 1 / 6, 1 / 6, 1 / 6, 0.0])
    assert kish_ess(wa) == pytest.approx(1 / (2 * 0.25 ** 2 + 0.5 ** 2))  # 8/3
    assert kish_ess([1.0] * 7) == pytest.approx(7.0) and kish_ess([0.0, 0.0]) == 0.0
    none_a, none_b = stratified_weights([0, 0], [1])
    assert none_a.sum() == 0 and none_b.sum() == 0


def test_stratified_test_counts_and_statistic():
    rng = np.random.default_rng(3)
    fa, fb = rng.uniform(1, 10, 30), rng.uniform(1, 5, 20)  # a reaches bins b never does
    a, b = rng.normal(0, 1, 30), rng.normal(0, 1, 20)
    edges = log_bins(list(np.r_[fa, fb]), 4)
    r = ks_stratified_test(a, b, fa, fb, edges, n_perm=500)
    ba, bb = [bin_index(f, edges) for f in fa], [bin_index(f, edges) for f in fb]
    wa, wb = stratified_weights(ba, bb)
    assert r.left_out_a == int((wa == 0).sum()) > 0 and r.left_out_b == 0
    assert r.ks == pytest.approx(ks_statistic(list(a), list(b), list(wa), list(wb)))
    assert r.ks == pytest.approx(max(r.up, r.down))
    assert r.ess_a == pytest.approx(kish_ess(wa)) and r.ess_b == pytest.approx(kish_ess(wb))
    assert r.permutations == 500 and r.decision == "" and 0 < r.p_value <= 1 and r.p_low <= r.p_value <= r.p_high + 1e-3
    # no shared bin: nothing to compare
    none = ks_stratified_test(a[:3], b[:3], [1.0, 1.0, 1.0], [9.0, 9.0, 9.0], [1.0, 5.0, 10.0])
    assert math.isnan(none.ks) and math.isnan(none.p_value) and none.left_out_a == 3 and none.bins == 0


def test_a_shift_is_found_and_labels_stay_in_their_bins():
    rng = np.random.default_rng(0)
    f = rng.uniform(1, 8, 120)
    side = rng.random(120) < 0.5
    err = rng.normal(0, 1, 120) - 1.5 * side
    edges = log_bins(list(f), 6)
    r = ks_stratified_test(err[side], err[~side], f[side], f[~side], edges, threshold=0.001)
    assert r.decision == "significant" and r.p_high <= 0.001 and r.up > r.down  # side a: lower values
    # error a function of the FLOPs bin only, the sides' FLOPs mixes unequal: the normalized EDFs are equal (KS 0) and
    # every within-bin permutation gives the same statistic (p 1), whatever the mixes
    bins = np.array([bin_index(x, edges) for x in f])
    skew = side ^ (bins % 2 == 0) & (rng.random(120) < 0.6)
    r0 = ks_stratified_test(bins[skew] / 10, bins[~skew] / 10, f[skew], f[~skew], edges, n_perm=200)
    assert r0.ks == pytest.approx(0.0, abs=1e-12) and r0.p_value == 1.0


def test_subset_shift_weighs_shared_bins_and_is_nan_without_one():
    from nasx.stats import subset_shift

    edges = [1.0, 10.0, 100.0]  # two bins: [1, 10) and [10, 100]
    errors = [0.1, 0.2, 0.5, 0.6, 0.3, 0.4]
    flops = [2.0, 20.0, 3.0, 30.0, 4.0, 40.0]
    inside = [True, True, False, False, False, False]
    got = subset_shift(errors, flops, inside, edges)
    # one net per bin inside; two per bin outside: means 0.15 vs 0.45 (each bin weighs the same on both sides)
    assert got.shared and got.mean_diff == pytest.approx(100 * (0.15 - 0.45))
    assert 0 < got.ks_all <= 1
    alone = subset_shift([0.1, 0.5], [2.0, 30.0], [True, False], edges)  # no bin holds both sides
    assert not alone.shared and math.isnan(alone.ks_all) and math.isnan(alone.mean_diff)


def test_adjusted_shift_is_the_ols_membership_term_with_bin_effects_and_a_within_bin_slope():
    from scipy import stats

    from nasx.stats import adjusted_shift_test

    rng = np.random.default_rng(4)
    f = np.exp(rng.uniform(np.log(10e6), np.log(30e6), 60))
    side = rng.random(60) < 0.4
    y = 0.8 - 0.05 * np.log(f / 10e6) + rng.normal(0, 0.03, 60) - 0.02 * side
    edges = log_bins(list(f), 4)
    r = adjusted_shift_test(y[side], y[~side], f[side], f[~side], edges, n_perm=4000)
    bins = np.array([bin_index(x, edges) for x in f])
    design = np.c_[np.stack([bins == k for k in np.unique(bins)], 1).astype(float), np.log(f), side.astype(float)]
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    df = 60 - design.shape[1]
    se = np.sqrt(resid @ resid / df * np.linalg.inv(design.T @ design)[-1, -1])
    assert r.shift == pytest.approx(beta[-1]) and r.t == pytest.approx(beta[-1] / se) and r.df == df
    # the permutation p-value is close to the t distribution's (normal errors) and one-sided: a lower
    assert r.p_value == pytest.approx(stats.t.cdf(r.t, df), abs=0.02)
    flipped = adjusted_shift_test(y[~side], y[side], f[~side], f[side], edges, n_perm=4000)
    assert flipped.t == pytest.approx(-r.t) and flipped.p_value > 0.5


def test_adjusted_shift_without_a_shared_bin_is_nan():
    from nasx.stats import adjusted_shift_test

    r = adjusted_shift_test([0.1, 0.2, 0.3], [0.4, 0.5], [1.0, 1.5, 2.0], [9.0, 9.5], [1.0, 5.0, 10.0], threshold=0.01)
    assert math.isnan(r.t) and math.isnan(r.p_value) and r.decision == "" and (r.left_out_a, r.left_out_b) == (3, 2)
