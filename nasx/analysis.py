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


def _tie_pairs(sorted_values: np.ndarray) -> int:
    """Pairs tied with each other in an already sorted 1-D array: sum of t(t-1)/2 over runs of equal values."""
    if sorted_values.size == 0:
        return 0
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1], True])
    t = np.diff(starts)
    return int((t * (t - 1) // 2).sum())


def _count_inversions(r: np.ndarray) -> int:
    """Pairs i < j with r[i] > r[j] for non-negative integer ranks r, in O(n log^2 n) by bottom-up merging."""
    n = r.size
    m = int(r.max()) + 1 if n else 1
    pos = np.arange(n)
    total = 0
    s = 1
    while s < n:
        # blocks of 2s positions, a left and a right half of s each: count left elements above each right element
        block = pos // (2 * s)
        right = (pos // s) % 2 == 1
        left_keys = np.sort(block[~right] * m + r[~right])  # one sorted run per block, blocks kept apart by m
        br = block[right]
        at_most = np.searchsorted(left_keys, br * m + r[right], side="right")
        block_end = np.searchsorted(left_keys, (br + 1) * m, side="left")
        total += int((block_end - at_most).sum())
        s *= 2
    return total


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of paired values (ties corrected, as scipy.stats.kendalltau); NaN when undefined."""
    xa, ya = _pair(x, y)
    if _undefined(xa, ya):
        return math.nan
    n = xa.size
    if n <= 160:  # all pairs at once: faster below ~180 values (fidelity studies, bootstrap loops)
        sx = np.sign(xa[:, None] - xa[None, :])
        sy = np.sign(ya[:, None] - ya[None, :])
        den = math.sqrt(float(np.abs(sx).sum()) * float(np.abs(sy).sum()))
        return float(np.clip((sx * sy).sum() / den, -1.0, 1.0)) if den > 0 else math.nan
    order = np.lexsort((ya, xa))  # by x, then y: pairs tied in x are never counted as inversions
    xs, ys = xa[order], ya[order]
    n0 = n * (n - 1) // 2
    n1 = _tie_pairs(xs)
    n2 = _tie_pairs(np.sort(ya))
    joint = np.flatnonzero(np.r_[True, (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1]), True])
    tj = np.diff(joint)
    n3 = int((tj * (tj - 1) // 2).sum())
    discordant = _count_inversions(np.unique(ys, return_inverse=True)[1].ravel())
    den = math.sqrt(float(n0 - n1) * float(n0 - n2))
    if den == 0:
        return math.nan
    return float(np.clip((n0 - n1 - n2 + n3 - 2 * discordant) / den, -1.0, 1.0))


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the average of their ranks."""
    order = np.argsort(a, kind="mergesort")
    sa = a[order]
    new = np.r_[True, sa[1:] != sa[:-1]]
    dense = np.cumsum(new)
    ends = np.r_[np.flatnonzero(new), a.size]  # run k covers sorted positions ends[k-1]..ends[k]-1
    ranks = np.empty(a.size)
    ranks[order] = 0.5 * (ends[dense] + ends[dense - 1] + 1)
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: the Pearson correlation of average ranks (as scipy.stats.spearmanr); NaN when undefined."""
    xa, ya = _pair(x, y)
    if _undefined(xa, ya):
        return math.nan
    rx, ry = _average_ranks(xa), _average_ranks(ya)
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(np.clip((rx @ ry) / den, -1.0, 1.0)) if den > 0 else math.nan


def bootstrap_ci(stat: Callable[[np.ndarray, np.ndarray], float], x: Sequence[float], y: Sequence[float],
                 n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of stat(x, y) over resampled (x, y) pairs; NaN resamples are skipped.

    Args:
        stat: a function of two equal-length float arrays, e.g. kendall_tau or spearman_rho.
        x, y: the paired values (pairs are resampled together, so their dependence is kept).
        n_boot: resamples drawn; level: the interval's coverage; seed: numpy.random.default_rng's seed.

    Returns (NaN, NaN) for fewer than 2 pairs or when every resample is degenerate (e.g. a constant
    sequence); skipped resamples (all pairs tied) make the interval conditional on non-degenerate draws.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    xa, ya = _pair(x, y)
    n = xa.size
    if n < 2:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    values = np.array([stat(xa[i], ya[i]) for i in idx], dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def _top(values: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-values, kind="stable")[:k]  # higher is better; among equal values the first comes first


def top_k_overlap(proxy: Sequence[float], reference: Sequence[float], k: int) -> float:
    """Share of the proxy's top-k nets (higher is better) that are also in the reference's top-k.

    Ties at the k-th place are broken by position (the first wins); k above the number of nets is cut to it.
    NaN for fewer than 2 nets or any NaN value."""
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    p, r = _pair(proxy, reference)
    if _undefined(p, r):
        return math.nan
    k = min(k, p.size)
    return float(np.isin(_top(p, k), _top(r, k)).sum() / k)


def regret(proxy: Sequence[float], reference: Sequence[float]) -> float:
    """Reference value of the reference's best net minus that of the proxy's best (higher is better; ties: the first).

    NaN for fewer than 2 nets or any NaN value."""
    p, r = _pair(proxy, reference)
    if _undefined(p, r):
        return math.nan
    return float(r[int(np.argmax(r))] - r[int(np.argmax(p))])


# ---------------------------------------------------------------------------------------------
# Student t intervals without scipy: the regularized incomplete beta function by its continued fraction (Lentz's
# method, as in Numerical Recipes' betacf), the t tail from it, and the quantile by a safeguarded Newton iteration.


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-16:
            break
    return h


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """The regularized incomplete beta I_x(a, b), with y = 1 - x passed exactly to keep precision near 1."""
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, y) / b


def _t_tail(t: float, df: float) -> float:
    """P(T > t) for Student's t with df degrees of freedom, t >= 0."""
    t2 = t * t
    return 0.5 * _betainc(df / 2, 0.5, df / (df + t2), t2 / (df + t2))


def _t_pdf(t: float, df: float) -> float:
    return math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
                    - (df + 1) / 2 * math.log1p(t * t / df))


def student_t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t distribution with df (> 0, not necessarily whole) degrees of freedom."""
    if not 0 < p < 1:
        raise ValueError(f"p must lie in (0, 1), not {p}")
    if not df > 0:
        raise ValueError(f"df must be > 0, not {df}")
    if p == 0.5:
        return 0.0
    q = min(p, 1 - p)  # solve P(T > t) = q for t > 0, then mirror
    lo, hi = 0.0, 1.0
    while _t_tail(hi, df) > q:
        lo, hi = hi, hi * 2
    t = 0.5 * (lo + hi)
    for _ in range(200):
        f = _t_tail(t, df) - q  # decreasing in t
        if f > 0:
            lo = t
        else:
            hi = t
        if f == 0:
            break
        step = t + f / _t_pdf(t, df)
        t_new = step if lo < step < hi else 0.5 * (lo + hi)  # Newton inside the bracket, bisection otherwise
        if abs(t_new - t) <= 1e-14 * max(1.0, abs(t)) or hi - lo <= 1e-15 * hi:
            t = t_new
            break
        t = t_new
    return t if p > 0.5 else -t


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
    """Mean, sample sd, t interval and two-sided p-value (mean = 0) of values."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    n = int(values.size)
    if n == 0 or np.isnan(values).any():
        return PairedComparison(math.nan, math.nan, math.nan, math.nan, n, level, math.nan, False)
    mean = float(values.mean())
    if n < 2:
        return PairedComparison(mean, math.nan, math.nan, math.nan, n, level, math.nan, False)
    sd = float(values.std(ddof=1))
    se = sd / math.sqrt(n)
    half = student_t_quantile((1 + level) / 2, n - 1) * se
    if se > 0:
        p_value = min(1.0, 2 * _t_tail(abs(mean) / se, n - 1))
    else:  # every difference equal: the interval is a point
        p_value = 0.0 if mean != 0 else 1.0
    low, high = mean - half, mean + half
    return PairedComparison(mean, sd, low, high, n, level, p_value, bool(low > 0 or high < 0))


def paired_comparison(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedComparison:
    """Paired t comparison of two settings measured on the same seeds: mean of a - b with its t interval.

    a[i] and b[i] must come from the same seed. With fewer than 2 pairs (or a NaN) the sd, interval and
    p-value are NaN and significant is False."""
    xa, xb = _pair(a, b)
    return _t_summary(xa - xb, level)


# ---------------------------------------------------------------------------------------------
# Ablation verdicts: does a quantity (error) fall, rise, or stay within seed noise as a setting grows?


@dataclass(frozen=True)
class TrendVerdict:
    """The verdict on an ablation's trend: direction, mean per-seed slope, its t interval, and a sentence."""

    direction: str  # "falls", "rises" or "flat" (the interval holds 0, or too few seeds to judge)
    slope: float  # mean over seeds of each seed's least-squares slope, per doubling (or per unit)
    low: float
    high: float
    n_seeds: int
    level: float
    per_seed: tuple[float, ...]
    text: str


def _decimals(*values: float) -> int:
    """Decimals that give the largest magnitude two significant digits."""
    top = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    return max(0, 1 - math.floor(math.log10(top))) if top > 0 else 1


def trend_verdict(values_by_setting: Mapping[float, Sequence[float]], level: float = 0.95, *,
                  quantity: str = "error", setting: str = "the setting", unit: str = "points",
                  log_scale: bool = True) -> TrendVerdict:
    """Whether quantity falls, rises or stays within seed noise as the setting grows, from per-seed slopes.

    values_by_setting maps each setting value (e.g. cardinality 1, 2, 4, 8, 32) to the quantity measured with
    seeds 0, 1, ..., in the same seed order for every setting (NaN marks a missing run). Method: for each
    seed, the least-squares slope of the quantity against log2(setting) (the change per doubling; against the
    setting itself when log_scale is False) over that seed's runs; the estimate is the mean of these per-seed
    slopes and its interval a Student t interval on them (n_seeds - 1 degrees of freedom). Seeds are the
    replicates, so pairing by seed removes a seed's shared luck, and with 3 seeds the t quantile (4.30 at
    95%) keeps the interval honestly wide. The trend "falls" or "rises" when the interval excludes 0;
    otherwise, or with fewer than 2 usable seeds, it is "flat" (within seed noise, or not judged).
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
    slopes = []
    for column in values.T:
        ok = ~np.isnan(column)
        if ok.sum() < 2:
            continue
        x, y = xs[ok], column[ok]
        x = x - x.mean()
        slopes.append(float(x @ (y - y.mean()) / (x @ x)))
    summary = _t_summary(np.asarray(slopes), level)
    per = "per doubling" if log_scale else "per unit"
    d = _decimals(summary.mean_diff, summary.low, summary.high)
    pct = f"{level * 100:g}%"
    if summary.n < 2:
        direction = "flat"
        shown = "no slope" if summary.n == 0 else f"slope {summary.mean_diff:.{d}f} {unit} {per}"
        text = (f"{quantity} cannot be judged against seed noise with {summary.n} usable seed(s) "
                f"as {setting} rises ({shown})")
    else:
        detail = (f"slope {summary.mean_diff:.{d}f} {unit} {per}, {pct} CI "
                  f"{summary.low:.{d}f}..{summary.high:.{d}f}, {summary.n} seeds")
        if summary.high < 0:
            direction, text = "falls", f"{quantity} falls as {setting} rises ({detail})"
        elif summary.low > 0:
            direction, text = "rises", f"{quantity} rises as {setting} rises ({detail})"
        else:
            direction, text = "flat", f"differences in {quantity} across {setting} are within seed noise ({detail})"
    return TrendVerdict(direction, summary.mean_diff, summary.low, summary.high, summary.n, level,
                        tuple(slopes), text)


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
