"""Pareto fronts, EDFs, complexity-normalized EDFs and KS statistics against hand computations."""

from __future__ import annotations

import pytest

import math

import numpy as np

import itertools
from collections import Counter

from nasx.stats import (bin_index, bootstrap_ci, complexity_weights, edf, edf_at, kendall_tau, ks_permutation_pvalue,
                        ks_statistic, log_bins, paired_comparison, pareto_front, pareto_mask, regret, spearman_rho,
                        student_t_quantile, top_k_overlap, trend_verdict)
from nasx.stats import fixed_effects_slope, regret_range, top_k_range
from nasx.stats.rank import _rho_rows, _tau_rows

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


# ---------------------------------------------------------------------------------------------
# Rank agreement, intervals and verdicts (issue 13), KS permutation p-values (issue 14)


@pytest.mark.filterwarnings("ignore:An input array is constant")
@pytest.mark.parametrize("n", [2, 3, 12, 60, 159, 161, 700])  # both kendall_tau paths (pairwise and merge count)
def test_tau_and_rho_equal_scipy_on_data_with_ties(n):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(n)
    for _ in range(3):
        x = rng.integers(0, 6, n).astype(float)  # heavy ties in both
        y = x + rng.integers(0, 4, n)
        assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12, nan_ok=True)
        assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12, nan_ok=True)
        z = rng.normal(size=n)
        assert kendall_tau(z, -z ** 3) == pytest.approx(-1.0)
        assert spearman_rho(z, x) == pytest.approx(stats.spearmanr(z, x).statistic, abs=1e-12, nan_ok=True)


def test_tau_and_rho_pandas_and_degenerate_cases():
    pd = pytest.importorskip("pandas")
    proxy = [0.61, 0.70, 0.55, 0.70, 0.80, 0.42]
    reference = [0.90, 0.93, 0.88, 0.91, 0.95, 0.80]
    frame = pd.DataFrame({"p": proxy, "r": reference})
    assert kendall_tau(proxy, reference) == pytest.approx(frame.corr("kendall").loc["p", "r"])
    assert spearman_rho(proxy, reference) == pytest.approx(frame.corr("spearman").loc["p", "r"])
    assert kendall_tau(reference, reference) == pytest.approx(1.0)  # a proxy that is the reference
    assert spearman_rho(reference, reference) == pytest.approx(1.0)
    for f in (kendall_tau, spearman_rho):
        assert math.isnan(f([], []))
        assert math.isnan(f([1.0], [2.0]))
        assert math.isnan(f([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))  # a constant ranking
        assert math.isnan(f([1.0, math.nan, 3.0], [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError):
        kendall_tau([1.0, 2.0], [1.0])


def test_bootstrap_interval_covers_a_planted_correlation_and_narrows_with_n():
    rng = np.random.default_rng(0)
    r = 0.6  # bivariate normal: tau = 2/pi asin(r), rho_s = 6/pi asin(r/2)
    true_tau, true_rho = 2 / math.pi * math.asin(r), 6 / math.pi * math.asin(r / 2)
    cov = [[1, r], [r, 1]]
    for seed in range(3):
        x, y = np.random.default_rng(seed).multivariate_normal([0, 0], cov, size=60).T
        lo, hi = bootstrap_ci(kendall_tau, x, y, n_boot=1000, seed=seed)
        assert lo < true_tau < hi
        lo, hi = bootstrap_ci(spearman_rho, x, y, n_boot=1000, seed=seed)
        assert lo < true_rho < hi
    x, y = rng.multivariate_normal([0, 0], cov, size=3000).T
    lo, hi = bootstrap_ci(spearman_rho, x, y, n_boot=300)
    assert lo < true_rho < hi and hi - lo < 0.06
    # deterministic given the seed; degenerate inputs give NaN, never an error
    assert bootstrap_ci(kendall_tau, x[:50], y[:50], n_boot=200, seed=5) == bootstrap_ci(
        kendall_tau, x[:50], y[:50], n_boot=200, seed=5)
    assert all(math.isnan(v) for v in bootstrap_ci(kendall_tau, [1.0], [2.0]))
    assert all(math.isnan(v) for v in bootstrap_ci(kendall_tau, [1.0, 1.0, 1.0], [1.0, 2.0, 3.0], n_boot=50))


def test_bootstrap_ci_is_nan_when_degenerate_resamples_are_not_rare():
    # 2 pairs: half the resamples draw one pair twice (tau undefined), the rest give tau = 1; dropping the first
    # silently gave the interval (1.0, 1.0). 3 pairs: 3 of 27 draws are degenerate (11%), still above 1%.
    for n in (2, 3):
        x = np.arange(n, dtype=float)
        assert all(math.isnan(v) for v in bootstrap_ci(kendall_tau, x, x, n_boot=400)), n
        assert all(math.isnan(v) for v in bootstrap_ci(spearman_rho, x, x, n_boot=400)), n
    # 6 pairs: 6 / 6**6 of the draws are degenerate (0.01%): the interval is given; a custom statistic too
    x, y = np.arange(6.0), np.array([0.0, 2, 1, 3, 5, 4])
    lo, hi = bootstrap_ci(kendall_tau, x, y, n_boot=500)
    assert -1 <= lo < kendall_tau(x, y) < hi <= 1
    assert bootstrap_ci(lambda a, b: kendall_tau(a, b), x, y, n_boot=500) == (lo, hi)  # the loop = the batch twin
    assert all(math.isnan(v) for v in bootstrap_ci(kendall_tau, x, y, n_boot=500, max_degenerate=-1))


def test_the_batch_twins_equal_the_statistics_row_by_row():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 5, (300, 12)).astype(float)  # heavy ties, some constant rows
    y = x + rng.integers(0, 3, (300, 12))
    x[0] = 1.0
    for batch, one in ((_tau_rows, kendall_tau), (_rho_rows, spearman_rho)):
        got = batch(x, y)
        want = np.array([one(a, b) for a, b in zip(x, y)])
        assert np.allclose(got, want, atol=1e-12, equal_nan=True) and math.isnan(got[0])


def tau_coverage(n: int, tau: float, reps: int, n_boot: int = 2000, seed: int = 0) -> float:
    """Share of reps whose bootstrap_ci(kendall_tau) 95% interval holds the true tau, on bivariate normal samples
    of n pairs with correlation sin(pi tau / 2) (Kendall's tau of a bivariate normal is 2/pi asin(r))."""
    rng = np.random.default_rng(seed)
    r = math.sin(math.pi * tau / 2)
    hits = 0
    for rep in range(reps):
        x, y = rng.multivariate_normal([0, 0], [[1, r], [r, 1]], size=n).T
        lo, hi = bootstrap_ci(kendall_tau, x, y, n_boot=n_boot, seed=rep)
        hits += lo <= tau <= hi
    return hits / reps


@pytest.mark.slow
@pytest.mark.parametrize("tau", [0.3, 0.7])
def test_the_tau_interval_covers_a_known_tau_at_least_90_percent_of_the_time_at_16_nets(tau):
    """The committed fidelity example has 16 nets; docs/fidelity.md has the table over n and tau."""
    coverage = tau_coverage(16, tau, reps=200, n_boot=1000, seed=int(10 * tau))
    assert coverage >= 0.90, coverage


def paired_tau_coverage(n: int, r_a: float, r_b: float, r_ab: float, reps: int, n_boot: int = 2000,
                        seed: int = 0) -> float:
    """Share of reps whose paired_difference(kendall_tau) 95% interval holds the true tau difference, on trivariate
    normal samples (reference y, rankings a and b) with corr(y, a) = r_a, corr(y, b) = r_b, corr(a, b) = r_ab: the
    true difference is 2/pi (asin r_a - asin r_b)."""
    from nasx.stats import paired_difference

    rng = np.random.default_rng(seed)
    truth = 2 / math.pi * (math.asin(r_a) - math.asin(r_b))
    cov = [[1, r_a, r_b], [r_a, 1, r_ab], [r_b, r_ab, 1]]
    hits = 0
    for rep in range(reps):
        y, a, b = rng.multivariate_normal([0, 0, 0], cov, size=n).T
        d = paired_difference(kendall_tau, a, b, y, n_boot=n_boot, seed=rep)
        hits += d.low <= truth <= d.high
    return hits / reps


@pytest.mark.heavy
@pytest.mark.parametrize("r_a, r_b, r_ab", [(0.5, 0.5, 0.25), (0.8, 0.4, 0.3)])
def test_the_paired_tau_difference_interval_covers_the_true_difference_at_16_nets(r_a, r_b, r_ab):
    """Reduced (200 samples; docs/fidelity.md has the full table): at least 90%."""
    assert paired_tau_coverage(16, r_a, r_b, r_ab, reps=200, n_boot=1000, seed=3) >= 0.90


def test_paired_difference_resamples_nets_together_and_the_verdict_reads_its_interval():
    from nasx.stats import PairedDifference, compare_verdict, paired_difference, regret

    rng = np.random.default_rng(2)
    y = rng.normal(size=30)
    good, noise = y + rng.normal(0, 0.3, 30), rng.normal(size=30)
    d = paired_difference(kendall_tau, good, noise, y, n_boot=300)
    assert d.value == pytest.approx(kendall_tau(good, y) - kendall_tau(noise, y)) and 0 < d.low < d.value < d.high
    assert compare_verdict(d) == "better"
    assert compare_verdict(paired_difference(kendall_tau, noise, good, y, n_boot=300)) == "worse"
    same = paired_difference(kendall_tau, good, good, y, n_boot=200)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)  # the same ranking: every resample differs by 0
    assert compare_verdict(same) == "no evidence either way"
    assert compare_verdict(PairedDifference(0.1, -0.2, 0.4)) == "no evidence either way"
    assert compare_verdict(PairedDifference(-1.0, -2.0, -0.5), higher_is_better=False) == "better"
    r = paired_difference(regret, good, noise, y, n_boot=200)
    assert r.value == pytest.approx(regret(good, y) - regret(noise, y)) and r.low <= r.value <= r.high


def _orders(values: np.ndarray):
    """Every strict order of the values consistent with them (ties permuted), as scores without ties."""
    groups = {}
    for i, v in enumerate(values):
        groups.setdefault(v, []).append(i)
    for perms in itertools.product(*(itertools.permutations(g) for g in groups.values())):
        score = np.array(values, dtype=float)
        for perm in perms:
            for rank, i in enumerate(perm):
                score[i] += rank * 1e-9  # breaks the tie in this order, never across distinct values
        yield score


@pytest.mark.parametrize("seed", range(8))
def test_tie_aware_top_k_and_regret_equal_the_mean_and_range_over_every_tie_order(seed):
    rng = np.random.default_rng(seed)
    proxy = rng.integers(0, 3, 7).astype(float)  # many ties
    reference = rng.integers(0, 4, 7).astype(float)
    for k in (1, 2, 3, 5):
        # each side's top-k set under every one of its tie orders (with multiplicity), then every pair of orders
        tops_p = Counter(frozenset(np.argsort(-p)[:k]) for p in _orders(proxy))
        tops_r = Counter(frozenset(np.argsort(-r)[:k]) for r in _orders(reference))
        pairs = [(len(a & b) / k, ca * cb) for a, ca in tops_p.items() for b, cb in tops_r.items()]
        mean = sum(o * c for o, c in pairs) / sum(c for _, c in pairs)
        assert top_k_overlap(proxy, reference, k) == pytest.approx(mean), k
        assert top_k_range(proxy, reference, k) == pytest.approx((min(o for o, _ in pairs), max(o for o, _ in pairs))), k
    regrets = [regret(p, reference) for p in _orders(proxy)]
    assert regret(proxy, reference) == pytest.approx(np.mean(regrets))
    assert regret_range(proxy, reference) == pytest.approx((min(regrets), max(regrets)))


def test_top_k_overlap_and_regret():
    reference = [0.90, 0.80, 0.95, 0.70, 0.85]  # best: 2, then 0, 4
    proxy = [0.50, 0.60, 0.40, 0.10, 0.55]  # best: 1, then 4, 0
    assert top_k_overlap(proxy, reference, 1) == 0.0
    assert top_k_overlap(proxy, reference, 3) == pytest.approx(2 / 3)
    assert top_k_overlap(proxy, reference, 10) == 1.0  # k cut to the number of nets
    assert top_k_overlap(reference, reference, 2) == 1.0
    assert regret(proxy, reference) == pytest.approx(0.95 - 0.80)
    assert regret(reference, reference) == 0.0
    # a tie in the proxy: the expectation over its orders, and the best and worst case (not the first net's)
    assert regret([1.0, 1.0], [0.5, 0.9]) == pytest.approx(0.2)
    assert regret_range([1.0, 1.0], [0.5, 0.9]) == pytest.approx((0.0, 0.4))
    assert regret([1.0, 1.0], [0.9, 0.5]) == regret([1.0, 1.0], [0.5, 0.9])  # the order of the nets is no matter
    assert top_k_overlap([1.0, 1.0, 0.0], [0.0, 1.0, 0.5], 1) == 0.5  # a tie at the k-th place: either net
    assert top_k_range([1.0, 1.0, 0.0], [0.0, 1.0, 0.5], 1) == (0.0, 1.0)
    assert top_k_range(proxy, reference, 3) == pytest.approx((2 / 3, 2 / 3))  # no ties: one order
    assert regret_range(proxy, reference) == pytest.approx((0.15, 0.15))
    assert math.isnan(regret([1.0], [1.0])) and math.isnan(top_k_overlap([], [], 1))
    assert all(math.isnan(v) for v in (*regret_range([1.0], [1.0]), *top_k_range([], [], 1)))
    with pytest.raises(ValueError):
        top_k_overlap(proxy, reference, 0)


def test_student_t_quantile_equals_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in range(1, 61):
        for p in (0.0005, 0.025, 0.3, 0.5, 0.6, 0.9, 0.95, 0.975, 0.995, 0.9995):
            want = stats.t.ppf(p, df)
            assert student_t_quantile(p, df) == pytest.approx(want, abs=1e-6, rel=1e-9)
    assert student_t_quantile(0.975, 2.5) == pytest.approx(stats.t.ppf(0.975, 2.5), rel=1e-9)
    with pytest.raises(ValueError):
        student_t_quantile(1.0, 3)


def test_paired_comparison_equals_scipy_and_flips_with_the_effect():
    stats = pytest.importorskip("scipy.stats")
    a, b = [1.0, 2.0, 3.5, 4.0], [0.5, 1.7, 3.0, 3.0]
    c = paired_comparison(a, b)
    d = np.subtract(a, b)
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (c.mean_diff, c.low, c.high, c.n) == (pytest.approx(d.mean()), pytest.approx(d.mean() - half),
                                                  pytest.approx(d.mean() + half), 4)
    assert c.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
    rng = np.random.default_rng(0)
    for seed in range(5):
        base = 30 + rng.normal(0, 3, size=3)  # a seed's luck, shared by both settings
        big = paired_comparison(base + 2.0 + rng.normal(0, 0.1, 3), base + rng.normal(0, 0.1, 3))
        small = paired_comparison(base + 0.01 + rng.normal(0, 1.0, 3), base + rng.normal(0, 1.0, 3))
        assert big.significant and big.low > 0, seed
        assert not small.significant and small.low < 0 < small.high, seed
    one = paired_comparison([1.0], [0.0])
    assert one.mean_diff == 1.0 and math.isnan(one.low) and not one.significant


def test_paired_differences_all_equal_are_not_significant():
    # no spread: the t statistic is undefined (scipy's ttest_rel gives inf and p = 0); nothing is judged
    c = paired_comparison([31.0, 32.5, 30.0], [30.0, 31.5, 29.0])
    assert c.mean_diff == pytest.approx(1.0) and c.sd_diff == pytest.approx(0.0, abs=1e-12) and c.n == 3
    assert math.isnan(c.p_value) and math.isnan(c.low) and math.isnan(c.high) and not c.significant
    same = paired_comparison([1.0, 2.0], [1.0, 2.0])
    assert same.mean_diff == 0.0 and not same.significant and math.isnan(same.p_value)


def _ablation(rng, slope_per_doubling, noise, seeds=3):
    settings = [1, 2, 4, 8, 32]
    luck = rng.normal(0, 2.0, size=seeds)  # each seed's offset, common to every setting
    return {s: list(20 + slope_per_doubling * math.log2(s) + luck + rng.normal(0, noise, seeds)) for s in settings}


def test_trend_verdict_flips_on_planted_effects():
    rng = np.random.default_rng(1)
    for _ in range(5):
        falls = trend_verdict(_ablation(rng, -0.8, 0.1), setting="cardinality")
        assert falls.direction == "falls" and falls.high < 0
        assert falls.text.startswith("error falls as cardinality rises (slope -0.")
        assert "95% CI" in falls.text and "per doubling" in falls.text
        assert trend_verdict(_ablation(rng, 0.8, 0.1)).direction == "rises"
        flat = trend_verdict(_ablation(rng, 0.01, 1.5), setting="cardinality")
        assert flat.direction == "flat" and flat.low < 0 < flat.high
        assert flat.text.startswith("differences in error across cardinality are within seed noise")
    # the slope is per doubling: error = 20 - 0.8 log2(s) exactly, for every seed; an exact fit has no noise
    # to judge it against (no interval), but its slope is still reported
    exact = trend_verdict({s: [20 - 0.8 * math.log2(s)] * 3 for s in (1, 2, 4, 8)})
    assert exact.slope == pytest.approx(-0.8) and exact.per_seed == pytest.approx((-0.8,) * 3)
    alone = trend_verdict({1: [3.0], 2: [2.0]})
    assert alone.direction == "flat" and math.isnan(alone.low) and "cannot be judged" in alone.text
    with pytest.raises(ValueError):
        trend_verdict({1: [1.0, 2.0], 2: [1.0]})
    with pytest.raises(ValueError):
        trend_verdict({0: [1.0], 2: [1.0]})


def test_the_fixed_effects_slope_equals_a_regression_with_seed_dummies():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(2)
    data = _ablation(rng, -0.5, 1.0)
    v = trend_verdict(data, setting="cardinality")
    # balanced: the common slope is the slope of the seed-demeaned errors on the centred log2(setting)
    xs = np.log2(sorted(data))
    y = np.array([data[s] for s in sorted(data)])
    fit = stats.linregress(np.repeat(xs - xs.mean(), 3), (y - y.mean(axis=0)).ravel())
    assert v.slope == pytest.approx(fit.slope)
    # its standard error on runs - seeds - 1 = 11 degrees of freedom (linregress counts 13: one intercept only)
    resid = (y - y.mean(axis=0)).ravel() - fit.slope * np.repeat(xs - xs.mean(), 3)
    se = math.sqrt(resid @ resid / 11 / (3 * ((xs - xs.mean()) ** 2).sum()))
    assert (v.df, v.n_runs) == (11, 15)
    assert v.high - v.slope == pytest.approx(stats.t.ppf(0.975, 11) * se)
    assert v.p_value == pytest.approx(2 * stats.t.sf(abs(fit.slope) / se, 11))
    # beside it: the mean of per-seed slopes with a t interval on 2 degrees of freedom
    per = [stats.linregress(xs, y[:, j]).slope for j in range(3)]
    assert v.per_seed == pytest.approx(tuple(per)) and v.per_seed_mean == pytest.approx(np.mean(per))
    half = stats.t.ppf(0.975, 2) * np.std(per, ddof=1) / math.sqrt(3)
    assert (v.per_seed_low, v.per_seed_high) == pytest.approx((np.mean(per) - half, np.mean(per) + half))


def test_a_missing_run_drops_one_row_and_per_seed_slopes_share_their_settings():
    rng = np.random.default_rng(6)
    full = _ablation(rng, -0.8, 0.3)
    gappy = {s: list(v) for s, v in full.items()}
    gappy[4][0] = math.nan  # seed 0 has no run at cardinality 4
    from nasx.stats import lack_of_fit

    v = trend_verdict(gappy)
    xs = np.log2(sorted(gappy))
    y = np.array([gappy[s] for s in sorted(gappy)])
    slope, low, high, df, _ = fixed_effects_slope(xs, y)
    assert (v.n_seeds, v.n_runs, df) == (3, 14, 10)  # the line: 14 runs - 3 seeds - 1
    lof = lack_of_fit(xs, y)
    assert (lof.df1, lof.df2) == (3, 7) and v.lack_of_fit_p == pytest.approx(lof.p_value)  # 14 - 3 - 5 + 1
    # the verdict's interval is the line's, or where the settings deviate from it the setting means' one
    want_fit = (slope, low, high, df) if v.model == "seed fixed effects" else (lof.slope, lof.low, lof.high, lof.df)
    assert (v.slope, v.low, v.high, v.df) == pytest.approx(want_fit)
    # every seed's own slope is fitted on the same 4 settings (without cardinality 4), not seed 0 on 4 and the rest on 5
    keep = [s for s in sorted(gappy) if s != 4]
    x4 = np.log2(keep)
    want = [np.polyfit(x4, [gappy[s][j] for s in keep], 1)[0] for j in range(3)]
    assert v.per_seed == pytest.approx(tuple(want))
    # a seed with a single run adds no slope information: it is left out of the fit
    lonely = {s: list(vals) + [math.nan] for s, vals in full.items()}
    lonely[1][3] = 25.0
    assert trend_verdict(lonely).n_runs == 15


def trend_calibration(slope: float, reps: int, seeds: int = 3, settings=(1, 2, 4, 8, 16), noise: float = 1.0,
                      luck: float = 2.0, seed: int = 0, setting_sd: float = 0.0) -> dict:
    """Planted data, error = 30 + seed offset (sd `luck`) + slope x log2(setting) + a setting offset (sd
    `setting_sd`: settings that differ for reasons other than the knob) + run noise (sd `noise`): the share of
    verdicts that call a trend (falls or rises), the coverage of the true slope by the verdict's interval, the same
    two for the mean of per-seed slopes beside it, and the share where the verdict used the random-effect model."""
    rng = np.random.default_rng(seed)
    xs = np.log2(settings)
    trend = fe_cover = per_trend = per_cover = widened = 0
    for _ in range(reps):
        offsets = rng.normal(0, luck, seeds)
        y = (30 + offsets[None, :] + slope * xs[:, None] + rng.normal(0, setting_sd, (len(settings), 1))
             + rng.normal(0, noise, (len(settings), seeds)))
        v = trend_verdict({s: list(row) for s, row in zip(settings, y)})
        trend += v.direction != "flat"
        fe_cover += v.low <= slope <= v.high
        per_trend += not v.per_seed_low <= 0 <= v.per_seed_high
        per_cover += v.per_seed_low <= slope <= v.per_seed_high
        widened += v.model == "setting random effect"
    return {"trend": trend / reps, "coverage": fe_cover / reps, "per_seed_trend": per_trend / reps,
            "per_seed_coverage": per_cover / reps, "widened": widened / reps}


@pytest.mark.slow
def test_the_verdict_calls_a_false_trend_at_its_stated_level_under_a_planted_null():
    """3 seeds x 5 settings, no trend, seed offsets larger than the run noise: the verdict's false-trend rate is at
    most 5% and its interval covers the true slope at least 95% of the time, within 3 Monte Carlo standard errors,
    also when every setting carries an offset of its own (issue 28: the fixed-effects line alone called a trend 20%
    of the time there; the lack-of-fit test switches to the setting means' interval)."""
    reps = 800
    se = math.sqrt(0.05 * 0.95 / reps)
    for sd in (0.0, 1.0):
        null = trend_calibration(0.0, reps, seed=11, setting_sd=sd)
        assert null["trend"] <= 0.05 + 3 * se and null["coverage"] >= 0.95 - 3 * se, (sd, null)
    assert null["widened"] > 0.5  # with setting offsets the lack of fit is found, and the interval widened
    planted = trend_calibration(-0.6, reps // 2, seed=12)
    assert planted["coverage"] >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / (reps // 2)), planted
    assert planted["trend"] > planted["per_seed_trend"]  # more power than the mean of 3 per-seed slopes


def test_lack_of_fit_is_the_f_test_of_the_additive_model_against_the_line():
    from scipy import stats

    from nasx.stats import lack_of_fit

    rng = np.random.default_rng(1)
    xs = np.log2([1.0, 2, 4, 8, 16])
    values = 30 + rng.normal(0, 2, 3)[None, :] + np.array([0, 3, -2, 1, 0])[:, None] + rng.normal(0, 0.5, (5, 3))
    lof = lack_of_fit(xs, values)
    # by hand: the residual sums of squares of the two least-squares fits
    seed_d = np.tile(np.eye(3), (5, 1))
    x_col = np.repeat(xs, 3)
    y = values.ravel()
    setting_d = np.repeat(np.eye(5), 3, axis=0)[:, 1:]
    rss = [float(np.sum((y - d @ np.linalg.lstsq(d, y, rcond=None)[0]) ** 2))
           for d in (np.column_stack([x_col, seed_d]), np.column_stack([seed_d, setting_d]))]
    f = ((rss[0] - rss[1]) / 3) / (rss[1] / 8)
    assert (lof.df1, lof.df2) == (3, 8) and lof.f == pytest.approx(f) and lof.p_value == pytest.approx(stats.f.sf(f, 3, 8))
    assert lof.p_value < 0.01  # the planted bumps are far from a line
    means = values.mean(axis=1)  # balanced: the setting means, then a line through them
    fit = stats.linregress(xs, means)
    assert lof.slope == pytest.approx(fit.slope)
    assert (lof.high - lof.low) / 2 == pytest.approx(stats.t.ppf(0.975, 3) * fit.stderr)
    v = trend_verdict({s: list(row) for s, row in zip([1, 2, 4, 8, 16], values)})
    assert v.model == "setting random effect" and v.lack_of_fit_p == pytest.approx(lof.p_value)
    assert (v.low, v.high) == pytest.approx((lof.low, lof.high)) and "deviate from a line" in v.text


def test_ks_permutation_pvalue():
    rng = np.random.default_rng(3)
    same = [ks_permutation_pvalue(rng.normal(size=40), rng.normal(size=60), n_perm=500, seed=s) for s in range(5)]
    assert min(same) > 0.05
    shifted = ks_permutation_pvalue(rng.normal(size=40), rng.normal(1.0, 1.0, size=60), n_perm=500)
    assert shifted < 0.01
    # weights as ks_statistic takes them: a weighted shift is found, and the p-value is deterministic given the seed
    a, b = rng.normal(size=50).round(1), rng.normal(0.8, 1.0, size=50).round(1)
    wa, wb = rng.random(50), rng.random(50)
    p = ks_permutation_pvalue(a, b, wa, wb, n_perm=500, seed=7)
    assert p < 0.05 and p == ks_permutation_pvalue(a, b, wa, wb, n_perm=500, seed=7)
    assert ks_permutation_pvalue([1.0, 2.0], [1.0, 2.0], n_perm=200) == 1.0
    assert 1 / 201 <= ks_permutation_pvalue([1.0], [2.0], n_perm=200) <= 1.0
    assert math.isnan(ks_permutation_pvalue([], [1.0]))


def test_one_complexity_is_one_bin_holding_every_model():
    edges = log_bins([5.0, 5.0, 5.0])
    assert complexity_weights([5.0, 5.0, 5.0], edges) == pytest.approx([1 / 3] * 3)
