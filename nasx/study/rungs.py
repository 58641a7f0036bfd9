"""Successive-halving rungs for two objectives: which nets a rung promotes (the ladder of budgets is
`nasx.train.budget.Ladder`).

A net starts at the lowest rung; it is promoted to the next rung when it is among the top 1/eta of the
nets that completed its rung (asynchronous successive halving, ASHA: Li et al. 2020), ranked by
non-dominated sorting of (validation error at that rung, FLOPs). Within one Pareto rank the nets are
ordered by crowding distance in (error, log FLOPs), largest first (NSGA-II's tie-break: the ends of a
front and its sparse stretches go first, which is what grows the hypervolume of the front), then by
error, FLOPs and key so that the order is total and the same on every worker. A net whose rung result
failed (NaN error) is ranked last and never promoted. Non-dominated sorting is moocore's.

Predicted ranking (opt-in): once at least MIN_PAIRS nets were trained at both a rung and the top, the rung's nets
are ranked by their predicted top-rung error in place of their error at the rung: a Bayesian ridge regression
(scikit-learn) of the top error on (error at the rung, log FLOPs, structure features of the spec) fitted to those
nets, its optimistic bound (mean - one predictive standard deviation) used in the Pareto ranking (a net the model
knows little about gets the benefit of the doubt). Before that, the ranking is the rung's own error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..net.spec import NetSpec
from ..train.budget import Ladder
from .record import COMPLETE, TrialRecord

__all__ = ["RungResult", "promotion_order", "due_promotions", "crowding_distance", "next_promotion", "rung_standing",
           "predict_top_errors", "structure_features", "Standing", "MIN_PAIRS"]

MIN_PAIRS = 8  # nets trained at both a rung and the top before their prediction replaces the rung's own error


@dataclass(frozen=True)
class RungResult:
    """One net's result at one rung: its key (spec id), validation error in [0, 1] (NaN: failed) and FLOPs."""

    key: str
    error: float
    flops: float
    features: tuple[float, ...] = ()  # the spec's structure (structure_features); used by the predicted ranking


def structure_features(spec: Optional[NetSpec]) -> tuple[float, ...]:
    """What a net's structure says beyond its FLOPs: total depth, stages, log2 of the first and last stage width
    (() for a record without a net)."""
    if spec is None or not spec.stages:
        return ()
    return (float(sum(s.depth for s in spec.stages)), float(len(spec.stages)), math.log2(spec.stages[0].width),
            math.log2(spec.stages[-1].width))


def predict_top_errors(results: Sequence[RungResult], pairs: Sequence[tuple[RungResult, float]],
                       min_pairs: int = MIN_PAIRS) -> Optional[list[float]]:
    """Each result's optimistic predicted top-rung error (mean - one predictive std of a Bayesian ridge regression of
    the top error on error at the rung, log FLOPs and structure features, fitted to `pairs` of (rung result, top
    error)); None while fewer than `min_pairs` pairs are there (NaN for a failed result)."""
    pairs = [(r, top) for r, top in pairs if not math.isnan(r.error) and not math.isnan(top)]
    if len(pairs) < min_pairs or not results:
        return None
    from sklearn.linear_model import BayesianRidge

    width = min(len(r.features) for r, _ in pairs)
    width = min([width] + [len(r.features) for r in results if not math.isnan(r.error)])

    def row(r: RungResult) -> list[float]:
        return [r.error, math.log(max(r.flops, 1.0)), *r.features[:width]]

    x = np.array([row(r) for r, _ in pairs])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = BayesianRidge().fit((x - mean) / scale, np.array([top for _, top in pairs]))
    ok = [i for i, r in enumerate(results) if not math.isnan(r.error)]
    out = [math.nan] * len(results)
    if ok:
        mu, sd = model.predict((np.array([row(results[i]) for i in ok]) - mean) / scale, return_std=True)
        for i, m, s in zip(ok, mu, sd):
            out[i] = float(m - s)
    return out

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


def promotion_order(results: Sequence[RungResult], predicted: Optional[Sequence[float]] = None) -> list[int]:
    """Indices of `results`, best first: Pareto rank of (error, FLOPs), crowding distance (largest first),
    error, FLOPs, key; failed results last. With `predicted` (predict_top_errors), those errors stand in for the
    rung's own."""
    import moocore

    ok = [i for i, r in enumerate(results) if not math.isnan(r.error)]
    failed = sorted((i for i, r in enumerate(results) if math.isnan(r.error)), key=lambda i: results[i].key)
    if not ok:
        return failed
    errors = [r.error for r in results] if predicted is None else list(predicted)
    points = np.array([[errors[i], math.log(max(results[i].flops, 1.0))] for i in ok], dtype=float)
    ranks = np.asarray(moocore.pareto_rank(points), dtype=int)
    crowd = np.zeros(len(ok))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        crowd[members] = crowding_distance(points[members])
    keyed = sorted(range(len(ok)), key=lambda k: (ranks[k], -crowd[k], points[k, 0], results[ok[k]].flops,
                                                  results[ok[k]].key))
    return [ok[k] for k in keyed] + failed


def due_promotions(results: Sequence[RungResult], promoted: set[str] | frozenset[str], eta: int,
                   predicted: Optional[Sequence[float]] = None) -> list[str]:
    """Keys of the nets in the top floor(n / eta) of a rung's n completed results (by `promotion_order`, with
    `predicted` errors where given) that have not been promoted yet, best first. Failed nets are never promoted."""
    quota = len(results) // eta
    top = promotion_order(results, predicted)[:quota]
    return [results[i].key for i in top if not math.isnan(results[i].error) and results[i].key not in promoted]


@dataclass(frozen=True)
class Standing:
    """A rung as it stands: its complete, non-duplicate trials and their results (same order), the nets taken to
    the next rung, the predicted top errors (None: the rung's own errors rank) and which ranking that is."""

    trials: tuple[TrialRecord, ...]
    results: tuple[RungResult, ...]
    taken: frozenset[str]
    predicted: Optional[tuple[float, ...]]
    basis: str

    def due(self, eta: int) -> list[str]:
        return due_promotions(self.results, self.taken, eta, self.predicted)


def rung_standing(records: Sequence[TrialRecord], ladder: Ladder, rung: int, predict: bool = False) -> Standing:
    """Rung `rung` of a study's records (see `Standing`); with `predict`, ranked by predicted top error once
    MIN_PAIRS nets were trained at both this rung and the top."""
    done = [r for r in records if r.rung == rung and _usable(r)]
    taken = frozenset(r.spec_id for r in records if r.rung == rung + 1 and r.spec_id is not None)
    features = {r.spec_id: structure_features(r.net) for r in done} if predict else {}
    results = tuple(RungResult(r.spec_id or "", 1.0 - float(r.values[0]), float(r.flops or 0),
                               features.get(r.spec_id, ())) for r in done)
    predicted, basis = None, "error at the rung"
    if predict:
        top = {r.spec_id: 1.0 - float(r.values[0]) for r in records if r.rung == ladder.top and _usable(r)}
        pairs = [(res, top[res.key]) for res in results if res.key in top]
        guess = predict_top_errors(results, pairs)
        if guess is not None:
            predicted, basis = tuple(guess), f"predicted top-rung error ({len(pairs)} nets at both rungs)"
        else:
            basis = f"error at the rung (prediction needs {MIN_PAIRS} nets at both rungs, {len(pairs)} so far)"
    return Standing(tuple(done), results, taken, predicted, basis)


def _usable(r: TrialRecord) -> bool:
    return r.state == COMPLETE and r.duplicate_of is None and bool(r.values) and r.flops is not None \
        and r.spec_id is not None


def next_promotion(records: Sequence[TrialRecord], ladder: Ladder, predict: bool = False) -> Optional[TrialRecord]:
    """The complete trial whose net is due for promotion next (None: none is); see `next_promotion_ranked`."""
    found = next_promotion_ranked(records, ladder, predict)
    return found[0] if found else None


def next_promotion_ranked(records: Sequence[TrialRecord], ladder: Ladder,
                          predict: bool = False) -> Optional[tuple[TrialRecord, str]]:
    """(the complete trial whose net is due for promotion next, the ranking that chose it) or None: rungs from the
    one below the top down, each ranked by its `rung_standing` (the ladder's eta) over its complete, non-duplicate
    results; a net with any trial at the next rung (queued, running, complete or failed) was promoted already."""
    for k in range(len(ladder) - 2, -1, -1):
        standing = rung_standing(records, ladder, k, predict)
        due = standing.due(ladder.eta)
        if due:
            return next(r for r in standing.trials if r.spec_id == due[0]), standing.basis
    return None
