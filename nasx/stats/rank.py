"""Rank agreement of a proxy with a reference: Kendall tau, Spearman rho, paired-bootstrap intervals, top-k overlap
and regret (expected over the orders of tied nets, with their range)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

__all__ = ["kendall_tau", "spearman_rho", "bootstrap_ci", "paired_difference", "PairedDifference", "compare_verdict", "top_k_overlap", "top_k_range", "regret", "regret_range", "pair_arrays", "MAX_DEGENERATE"]


# Rank agreement of a proxy with a reference. Inputs are 1-D sequences of equal length; a NaN anywhere
# gives NaN (a failed net has no rank), and so do fewer than 2 values: one net has no ranking to agree with.


def pair_arrays(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Two sequences as float arrays of one shape (ValueError when they do not pair up)."""
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

    xa, ya = pair_arrays(x, y)
    if _undefined(xa, ya) or _constant(xa, ya):
        return math.nan
    return float(np.clip(stats.kendalltau(xa, ya, variant="b").statistic, -1.0, 1.0))


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho (scipy.stats.spearmanr: the Pearson correlation of average ranks); NaN when undefined."""
    from scipy import stats

    xa, ya = pair_arrays(x, y)
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
    xa, ya = pair_arrays(x, y)
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


@dataclass(frozen=True)
class PairedDifference:
    """stat(a, y) - stat(b, y) over the same nets, with its paired percentile bootstrap interval."""

    value: float
    low: float
    high: float


def paired_difference(stat: Callable[[np.ndarray, np.ndarray], float], a: Sequence[float], b: Sequence[float],
                      y: Sequence[float], n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                      max_degenerate: float = MAX_DEGENERATE) -> PairedDifference:
    """stat(a, y) - stat(b, y) and its percentile bootstrap interval: nets resampled with their three values together
    (two rankings of the same nets against one reference), as bootstrap_ci does for one; NaN as bootstrap_ci."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    aa, ya = pair_arrays(a, y)
    ba, _ = pair_arrays(b, y)
    if _undefined(aa, ya) or _undefined(ba, ya):
        return PairedDifference(math.nan, math.nan, math.nan)
    value = stat(aa, ya) - stat(ba, ya)
    idx = np.random.default_rng(seed).integers(0, ya.size, size=(n_boot, ya.size))
    batched = _BATCHED.get(stat)
    if batched is not None:
        values = batched(aa[idx], ya[idx]) - batched(ba[idx], ya[idx])
    else:
        values = np.array([stat(aa[i], ya[i]) - stat(ba[i], ya[i]) for i in idx], dtype=float)
    degenerate = np.isnan(values)
    if degenerate.mean() > max_degenerate or not math.isfinite(value):
        return PairedDifference(value, math.nan, math.nan)
    tail = (1 - level) / 2
    low, high = np.quantile(values[~degenerate], [tail, 1 - tail])
    return PairedDifference(float(value), float(low), float(high))


def compare_verdict(diff: PairedDifference, higher_is_better: bool = True) -> str:
    """"better" when the interval of the difference lies on the good side of 0, "worse" on the other, else "no
    evidence either way" (also when undefined)."""
    if not (math.isfinite(diff.low) and math.isfinite(diff.high)):
        return "no evidence either way"
    low, high = (diff.low, diff.high) if higher_is_better else (-diff.high, -diff.low)
    return "better" if low > 0 else "worse" if high < 0 else "no evidence either way"


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
    p, r = pair_arrays(proxy, reference)
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
    p, r = pair_arrays(proxy, reference)
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
