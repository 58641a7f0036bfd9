"""The Pareto front under seed noise: each net's probability of being on the front (accuracy up, FLOPs down) when
its accuracy is one of its seeds' results, exactly (no Monte Carlo); the pooled seed standard deviation; and which
nets lie within seed noise of a front."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

__all__ = ["front_probabilities", "pooled_std", "front_accuracy_at"]


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
