"""Pareto dominance and fronts of points under mixed objectives (maximize / minimize per objective), and the
hypervolume of (error, FLOPs) fronts in a FLOPs band (moocore's), also as it grows point by point."""

from __future__ import annotations

import math
from typing import Optional, Sequence

__all__ = ["dominates", "pareto_mask", "pareto_front", "hypervolume", "hypervolume_steps", "hv_reference"]


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


def hv_reference(band: tuple[float, float], chance: float) -> tuple[float, float]:
    """The hypervolume's reference point in (error, FLOPs): chance error and 1.1 x the band's top FLOPs."""
    return chance, 1.1 * band[1]


def hypervolume(points: Sequence[tuple[float, float]], band: tuple[float, float], chance: float) -> float:
    """Hypervolume of (error, FLOPs) points against (chance error, 1.1 x the band's top FLOPs), FLOPs as
    log(F / band low) / log(band high / band low); points beyond the reference add nothing."""
    import moocore
    import numpy as np

    lo, hi = band
    span = math.log(hi / lo) if hi > lo else 1.0
    ref = np.array([chance, math.log(hv_reference(band, chance)[1] / lo) / span])
    pts = np.array([[e, math.log(f / lo) / span] for e, f in points], dtype=float).reshape(-1, 2)
    pts = pts[np.all(pts < ref, axis=1)]
    return float(moocore.hypervolume(pts, ref=ref)) if len(pts) else 0.0


def hypervolume_steps(points: Sequence[Optional[tuple[float, float]]], band: tuple[float, float],
                      chance: float) -> list[float]:
    """The hypervolume of the first k points' front for every k (None: a step that adds no point, e.g. a
    failed trial); recomputed only when a point joins the front, so 10,000 steps cost a few fronts."""
    front: list[tuple[float, float]] = []
    value, out = 0.0, []
    for p in points:
        if p is not None and not any(q[0] <= p[0] and q[1] <= p[1] for q in front):
            front = [q for q in front if not (p[0] <= q[0] and p[1] <= q[1])] + [p]
            value = hypervolume(front, band, chance)
        out.append(value)
    return out
