"""Error EDFs and their distance (Radosavovic et al. 2019): weighted EDFs, FLOPs bins and complexity weights, the KS
statistic, and its permutation tests (pooled, and within FLOPs bins with the weights of every split recomputed)."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["edf", "edf_at", "log_bins", "bin_index", "complexity_weights", "ks_statistic", "ks_permutation_pvalue", "stratified_weights", "kish_ess", "StratifiedKS", "ks_stratified_test", "MC_LEVEL", "SubsetShift", "subset_shift"]


# Error EDFs and their distance (Radosavovic et al. 2019, "On Network Design Spaces for Visual Recognition")


def _check_weights(values: Sequence[float], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(values)
    if len(weights) != len(values):
        raise ValueError(f"{len(weights)} weights for {len(values)} values")
    if any(w < 0 for w in weights):
        raise ValueError("weights must be >= 0")
    return [float(w) for w in weights]


def edf(values: Sequence[float], weights: Sequence[float] | None = None) -> tuple[list[float], list[float]]:
    """The (weighted) empirical distribution function: distinct sorted values and F(v) = weight share <= v."""
    w = _check_weights(values, weights)
    total = sum(w)
    if not values or total <= 0:
        return [], []
    xs: list[float] = []
    fs: list[float] = []
    cum = 0.0
    for v, wi in sorted(zip(values, w)):
        cum += wi
        if xs and xs[-1] == v:
            fs[-1] = cum / total
        else:
            xs.append(float(v))
            fs.append(cum / total)
    fs[-1] = 1.0  # no rounding drift at the top
    return xs, fs


def edf_at(values: Sequence[float], points: Sequence[float], weights: Sequence[float] | None = None) -> list[float]:
    """F evaluated at each point (right-continuous: the share of weight at values <= point)."""
    xs, fs = edf(values, weights)
    out = []
    for p in points:
        i = bisect.bisect_right(xs, p)
        out.append(fs[i - 1] if i else 0.0)
    return out


def log_bins(values: Sequence[float], n: int = 10) -> list[float]:
    """n log-spaced bins covering the positive values: n + 1 edges from their min to their max."""
    if n < 1:
        raise ValueError("n must be >= 1")
    if not values or min(values) <= 0:
        raise ValueError("log bins need positive values")
    lo, hi = math.log(min(values)), math.log(max(values))
    if hi == lo:  # one complexity: one bin holding all (the exact value, not exp(log(v)), which may round off)
        return [min(values), max(values)]
    edges = [math.exp(lo + (hi - lo) * k / n) for k in range(n + 1)]
    edges[0], edges[-1] = min(values), max(values)  # exact ends: no value falls outside by rounding
    return edges


def bin_index(value: float, edges: Sequence[float]) -> int:
    """The bin of value: [e0, e1), [e1, e2), ..., the last bin closed [e(n-1), en]; -1 outside."""
    if value < edges[0] or value > edges[-1]:
        return -1
    return min(bisect.bisect_right(edges, value) - 1, max(len(edges) - 2, 0))


def complexity_weights(flops: Sequence[float], edges: Sequence[float]) -> list[float]:
    """Each model's weight 1 / (models in its FLOPs bin), scaled to sum to 1: every occupied bin weighs the same
    (the normalized EDF of Radosavovic et al. 2019); a model outside the edges gets 0."""
    bins = [bin_index(f, edges) for f in flops]
    counts: dict[int, int] = {}
    for b in bins:
        if b >= 0:
            counts[b] = counts.get(b, 0) + 1
    raw = [1.0 / counts[b] if b >= 0 else 0.0 for b in bins]
    total = sum(raw)
    return [r / total for r in raw] if total else raw


def ks_statistic(a: Sequence[float], b: Sequence[float], weights_a: Sequence[float] | None = None,
                 weights_b: Sequence[float] | None = None) -> float:
    """Kolmogorov-Smirnov distance of two (weighted) EDFs: max |Fa - Fb| over the pooled support; NaN when a side
    has zero total weight (it has no EDF)."""
    if not a or not b:
        raise ValueError("the KS statistic needs two non-empty samples")
    if sum(_check_weights(a, weights_a)) <= 0 or sum(_check_weights(b, weights_b)) <= 0:
        return math.nan
    support = sorted(set(a) | set(b))
    fa = edf_at(a, support, weights_a)
    fb = edf_at(b, support, weights_b)
    return max(abs(x - y) for x, y in zip(fa, fb))



# KS permutation test


def _ks_labelled(values: np.ndarray, weights: np.ndarray, in_a: np.ndarray) -> np.ndarray:
    """ks_statistic for each row of in_a (permutations x pooled values, sorted by value): NaN where a side has
    no weight. Weights travel with their values; each side's EDF is normalized by its own weight."""
    wa = np.where(in_a, weights, 0.0)
    wb = np.where(in_a, 0.0, weights)
    ends = np.flatnonzero(np.r_[values[1:] != values[:-1], True])  # last position of each distinct value
    ca = np.cumsum(wa, axis=1)[:, ends]
    cb = np.cumsum(wb, axis=1)[:, ends]
    ta, tb = ca[:, -1:], cb[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.abs(ca / ta - cb / tb).max(axis=1)
    d[(ta[:, 0] <= 0) | (tb[:, 0] <= 0)] = np.nan
    return d


def ks_permutation_pvalue(a: Sequence[float], b: Sequence[float], weights_a: Sequence[float] | None = None,
                          weights_b: Sequence[float] | None = None, n_perm: int = 2000, seed: int = 0) -> float:
    """Permutation p-value of ks_statistic(a, b, weights_a, weights_b): the share of random relabellings of the
    pooled values whose KS statistic is at least the observed one, (1 + count) / (1 + permutations).

    Each value keeps its weight when relabelled; each sample's weights are first scaled to mean 1, so weights
    normalized per sample (complexity_weights) compare across samples. Relabellings that leave a side with no
    weight are skipped. The samples must be disjoint: to test a restricted subset of a space against all its
    nets, pass the subset and its complement (unweighted, KS(subset, all) is KS(subset, complement) times a
    constant, so the p-value is the same). NaN when a sample is empty or has no weight.

    Not for complexity-normalized samples whose FLOPs differ: a relabelled value keeps the weight of its
    original side, so the permuted statistic is not the normalized statistic of the permuted split, and the test
    rejects about 15% of true nulls at alpha 0.05 (docs/refine.md, Calibration); use ks_stratified_test."""
    av, bv = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if av.size == 0 or bv.size == 0:
        return math.nan
    wa = np.asarray(_check_weights(list(av), weights_a), dtype=float)
    wb = np.asarray(_check_weights(list(bv), weights_b), dtype=float)
    if wa.sum() <= 0 or wb.sum() <= 0:
        return math.nan
    observed = ks_statistic(list(av), list(bv), list(wa), list(wb))
    values = np.r_[av, bv]
    weights = np.r_[wa * (wa.size / wa.sum()), wb * (wb.size / wb.sum())]
    order = np.argsort(values, kind="mergesort")
    values, weights = values[order], weights[order]
    labels = np.r_[np.ones(av.size, bool), np.zeros(bv.size, bool)]
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_perm, 4_000_000 // values.size))  # bounded memory: permutations x pooled values
    at_least, valid = 0, 0
    for start in range(0, n_perm, chunk):
        rows = min(chunk, n_perm - start)
        in_a = rng.permuted(np.tile(labels, (rows, 1)), axis=1)
        d = _ks_labelled(values, weights, in_a)
        d = d[~np.isnan(d)]
        valid += d.size
        at_least += int((d >= observed - 1e-12).sum())  # equal statistics count: ties are common in KS
    return (1 + at_least) / (1 + valid)


# The complexity-normalized KS test that holds its level: labels permuted within FLOPs bins, the weights of
# every permuted split recomputed, the Monte Carlo error of the p-value bounded before a decision is taken.

MC_LEVEL = 0.999  # coverage of the Clopper-Pearson interval of a Monte Carlo p-value that a decision needs


def stratified_weights(bins_a: Sequence[int], bins_b: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Each side's weights, 1 / (its nets in the bin) over the bins both sides populate, scaled to sum to 1: every
    shared bin weighs the same on both sides. A net in a bin the other side leaves empty (or outside, bin < 0)
    gets 0: such a bin has nothing to be compared with. Zeros everywhere when no bin is shared."""
    ba, bb = np.asarray(bins_a, dtype=int), np.asarray(bins_b, dtype=int)
    shared = np.intersect1d(ba[ba >= 0], bb[bb >= 0])
    out = []
    for side in (ba, bb):
        keys, counts = np.unique(side, return_counts=True)
        count = dict(zip(keys.tolist(), counts.tolist()))
        w = np.array([1.0 / count[b] if b in shared else 0.0 for b in side.tolist()])
        out.append(w / shared.size if shared.size else w)
    return out[0], out[1]


def kish_ess(weights: Sequence[float]) -> float:
    """Kish's effective sample size of weights, (sum w)^2 / sum w^2 (as many equal weights carry); 0 for none."""
    w = np.asarray(weights, dtype=float)
    sq = float((w * w).sum())
    return float(w.sum()) ** 2 / sq if sq > 0 else 0.0


@dataclass(frozen=True)
class StratifiedKS:
    """A complexity-normalized two-sample KS test (ks_stratified_test): the statistic, its permutation p-value, the
    p-value's Monte Carlo interval and, against a threshold, the decision."""

    ks: float  # max |Fa - Fb| of the stratified-weighted EDFs (NaN: no shared bin)
    up: float  # max (Fa - Fb): a's EDF above b's, lower values in a
    down: float  # max (Fb - Fa)
    p_value: float  # (1 + permutations at least as extreme) / (1 + permutations)
    p_low: float  # Clopper-Pearson interval of the exact permutation p-value at mc_level
    p_high: float
    permutations: int
    decision: str  # "significant", "not significant", "undecided" (the cap reached), "" (no threshold)
    threshold: float
    ess_a: float  # Kish's effective sample size of each side's weights
    ess_b: float
    left_out_a: int  # nets in FLOPs bins that the other side leaves empty (weight 0, not permuted)
    left_out_b: int
    bins: int  # FLOPs bins both sides populate

    @property
    def strength(self) -> float:
        """KS times sqrt(n_a n_b / (n_a + n_b)) of the effective sizes (the asymptotic KS scale): free of Monte
        Carlo error, it ranks tests on samples of different sizes."""
        return self.ks * math.sqrt(self.ess_a * self.ess_b / (self.ess_a + self.ess_b))


def _mc_interval(at_least: int, n: int, level: float) -> tuple[float, float]:
    """Clopper-Pearson interval of a binomial share at_least / n (scipy.stats.binomtest)."""
    from scipy.stats import binomtest

    ci = binomtest(at_least, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


# long (~85 lines, 15 of them the docstring): one vectorized permutation loop over the arrays it prepares
def ks_stratified_test(a: Sequence[float], b: Sequence[float], flops_a: Sequence[float], flops_b: Sequence[float],
                       edges: Sequence[float], *, threshold: float | None = None, n_perm: int = 1000,
                       max_perm: int = 64_000, mc_level: float = MC_LEVEL, seed: int = 0) -> StratifiedKS:
    """Complexity-normalized KS test of samples a and b (values with their FLOPs): labels permuted within FLOPs bins.

    Each side is weighted by stratified_weights over the bins of `edges` (bin_index); nets in a bin that only one
    side populates are left out (counted in left_out_a/b). A permutation reassigns the labels within each bin, so
    every bin keeps its count on each side and the weights of the permuted split, recomputed from those counts,
    are those of the observed split: the permuted statistic is the normalized statistic of the permuted split,
    and under "no difference within a bin" the p-value is valid whatever error does with FLOPs.

    Without a threshold, n_perm permutations give the p-value. With one, permutations are added in doubling
    batches (n_perm, 2 n_perm, ...) until the Clopper-Pearson interval (at mc_level) of the exact permutation
    p-value lies on one side of the threshold, "significant" below, "not significant" above; at max_perm the
    decision is "undecided". Permutations draw from numpy.random.default_rng(seed).
    """
    av, bv = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    fa, fb = np.asarray(flops_a, dtype=float).ravel(), np.asarray(flops_b, dtype=float).ravel()
    if av.shape != fa.shape or bv.shape != fb.shape:
        raise ValueError("each value needs its FLOPs")
    if n_perm < 1 or max_perm < n_perm:
        raise ValueError(f"need 1 <= n_perm <= max_perm, not {n_perm}, {max_perm}")
    ba = np.array([bin_index(f, edges) for f in fa], dtype=int)
    bb = np.array([bin_index(f, edges) for f in fb], dtype=int)
    wa, wb = stratified_weights(ba, bb)
    nan = math.nan
    thr = nan if threshold is None else float(threshold)
    keep_a, keep_b = wa > 0, wb > 0
    left_a, left_b = int((~keep_a).sum()), int((~keep_b).sum())
    bins = int(np.intersect1d(ba[keep_a], bb[keep_b]).size)
    if not keep_a.any() or not keep_b.any():
        return StratifiedKS(nan, nan, nan, nan, nan, nan, 0, "", thr, 0.0, 0.0, left_a, left_b, 0)
    values = np.r_[av[keep_a], bv[keep_b]]
    bins_all = np.r_[ba[keep_a], bb[keep_b]]
    labels = np.r_[np.ones(int(keep_a.sum()), bool), np.zeros(int(keep_b.sum()), bool)]
    order = np.argsort(values, kind="mergesort")
    values, bins_all, labels = values[order], bins_all[order], labels[order]
    # the weight a net carries on either side depends only on its bin, whose counts permutations keep
    per_a = {int(k): float(w) for k, w in zip(ba[keep_a], wa[keep_a])}
    per_b = {int(k): float(w) for k, w in zip(bb[keep_b], wb[keep_b])}
    w_if_a = np.array([per_a[int(k)] for k in bins_all])
    w_if_b = np.array([per_b[int(k)] for k in bins_all])
    ends = np.flatnonzero(np.r_[values[1:] != values[:-1], True])  # last position of each distinct value

    def signed(in_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        diff = np.cumsum(np.where(in_a, w_if_a, -w_if_b), axis=-1)[..., ends]  # Fa - Fb at each distinct value
        return diff.max(axis=-1), (-diff).max(axis=-1)

    up, down = signed(labels[None, :])
    up, down = max(float(up[0]), 0.0), max(float(down[0]), 0.0)
    observed = max(up, down)
    grouped = np.argsort(bins_all, kind="stable")  # positions grouped by bin
    grouped_labels = labels[grouped]
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // values.size)  # bounded memory: permutations x nets per block
    at_least, done, batch = 0, 0, n_perm
    decision, low, high = "", nan, nan
    while True:
        for start in range(0, batch, chunk):
            rows = min(chunk, batch - start)
            # a random order within each bin: sort by bin + a uniform key; the k-th place of it and of `grouped`
            # hold the same bin, so placing grouped_labels there permutes labels within bins
            place = np.argsort(bins_all[None, :] + rng.random((rows, values.size)), axis=1)
            in_a = np.empty((rows, values.size), bool)
            np.put_along_axis(in_a, place, np.broadcast_to(grouped_labels, (rows, values.size)), axis=1)
            u, d = signed(in_a)
            at_least += int((np.maximum(u, d) >= observed - 1e-12).sum())  # ties count: common in KS
        done += batch
        if threshold is None:
            break
        low, high = _mc_interval(at_least, done, mc_level)
        if high <= thr:
            decision = "significant"
        elif low > thr:
            decision = "not significant"
        elif done >= max_perm:
            decision = "undecided"
        if decision:
            break
        batch = min(done, max_perm - done)  # doubling
    if threshold is None:
        low, high = _mc_interval(at_least, done, mc_level)
    return StratifiedKS(observed, up, down, (1 + at_least) / (1 + done), low, high, done, decision, thr,
                        kish_ess(wa), kish_ess(wb), left_a, left_b, bins)


@dataclass(frozen=True)
class SubsetShift:
    """A subset's values against the rest's, complexity-normalized, before any permutation test."""

    shared: bool  # some FLOPs bin holds values of both sides (else nothing is comparable: NaN below)
    ks_all: float  # KS of the subset's complexity-weighted EDF against all the values'
    mean_diff: float  # the subset's stratified-weighted mean minus the rest's, times 100 (points of error)


def _mean(values: Sequence[float], weights: Sequence[float]) -> float:
    return float(np.average(values, weights=weights)) if sum(weights) > 0 else float(np.mean(values))


def subset_shift(values: Sequence[float], flops: Sequence[float], inside: Sequence[bool],
                 edges: Sequence[float]) -> SubsetShift:
    """How the values marked `inside` sit against the others (each with its FLOPs, binned by `edges`): the subset
    against all of them as the papers plot a restricted space against the original, and the mean difference."""
    a = [v for v, i in zip(values, inside) if i]
    b = [v for v, i in zip(values, inside) if not i]
    fa = [f for f, i in zip(flops, inside) if i]
    wa, wb = stratified_weights([bin_index(f, edges) for f in fa],
                                [bin_index(f, edges) for f, i in zip(flops, inside) if not i])
    if wa.sum() <= 0:
        return SubsetShift(False, math.nan, math.nan)
    ks_all = ks_statistic(a, list(values), complexity_weights(fa, edges), complexity_weights(list(flops), edges))
    return SubsetShift(True, ks_all, 100 * (_mean(a, list(wa)) - _mean(b, list(wb))))
