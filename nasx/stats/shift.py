"""A complexity-adjusted location shift of one sample against another: the OLS t of membership with FLOPs bins as fixed
effects and one log-FLOPs slope within bins, its one-sided p-value from permutations within bins (Besag-Clifford
sequential stopping, as many permutations as the threshold needs), the p-value's Monte Carlo interval."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .edf import MC_LEVEL, bin_index

__all__ = ["AdjustedShift", "adjusted_shift_test", "STOP_HITS", "permutations_needed", "clopper_pearson"]

STOP_HITS = 20  # Besag-Clifford: stop once this many permutations are at least as extreme as the observed split


def clopper_pearson(k: int, n: int, level: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial share k / n at `level`, from beta quantiles (as
    scipy.stats.binomtest's proportion_ci "exact", without its root search)."""
    from scipy.stats import beta

    tail = (1 - level) / 2
    low = float(beta.ppf(tail, k, n - k + 1)) if k > 0 else 0.0
    high = float(beta.ppf(1 - tail, k + 1, n - k)) if k < n else 1.0
    return low, high


def permutations_needed(threshold: float, hits: int = STOP_HITS) -> int:
    """Permutations that let the sequential p-value reach `threshold`: ceil(hits / threshold) (then an early stop
    at `hits` exceedances means p >= threshold, a full run p = (1 + b) / (1 + N) < threshold when b is small)."""
    return int(math.ceil(hits / threshold))


@dataclass(frozen=True)
class AdjustedShift:
    """adjusted_shift_test's outcome: the shift, its t, the one-sided permutation p-value, its Monte Carlo interval
    and, against a threshold, the decision."""

    shift: float  # a's value minus b's at the same FLOPs (same bin, same log FLOPs): the membership coefficient
    t: float  # its OLS t (NaN: no shared bin, or membership collinear with the bins and log FLOPs)
    df: int  # residual degrees of freedom of the regression
    p_value: float  # one-sided (a lower), from within-bin permutations (Besag-Clifford sequential)
    p_low: float  # Clopper-Pearson interval (mc_level) of the exact permutation p-value
    p_high: float
    permutations: int  # drawn
    hits: int  # of them, at least as extreme as the observed split
    decision: str  # "significant", "not significant", "undecided" (max_perm ran out), "" (no threshold)
    threshold: float
    borderline: bool  # the Monte Carlo interval holds the threshold: another permutation seed may decide otherwise
    left_out_a: int  # nets in FLOPs bins the other side leaves empty (no within-bin comparison)
    left_out_b: int
    bins: int  # FLOPs bins both sides populate


def _nuisance(values: np.ndarray, logf: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values and log FLOPs with their bin means taken out, and the unit direction of log FLOPs within bins (zeros
    when every bin holds one FLOPs value): the residual-maker of bins + one within-bin slope is y - bin means -
    (g.y) g."""
    yb, fb = values.copy(), logf.copy()
    for b in np.unique(bins):
        m = bins == b
        yb[m] -= yb[m].mean()
        fb[m] -= fb[m].mean()
    norm = float(np.sqrt(fb @ fb))
    g = fb / norm if norm > 1e-12 * max(1.0, float(np.abs(logf).max())) else np.zeros_like(fb)
    return yb, fb, g


# long (~80 lines, 20 of them the docstring): the sequential permutation loop over the arrays it prepares
def adjusted_shift_test(a: Sequence[float], b: Sequence[float], flops_a: Sequence[float], flops_b: Sequence[float],
                        edges: Sequence[float], *, threshold: Optional[float] = None, n_perm: int = 1000,
                        max_perm: Optional[int] = None, mc_level: float = MC_LEVEL, seed: int = 0,
                        hits: int = STOP_HITS) -> AdjustedShift:
    """Is a lower than b at the same FLOPs? OLS of value ~ FLOPs bin + log FLOPs (one slope, within bins) + [in a],
    the t of the last term, its null from permutations of the labels within bins.

    Nets in a bin that only one side populates are left out (counted). A within-bin permutation keeps every bin's
    count on each side; the statistic is studentized and adjusted for the FLOPs trend inside a bin, so a restriction
    that picks the larger nets of each bin does not pass for better (the calibration: docs/refine.md).

    Without a threshold, n_perm permutations give p = (1 + b) / (1 + n_perm). With one, permutations are drawn in
    doubling batches from n_perm until `hits` of them are at least as extreme as the observed t (Besag and Clifford
    1991: p = hits / permutations drawn, then >= threshold) or until permutations_needed(threshold) are drawn
    (p = (1 + b) / (1 + N)): both are valid p-values, and "significant" is p <= threshold. `max_perm` caps the
    permutations: where it stops the count short of what the threshold needs and the p-value's Monte Carlo interval
    still holds the threshold, the decision is "undecided". `borderline` marks a decision whose Monte Carlo
    interval (Clopper-Pearson at mc_level of the exact permutation p-value) holds the threshold.
    """
    av, bv = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    fa, fb = np.asarray(flops_a, dtype=float).ravel(), np.asarray(flops_b, dtype=float).ravel()
    if av.shape != fa.shape or bv.shape != fb.shape:
        raise ValueError("each value needs its FLOPs")
    if n_perm < 1 or (max_perm is not None and max_perm < n_perm):
        raise ValueError(f"need 1 <= n_perm <= max_perm, not {n_perm}, {max_perm}")
    ba = np.array([bin_index(f, edges) for f in fa], dtype=int)
    bb = np.array([bin_index(f, edges) for f in fb], dtype=int)
    shared = np.intersect1d(ba[ba >= 0], bb[bb >= 0])
    keep_a, keep_b = np.isin(ba, shared), np.isin(bb, shared)
    left_a, left_b = int((~keep_a).sum()), int((~keep_b).sum())
    thr = math.nan if threshold is None else float(threshold)
    nan = math.nan
    if shared.size == 0:  # no bin holds nets of both sides: nothing to compare
        return AdjustedShift(nan, nan, 0, nan, nan, nan, 0, 0, "", thr, False, left_a, left_b, 0)
    values = np.r_[av[keep_a], bv[keep_b]]
    logf = np.log(np.r_[fa[keep_a], fb[keep_b]])
    bins = np.r_[ba[keep_a], bb[keep_b]]
    labels = np.r_[np.ones(int(keep_a.sum())), np.zeros(int(keep_b.sum()))]
    order = np.argsort(bins, kind="stable")  # laid out grouped by bin: a permutation shuffles within each group
    values, logf, bins, labels = values[order], logf[order], bins[order], labels[order]
    yb, _, g = _nuisance(values, logf, bins)
    r_y = yb - (g @ yb) * g
    syy = float(r_y @ r_y)
    df = values.size - shared.size - int(g.any()) - 1
    counts = {int(k): (float(labels[bins == k].sum()), int((bins == k).sum())) for k in shared}
    c0 = float(labels.sum()) - sum(na * na / n for na, n in counts.values())  # x'M_bins x: the same for every split

    def t_of(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sxy, xg = x @ r_y, x @ g
        sxx = c0 - xg * xg
        with np.errstate(invalid="ignore", divide="ignore"):
            beta = sxy / sxx
            rss = np.maximum(syy - sxy * beta, 0.0)
            return beta, beta / np.sqrt(rss / df / sxx)

    beta, t_obs = (float(v) for v in t_of(labels))
    if df < 1 or not math.isfinite(t_obs) or c0 - float(labels @ g) ** 2 <= 1e-12:
        return AdjustedShift(beta, nan, max(df, 0), nan, nan, nan, 0, 0, "", thr, False, left_a, left_b,
                             int(shared.size))
    need = n_perm if threshold is None else max(n_perm, permutations_needed(thr, hits))
    total = need if max_perm is None else min(need, max_perm)
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // values.size)  # bounded memory: permutations x nets per block
    at_least, done, batch, stopped = 0, 0, n_perm, False
    tol = 1e-9 * max(1.0, abs(t_obs))
    while done < total and not stopped:
        batch = min(batch, total - done)
        for start in range(0, batch, chunk):
            rows = min(chunk, batch - start)
            # a random order within each bin (sort by bin + a uniform key; bins are grouped): the labels taken in
            # that order are the labels permuted within bins
            place = np.argsort(bins[None, :] + rng.random((rows, values.size)), axis=1)
            _, t_perm = t_of(labels[place])
            extreme = np.cumsum(t_perm <= t_obs + tol)
            if threshold is not None and at_least + extreme[-1] >= hits:
                stop_at = int(np.searchsorted(extreme, hits - at_least))  # the permutation that makes `hits`
                done += stop_at + 1
                at_least = hits
                stopped = True
                break
            at_least += int(extreme[-1])
            done += rows
        batch = done  # doubling
    p = at_least / done if stopped else (1 + at_least) / (1 + done)
    low, high = clopper_pearson(at_least, done, mc_level)
    decision = ""
    if threshold is not None:
        if p <= thr:
            decision = "significant"
        elif stopped or done >= need or low > thr:
            decision = "not significant"
        else:
            decision = "undecided"
    borderline = threshold is not None and low <= thr < high
    return AdjustedShift(beta, t_obs, df, p, low, high, done, at_least, decision, thr, borderline, left_a, left_b,
                         int(shared.size))
