"""The schedule comparison (continuation against cosine at one budget): every net under every seed and both
schedules, the paired difference over nets recomputed by hand, its t interval around it."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from nasx.data import load
from nasx.experiments.schedule import compare_schedules
from nasx.space import load_space
from nasx.space.sampling import sample
from nasx.train import Budget



def test_compare_schedules_trains_each_net_seed_and_schedule_once_and_pairs_them():
    dataset = load("synthetic", val_size=0.1, seed=0)
    space = load_space("resnet").at(dataset.input)
    specs = [d.spec for d in sample(space, np.random.default_rng(0), 2, flops=(1_000_000, 4_000_000))]
    seen = []
    result = compare_schedules(specs, dataset, Budget(1, 0.2), [0, 1], on_row=seen.append)
    assert len(result.rows) == len(seen) == 2 * 2 * 2 and (result.nets, result.seeds) == (2, 2)
    acc = {(r.net, r.seed, r.schedule): r.val_acc for r in result.rows}
    by_net = [statistics.mean(acc[(s.id, k, "continuation")] - acc[(s.id, k, "cosine")] for k in (0, 1)) for s in specs]
    assert result.difference == pytest.approx(statistics.mean(by_net))
    assert result.low <= result.difference <= result.high
    assert all(0 <= r.val_acc <= 1 and r.seconds > 0 for r in result.rows)
    assert "continuation - cosine" in result.summary()
