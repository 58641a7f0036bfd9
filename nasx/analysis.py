"""Pure functions on result tables: Pareto fronts (issue 5), EDFs and KS statistics (issue 6), rank agreement,
bootstrap and t intervals, ablation verdicts (issue 13) and KS permutation p-values (issue 14)."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = ["dominates", "pareto_mask", "pareto_front", "edf", "edf_at", "log_bins", "bin_index",
           "complexity_weights", "ks_statistic", "kendall_tau", "spearman_rho", "bootstrap_ci", "top_k_overlap",
           "regret", "student_t_quantile", "PairedComparison", "paired_comparison", "TrendVerdict",
           "trend_verdict", "ks_permutation_pvalue", "stratified_weights", "kish_ess", "StratifiedKS",
           "ks_stratified_test", "MC_LEVEL"]


def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """a is at least as good as b in every objective and better in one."""
    better = False
    for x, y, up in zip(a, b, maximize):
        if (x < y) if up else (x > y):
            return False
        if x != y:
            better = True
    return better


def pareto_mask(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[bool]:
    """True for every point no other point dominates (identical points are all kept)."""
    if len(maximize) == 2:
        return _pareto_mask_2d(points, maximize)
    return [not any(dominates(q, p, maximize) for q in points) for p in points]


def _pareto_mask_2d(points, maximize) -> list[bool]:
    # sort by the first objective (best first), then the second (best first); sweep keeping the best second
    sign = [1 if up else -1 for up in maximize]
    keyed = sorted(range(len(points)), key=lambda i: (-sign[0] * points[i][0], -sign[1] * points[i][1]))
    mask = [False] * len(points)
    best = None  # best second objective among points with a strictly better first objective
    group: list[int] = []
    for i in keyed + [None]:
        if group and (i is None or points[i][0] != points[group[0]][0]):
            top = sign[1] * points[group[0]][1]
            if best is None or top > best:
                for j in group:
                    if sign[1] * points[j][1] == top:
                        mask[j] = True
                best = top
            group = []
        if i is not None:
            group.append(i)
    return mask


def pareto_front(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the non-dominated points, ordered by the first objective (best first)."""
    mask = pareto_mask(points, maximize)
    sign = 1 if maximize[0] else -1
    return sorted((i for i, m in enumerate(mask) if m), key=lambda i: (-sign * points[i][0], i))


# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# Rank agreement of a proxy with a reference (issue 13). Inputs are 1-D sequences of equal length; a NaN anywhere
# gives NaN (a failed net has no rank), and so do fewer than 2 values: one net has no ranking to agree with.


def _pair(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    xa, ya = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"{xa.size} values against {ya.size}: the two sequences must pair up")
    return xa, ya


def _undefined(x: np.ndarray, y: np.ndarray) -> bool:
    return x.size < 2 or bool(np.isnan(x).any() or np.isnan(y).any())


def _constant(x: np.ndarray, y: np.ndarray) -> bool:
    return bool(np.all(x == x[0]) or np.all(y == y[0]))


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of paired values (scipy.stats.kendalltau, ties corrected); NaN when undefined."""
    from scipy import stats

    xa, ya = _pair(x, y)
    if _undefined(xa, ya) or _constant(xa, ya):
        return math.nan
    return float(np.clip(stats.kendalltau(xa, ya, variant="b").statistic, -1.0, 1.0))


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho (scipy.stats.spearmanr: the Pearson correlation of average ranks); NaN when undefined."""
    from scipy import stats

    xa, ya = _pair(x, y)
    if _undefined(xa, ya) or _constant(xa, ya):
        return math.nan
    return float(np.clip(stats.spearmanr(xa, ya).statistic, -1.0, 1.0))


def _tau_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """kendall_tau of each row of two (resamples x n) arrays at once (scipy's kendalltau takes one pair only)."""
    out = np.empty(x.shape[0])
    chunk = max(1, 2_000_000 // max(1, x.shape[1] ** 2))  # bounded memory: rows x n x n sign matrices
    for s in range(0, x.shape[0], chunk):
        sx = np.sign(x[s:s + chunk, :, None] - x[s:s + chunk, None, :])
        sy = np.sign(y[s:s + chunk, :, None] - y[s:s + chunk, None, :])
        den = np.sqrt(np.abs(sx).sum(axis=(1, 2)) * np.abs(sy).sum(axis=(1, 2)))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s:s + chunk] = np.where(den > 0, (sx * sy).sum(axis=(1, 2)) / den, np.nan)
    return np.clip(out, -1.0, 1.0)


def _rho_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """spearman_rho of each row of two (resamples x n) arrays: scipy.stats.rankdata per row, then Pearson."""
    from scipy import stats

    rx = stats.rankdata(x, axis=1)
    ry = stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(np.where(den > 0, (rx * ry).sum(axis=1) / den, np.nan), -1.0, 1.0)


_BATCHED = {kendall_tau: _tau_rows, spearman_rho: _rho_rows}  # a statistic -> its twin over rows of resamples
MAX_DEGENERATE = 0.01  # bootstrap_ci: above this share of degenerate resamples the interval is NaN, not conditional


def bootstrap_ci(stat: Callable[[np.ndarray, np.ndarray], float], x: Sequence[float], y: Sequence[float],
                 n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                 max_degenerate: float = MAX_DEGENERATE) -> tuple[float, float]:
    """Percentile bootstrap interval of stat(x, y) over resampled (x, y) pairs.

    Args:
        stat: a function of two equal-length float arrays, e.g. kendall_tau or spearman_rho (these two are
            computed over all resamples at once).
        x, y: the paired values (pairs are resampled together, so their dependence is kept).
        n_boot: resamples drawn; level: the interval's coverage; seed: numpy.random.default_rng's seed.
        max_degenerate: a resample whose statistic is undefined (every drawn x, or y, equal) is left out only
            while such resamples are at most this share of all; above it the interval is (NaN, NaN), since an
            interval over the other resamples would be conditional on a non-degenerate draw (at 2 pairs half
            of the draws are degenerate and the rest all give tau = 1).

    Returns (NaN, NaN) for fewer than 2 pairs, a NaN value, or too many degenerate resamples. The measured
    coverage of tau's 95% interval is in docs/fidelity.md.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    xa, ya = _pair(x, y)
    n = xa.size
    if _undefined(xa, ya):
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    batched = _BATCHED.get(stat)
    if batched is not None:
        values = batched(xa[idx], ya[idx])
    else:
        values = np.array([stat(xa[i], ya[i]) for i in idx], dtype=float)
    degenerate = np.isnan(values)
    if degenerate.mean() > max_degenerate:
        return math.nan, math.nan
    tail = (1 - level) / 2
    low, high = np.quantile(values[~degenerate], [tail, 1 - tail])
    return float(low), float(high)


def _inclusion(values: np.ndarray, k: int) -> np.ndarray:
    """Each net's chance of being among the k best (higher is better) when ties are broken uniformly at random:
    1 above the k-th value, (places left) / (nets tied there) at it, 0 below."""
    kth = np.sort(values)[::-1][k - 1]
    above = values > kth
    tied = values == kth
    return np.where(above, 1.0, np.where(tied, (k - above.sum()) / tied.sum(), 0.0))


def _top_k_setup(proxy, reference, k):
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    p, r = _pair(proxy, reference)
    if _undefined(p, r):
        return None
    return p, r, min(k, p.size)


def top_k_overlap(proxy: Sequence[float], reference: Sequence[float], k: int) -> float:
    """Share of the proxy's top-k nets (higher is better) that are also in the reference's top-k, expected over
    the orders of tied nets (each side's ties at the k-th place broken uniformly at random, independently).

    k above the number of nets is cut to it. NaN for fewer than 2 nets or any NaN value; top_k_range gives the
    least and most the tie-breaking can make of it."""
    setup = _top_k_setup(proxy, reference, k)
    if setup is None:
        return math.nan
    p, r, k = setup
    return float(_inclusion(p, k) @ _inclusion(r, k) / k)


def top_k_range(proxy: Sequence[float], reference: Sequence[float], k: int) -> tuple[float, float]:
    """The least and the most top_k_overlap over every way of breaking ties at the k-th place on either side."""
    setup = _top_k_setup(proxy, reference, k)
    if setup is None:
        return math.nan, math.nan
    p, r, k = setup
    ip, ir = _inclusion(p, k), _inclusion(r, k)
    sure_p, tied_p, sure_r, tied_r = ip == 1, (0 < ip) & (ip < 1), ir == 1, (0 < ir) & (ir < 1)
    if not tied_p.any():  # 0 < inclusion < 1 marks the tied nets that only some orders take
        tied_p = np.zeros_like(sure_p)
    if not tied_r.any():
        tied_r = np.zeros_like(sure_r)
    picks_p, picks_r = k - int(sure_p.sum()), k - int(sure_r.sum())  # places the tied nets share, each side
    fixed = int((sure_p & sure_r).sum())
    gain_p = int((tied_p & sure_r).sum())  # a tied proxy net the reference surely takes: +1 when taken
    gain_r = int((tied_r & sure_p).sum())
    both = int((tied_p & tied_r).sum())  # tied on both sides: +1 only when both take it
    idle_p, idle_r = int(tied_p.sum()) - gain_p - both, int(tied_r.sum()) - gain_r - both
    low, high = math.inf, -math.inf
    for xp in range(max(0, picks_p - gain_p - idle_p), min(picks_p, both) + 1):  # proxy's picks among `both`
        for xr in range(max(0, picks_r - gain_r - idle_r), min(picks_r, both) + 1):
            least = max(0, picks_p - xp - idle_p) + max(0, picks_r - xr - idle_r) + max(0, xp + xr - both)
            most = min(gain_p, picks_p - xp) + min(gain_r, picks_r - xr) + min(xp, xr)
            low, high = min(low, least), max(high, most)
    return (fixed + low) / k, (fixed + high) / k


def _regret_setup(proxy, reference):
    p, r = _pair(proxy, reference)
    if _undefined(p, r):
        return None
    return r.max() - r[p == p.max()]  # the regret of each net the proxy ranks first (ties: several)


def regret(proxy: Sequence[float], reference: Sequence[float]) -> float:
    """Reference value of the reference's best net minus that of the proxy's best (higher is better), expected
    over the proxy's tied best nets (each equally likely to be taken). NaN for fewer than 2 nets or a NaN value;
    regret_range gives the best and worst case."""
    lost = _regret_setup(proxy, reference)
    return math.nan if lost is None else float(lost.mean())


def regret_range(proxy: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """The least and the most regret over the orders of the proxy's tied best nets."""
    lost = _regret_setup(proxy, reference)
    return (math.nan, math.nan) if lost is None else (float(lost.min()), float(lost.max()))


# ---------------------------------------------------------------------------------------------
# Student t intervals (scipy.stats.t)


def student_t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t distribution with df (> 0, not necessarily whole) degrees of freedom."""
    from scipy import stats

    if not 0 < p < 1:
        raise ValueError(f"p must lie in (0, 1), not {p}")
    if not df > 0:
        raise ValueError(f"df must be > 0, not {df}")
    return float(stats.t.ppf(p, df))


def _t_tail(t: float, df: float) -> float:
    """P(T > t) for Student's t with df degrees of freedom."""
    from scipy import stats

    return float(stats.t.sf(t, df))


@dataclass(frozen=True)
class PairedComparison:
    """Mean and t interval of per-seed differences a - b."""

    mean_diff: float
    sd_diff: float  # sample standard deviation (n - 1 in the denominator)
    low: float
    high: float
    n: int
    level: float
    p_value: float  # two-sided paired t test (as scipy.stats.ttest_rel)
    significant: bool  # the interval excludes 0


def _t_summary(values: np.ndarray, level: float) -> PairedComparison:
    """Mean, sample sd, t interval and two-sided p-value (mean = 0) of values. With fewer than 2 values, a NaN,
    or values all equal (no spread: the t statistic is undefined, so no evidence either way) the interval and
    p-value are NaN and significant is False."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    n = int(values.size)
    if n == 0 or np.isnan(values).any():
        return PairedComparison(math.nan, math.nan, math.nan, math.nan, n, level, math.nan, False)
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if n > 1 else math.nan
    if n < 2 or np.all(values == values[0]):
        return PairedComparison(mean, sd, math.nan, math.nan, n, level, math.nan, False)
    se = sd / math.sqrt(n)
    half = student_t_quantile((1 + level) / 2, n - 1) * se
    p_value = min(1.0, 2 * _t_tail(abs(mean) / se, n - 1))
    low, high = mean - half, mean + half
    return PairedComparison(mean, sd, low, high, n, level, p_value, bool(low > 0 or high < 0))


def paired_comparison(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedComparison:
    """Paired t comparison of two settings measured on the same seeds: mean of a - b with its t interval.

    a[i] and b[i] must come from the same seed. With fewer than 2 pairs, a NaN, or every difference equal
    (no spread to judge it by) the interval and p-value are NaN and significant is False."""
    xa, xb = _pair(a, b)
    return _t_summary(xa - xb, level)


# ---------------------------------------------------------------------------------------------
# Ablation verdicts: does a quantity (error) fall, rise, or stay within seed noise as a setting grows?


@dataclass(frozen=True)
class TrendVerdict:
    """The verdict on an ablation's trend: direction, the fixed-effects slope and its t interval, the mean of
    per-seed slopes beside it, and a sentence."""

    direction: str  # "falls", "rises" or "flat" (the interval holds 0, or too few runs to judge)
    slope: float  # common least-squares slope of a seed fixed-effects regression over all runs, per doubling
    low: float
    high: float
    n_seeds: int  # seeds with at least one run
    level: float
    per_seed: tuple[float, ...]  # each seed's own slope, over the settings every seed has
    text: str
    n_runs: int = 0  # runs in the regression
    df: int = 0  # its residual degrees of freedom: runs - seeds - 1
    p_value: float = math.nan  # two-sided, slope = 0
    per_seed_mean: float = math.nan  # the mean of per_seed, with its t interval over seeds (n_seeds - 1 df)
    per_seed_low: float = math.nan
    per_seed_high: float = math.nan


def _decimals(*values: float) -> int:
    """Decimals that give the largest magnitude two significant digits."""
    top = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    return max(0, 1 - math.floor(math.log10(top))) if top > 0 else 1


def fixed_effects_slope(xs: np.ndarray, values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, int, float]:
    """The common slope of values (settings x seeds, NaN: no run) on xs with one intercept per seed, by ordinary
    least squares over every run (numpy lstsq), its Student t interval and two-sided p-value on the residual
    degrees of freedom (runs - seeds - 1): (slope, low, high, df, p). NaN where df < 1 or the fit is exact."""
    from scipy import stats

    ok = ~np.isnan(values)
    seeds = [j for j in range(values.shape[1]) if ok[:, j].any()]
    rows, cols = np.nonzero(ok[:, seeds])
    y = values[:, seeds][rows, cols]
    design = np.column_stack([xs[rows], np.eye(len(seeds))[cols]])
    df = y.size - len(seeds) - 1
    if df < 1 or np.ptp(xs[rows]) == 0:
        return math.nan, math.nan, math.nan, max(df, 0), math.nan
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    if rank < design.shape[1]:  # x does not vary within any seed: the slope is not identified
        return math.nan, math.nan, math.nan, df, math.nan
    resid = y - design @ coef
    sigma2 = float(resid @ resid) / df
    se = math.sqrt(sigma2 * np.linalg.inv(design.T @ design)[0, 0])
    slope = float(coef[0])
    if se == 0:
        return slope, math.nan, math.nan, df, math.nan
    half = float(stats.t.ppf((1 + level) / 2, df)) * se
    return slope, slope - half, slope + half, df, float(2 * stats.t.sf(abs(slope) / se, df))


def trend_verdict(values_by_setting: Mapping[float, Sequence[float]], level: float = 0.95, *,
                  quantity: str = "error", setting: str = "the setting", unit: str = "points",
                  log_scale: bool = True) -> TrendVerdict:
    """Whether quantity falls, rises or stays within seed noise as the setting grows.

    values_by_setting maps each setting value (e.g. cardinality 1, 2, 4, 8, 32) to the quantity measured with
    seeds 0, 1, ..., in the same seed order for every setting (NaN marks a missing run). x is log2(setting)
    (the change per doubling; the setting itself when log_scale is False).

    Method (the verdict): a seed fixed-effects regression over every run, quantity = a_seed + slope * x + noise,
    by least squares; the slope's Student t interval on runs - seeds - 1 degrees of freedom (11 for 3 seeds x 5
    settings). Each run is its own training, so its noise is independent given the seed's offset, which the
    seed intercepts absorb; the interval is exact under normal noise, and a missing run only drops one row.
    The trend "falls" or "rises" when the interval excludes 0; otherwise, or with fewer than 2 seeds or no
    residual degrees of freedom, it is "flat" (within seed noise, or not judged).
    Beside it (not the verdict): each seed's own slope over the settings every seed has (the same settings for
    all seeds), their mean and its t interval on seeds - 1 degrees of freedom (4.30 x the s.e. at 3 seeds).
    """
    if len(values_by_setting) < 2:
        raise ValueError("a trend needs at least 2 settings")
    settings = sorted(float(s) for s in values_by_setting)
    if log_scale and settings[0] <= 0:
        raise ValueError("settings must be > 0 on a log scale (pass log_scale=False)")
    rows = [np.asarray(values_by_setting[s], dtype=float).ravel() for s in sorted(values_by_setting)]
    if len({r.size for r in rows}) != 1:
        raise ValueError("every setting needs one value per seed, in the same seed order (NaN for a missing run)")
    values = np.vstack(rows)  # settings x seeds
    xs = np.log2(settings) if log_scale else np.asarray(settings)
    present = ~np.isnan(values)
    seeds = [j for j in range(values.shape[1]) if present[:, j].any()]
    used = [j for j in seeds if present[:, j].sum() >= 2]  # seeds that span at least 2 settings
    common = present[:, seeds].all(axis=1) if seeds else np.zeros(len(settings), bool)
    slopes = []
    if common.sum() >= 2:  # per-seed slopes on the same settings for every seed
        x = xs[common] - xs[common].mean()
        for j in seeds:
            y = values[common, j]
            slopes.append(float(x @ (y - y.mean()) / (x @ x)))
    beside = _t_summary(np.asarray(slopes), level)
    if len(used) >= 2:
        slope, low, high, df, p_value = fixed_effects_slope(xs, values[:, used], level)
    else:
        slope, low, high, df, p_value = math.nan, math.nan, math.nan, 0, math.nan
    n_runs = int(present[:, used].sum()) if used else 0
    per = "per doubling" if log_scale else "per unit"
    pct = f"{level * 100:g}%"
    if not math.isfinite(low):
        direction = "flat"
        d = _decimals(slope)
        shown = "no slope" if slope != slope else f"slope {slope:.{d}f} {unit} {per}"
        text = (f"{quantity} cannot be judged against seed noise with {len(used)} usable seed(s) and {n_runs} runs "
                f"as {setting} rises ({shown})")
    else:
        d = _decimals(high - slope)  # two significant digits of the interval's half-width
        detail = (f"slope {slope:.{d}f} {unit} {per}, {pct} CI {low:.{d}f}..{high:.{d}f}, {n_runs} runs of "
                  f"{len(used)} seeds")
        if high < 0:
            direction, text = "falls", f"{quantity} falls as {setting} rises ({detail})"
        elif low > 0:
            direction, text = "rises", f"{quantity} rises as {setting} rises ({detail})"
        else:
            direction, text = "flat", f"differences in {quantity} across {setting} are within seed noise ({detail})"
    return TrendVerdict(direction, slope, low, high, len(seeds), level, tuple(slopes), text, n_runs=n_runs, df=df,
                        p_value=p_value, per_seed_mean=beside.mean_diff, per_seed_low=beside.low,
                        per_seed_high=beside.high)


__all__ += ["top_k_range", "regret_range", "fixed_effects_slope", "MAX_DEGENERATE"]  # this section's later additions

# ---------------------------------------------------------------------------------------------
# KS permutation test (issue 14)


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

    Not for complexity-normalized samples whose FLOPs differ (issue 18): a relabelled value keeps the weight of its
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


# ---------------------------------------------------------------------------------------------
# The complexity-normalized KS test that holds its level (issue 18): labels permuted within FLOPs bins, the weights of
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


def _mc_interval(at_least: int, n: int, level: float) -> tuple[float, float]:
    """Clopper-Pearson interval of a binomial share at_least / n (scipy.stats.binomtest)."""
    from scipy.stats import binomtest

    ci = binomtest(at_least, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


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
