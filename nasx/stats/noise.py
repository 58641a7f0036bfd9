"""The Pareto front under seed noise: each net's probability of being on the front (accuracy up, FLOPs down) when
its accuracy is one of its seeds' results, exactly (no Monte Carlo); the pooled seed standard deviation; and which
nets lie within seed noise of a front."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

__all__ = ["front_probabilities", "pooled_std", "front_accuracy_at", "mean_front_probabilities", "MeanFront",
           "FLOPS_TOLERANCE"]

FLOPS_TOLERANCE = 0.05  # nets whose FLOPs differ by at most this share are compared on accuracy alone


def front_probabilities(values: Sequence[Sequence[float]], flops: Sequence[float],
                        which: Optional[Sequence[int]] = None) -> list[float]:
    """P(net i is non-dominated) for each i in `which` (default: every net), when each net's accuracy is drawn
    independently and uniformly from its observed `values` (seeds) and its FLOPs are exact.

    P_i = mean over a in values[i] of prod over j != i of (1 - share of values[j] that dominate (a, flops[i])),
    where (b, f_j) dominates (a, f_i) if f_j <= f_i and b >= a with at least one strict: a net of equal FLOPs
    and equal accuracy does not dominate. ValueError for a net with no value or a NaN value."""
    lens = np.array([len(v) for v in values], dtype=int)
    if len(values) != len(flops):
        raise ValueError(f"{len(values)} nets' values against {len(flops)} FLOPs counts")
    if len(values) == 0:
        return []
    if (lens < 1).any():
        raise ValueError("every net needs at least one accuracy")
    flat = np.concatenate([np.asarray(v, dtype=float) for v in values])
    if np.isnan(flat).any():
        raise ValueError("accuracies must not be NaN (leave failed runs out)")
    owner = np.repeat(np.arange(len(values)), lens)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    f = np.asarray(flops, dtype=float)
    f_flat = f[owner]
    out = []
    for i in range(len(values)) if which is None else which:
        a = np.asarray(values[i], dtype=float)[:, None]  # this net's seeds x 1
        not_worse_flops, fewer_flops = f_flat <= f[i], f_flat < f[i]
        dom = not_worse_flops & ((flat > a) | ((flat >= a) & fewer_flops)) & (owner != i)  # seeds x all values
        share = np.add.reduceat(dom, starts, axis=1) / lens  # seeds x nets: share of net j's values dominating a
        out.append(float(np.prod(1.0 - share, axis=1).mean()))
    return out


def pooled_std(groups: Sequence[Sequence[float]]) -> float:
    """The pooled standard deviation of groups measured under different seeds: sqrt(sum (n_g - 1) s_g^2 /
    sum (n_g - 1)), s_g the sample variance (ddof 1) of each group of at least 2 values; NaN when none has 2."""
    num, den = 0.0, 0
    for g in groups:
        x = np.asarray(g, dtype=float)
        if x.size >= 2:
            num += float(x.var(ddof=1)) * (x.size - 1)
            den += x.size - 1
    return math.sqrt(num / den) if den else math.nan


def front_accuracy_at(flops: float, front_flops: Sequence[float], front_acc: Sequence[float]) -> float:
    """The front's accuracy at `flops`: the best accuracy among front nets with at most these FLOPs (NaN if none)."""
    best = [acc for f, acc in zip(front_flops, front_acc) if f <= flops]
    return max(best) if best else math.nan


@dataclass(frozen=True)
class MeanFront:
    """P(a net's true mean accuracy is on the front) and the 95% Clopper-Pearson interval of its Monte Carlo
    estimate."""

    p: float
    low: float
    high: float


def mean_front_probabilities(means: Sequence[float], counts: Sequence[int], sigma: float, df: int,
                             flops: Sequence[float], which: Optional[Sequence[int]] = None, draws: int = 20000,
                             seed: int = 0, tolerance: float = FLOPS_TOLERANCE) -> list[MeanFront]:
    """For each net i in `which`, the probability that its true mean accuracy is non-dominated: net j dominates i when
    its FLOPs are at most (1 + tolerance) x i's and its true mean is higher (so the cheapest net too must be more
    accurate than the nets within `tolerance` of its FLOPs), under the posterior of the true means given the observed
    ones (flat prior: mean_i ~ N(observed_i, s^2 / counts_i), s^2 ~ sigma^2 df / chi2(df), sigma the pooled seed
    standard deviation on df degrees of freedom; sigma taken as exact when df is 0), from `draws` joint draws."""
    from .shift import clopper_pearson

    m = np.asarray(means, dtype=float)
    n = np.asarray(counts, dtype=float)
    f = np.asarray(flops, dtype=float)
    if not (m.size == n.size == f.size) or (n < 1).any() or np.isnan(m).any() or not sigma >= 0:
        raise ValueError("one mean, count >= 1 and FLOPs count per net, no NaN, and sigma >= 0")
    rng = np.random.default_rng(seed)
    scale = sigma * (np.sqrt(df / rng.chisquare(df, draws)) if df > 0 else np.ones(draws))
    mu = m[None, :] + scale[:, None] / np.sqrt(n)[None, :] * rng.standard_normal((draws, m.size))
    out = []
    for i in range(m.size) if which is None else which:
        rivals = (f <= f[i] * (1 + tolerance)) & (np.arange(m.size) != i)
        on = ~(mu[:, rivals] > mu[:, i:i + 1]).any(axis=1) if rivals.any() else np.ones(draws, bool)
        k = int(on.sum())
        out.append(MeanFront(k / draws, *clopper_pearson(k, draws, 0.95)))
    return out
