"""Pure functions on result tables: Pareto fronts (issue 5), EDFs and KS statistics (issue 6)."""

from __future__ import annotations

import bisect
import math
from typing import Sequence

__all__ = ["dominates", "pareto_mask", "pareto_front", "edf", "edf_at", "log_bins", "bin_index",
           "complexity_weights", "ks_statistic"]


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
    if hi == lo:
        return [math.exp(lo), math.exp(lo)]
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
    """Kolmogorov-Smirnov distance of two (weighted) EDFs: max |Fa - Fb| over the pooled support."""
    if not a or not b:
        raise ValueError("the KS statistic needs two non-empty samples")
    support = sorted(set(a) | set(b))
    fa = edf_at(a, support, weights_a)
    fb = edf_at(b, support, weights_b)
    return max(abs(x - y) for x, y in zip(fa, fb))
