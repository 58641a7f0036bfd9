"""Successive-halving rungs for two objectives: which nets a rung promotes (the ladder of budgets is
`nasx.train.budget.Ladder`).

A net starts at the lowest rung; it is promoted to the next rung when it is among the top 1/eta of the
nets that completed its rung (asynchronous successive halving, ASHA: Li et al. 2020), ranked by
non-dominated sorting of (validation error at that rung, FLOPs). Within one Pareto rank the nets are
ordered by crowding distance in (error, log FLOPs), largest first (NSGA-II's tie-break: the ends of a
front and its sparse stretches go first, which is what grows the hypervolume of the front), then by
error, FLOPs and key so that the order is total and the same on every worker. A net whose rung result
failed (NaN error) is ranked last and never promoted. Non-dominated sorting is moocore's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..train.budget import Ladder
from .record import TrialRecord

__all__ = ["RungResult", "promotion_order", "due_promotions", "crowding_distance", "next_promotion"]


@dataclass(frozen=True)
class RungResult:
    """One net's result at one rung: its key (spec id), validation error in [0, 1] (NaN: failed) and FLOPs."""

    key: str
    error: float
    flops: float


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row of `points` (n x m, one front): ends infinite, others the sum over
    objectives of the normalized gap between their neighbours."""
    n, m = points.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, math.inf)
    for j in range(m):
        order = np.argsort(points[:, j], kind="stable")
        col = points[order, j]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = math.inf
        if span > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def promotion_order(results: Sequence[RungResult]) -> list[int]:
    """Indices of `results`, best first: Pareto rank of (error, FLOPs), crowding distance (largest first),
    error, FLOPs, key; failed results last."""
    import moocore

    ok = [i for i, r in enumerate(results) if not math.isnan(r.error)]
    failed = sorted((i for i, r in enumerate(results) if math.isnan(r.error)), key=lambda i: results[i].key)
    if not ok:
        return failed
    points = np.array([[results[i].error, math.log(max(results[i].flops, 1.0))] for i in ok], dtype=float)
    ranks = np.asarray(moocore.pareto_rank(points), dtype=int)
    crowd = np.zeros(len(ok))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        crowd[members] = crowding_distance(points[members])
    keyed = sorted(range(len(ok)), key=lambda k: (ranks[k], -crowd[k], points[k, 0], results[ok[k]].flops,
                                                  results[ok[k]].key))
    return [ok[k] for k in keyed] + failed


def due_promotions(results: Sequence[RungResult], promoted: set[str] | frozenset[str], eta: int) -> list[str]:
    """Keys of the nets in the top floor(n / eta) of a rung's n completed results (by `promotion_order`) that
    have not been promoted yet, best first. Failed nets are never promoted."""
    quota = len(results) // eta
    top = promotion_order(results)[:quota]
    return [results[i].key for i in top if not math.isnan(results[i].error) and results[i].key not in promoted]


def next_promotion(records: Sequence[TrialRecord], ladder: Ladder) -> Optional[TrialRecord]:
    """The complete trial whose net is due for promotion next (None: none is): rungs from the one below the top
    down, each ranked by `due_promotions` (the ladder's eta) over its complete, non-duplicate results; a net with
    any trial at the next rung (queued, running, complete or failed) was promoted already."""
    rungs, eta = len(ladder), ladder.eta
    done: dict[int, list[TrialRecord]] = defaultdict(list)
    taken: dict[int, set[str]] = defaultdict(set)
    for r in records:
        if r.rung is None or r.spec_id is None:
            continue
        taken[r.rung].add(r.spec_id)
        if r.state == "COMPLETE" and r.duplicate_of is None and r.values and r.flops is not None:
            done[r.rung].append(r)
    for k in range(rungs - 2, -1, -1):
        results = [RungResult(r.spec_id or "", 1.0 - float(r.values[0]), float(r.flops or 0)) for r in done[k]]
        due = due_promotions(results, taken[k + 1], eta)
        if due:
            return next(r for r in done[k] if r.spec_id == due[0])
    return None
