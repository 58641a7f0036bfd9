"""Pareto dominance and fronts of points under mixed objectives (maximize / minimize per objective)."""

from __future__ import annotations

from typing import Sequence

__all__ = ["dominates", "pareto_mask", "pareto_front"]


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
