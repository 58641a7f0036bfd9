"""The hypervolume of (error, FLOPs) fronts (nasx.stats.pareto, the one owner): against moocore on a hand example,
and as it grows point by point."""

from __future__ import annotations

import math

import moocore
import numpy as np
import pytest

from nasx.stats import hv_reference, hypervolume, hypervolume_steps

BAND = (1e6, 4e6)


def _scaled(points, band=BAND):
    lo, hi = band
    return [(e, math.log(f / lo) / math.log(hi / lo)) for e, f in points]


def test_hypervolume_equals_moocore_on_a_hand_example():
    points = [(0.5, 1e6), (0.3, 2e6), (0.2, 4e6), (0.4, 3e6)]  # (0.4, 3M) is dominated by (0.3, 2M)
    ref_err, ref_flops = hv_reference(BAND, 0.9)
    assert (ref_err, ref_flops) == (0.9, pytest.approx(4.4e6))
    x_ref = math.log(4.4) / math.log(4)
    # by hand: three rectangles of the staircase against (0.9, x_ref)
    hand = 0.4 * x_ref + 0.2 * (x_ref - 0.5) + 0.1 * (x_ref - 1.0)
    ours = hypervolume(points, BAND, 0.9)
    assert ours == pytest.approx(hand)
    assert ours == pytest.approx(float(moocore.hypervolume(np.array(_scaled(points)), ref=np.array([0.9, x_ref]))))
    assert hypervolume([(0.95, 2e6), (0.5, 5e6)], BAND, 0.9) == 0.0  # beyond the reference: nothing


def test_hypervolume_steps_grow_to_the_hypervolume_of_the_whole_front():
    rng = np.random.default_rng(3)
    points = [(float(e), float(f)) for e, f in zip(rng.uniform(0.1, 0.95, 60), np.exp(rng.uniform(13.8, 15.3, 60)))]
    steps = hypervolume_steps([None, *points[:30], None, *points[30:]], BAND, 0.9)
    assert len(steps) == 62 and steps[0] == 0.0
    assert all(b >= a for a, b in zip(steps, steps[1:]))
    assert steps[-1] == pytest.approx(hypervolume(points, BAND, 0.9))
    assert steps[30] == pytest.approx(hypervolume(points[:30], BAND, 0.9))
    assert steps[31] == steps[30]  # a step without a point adds nothing
