"""The schedule comparison (continuation against cosine at one budget): every net under every seed and both
schedules, the paired difference over nets recomputed by hand, its t interval around it."""

from __future__ import annotations

import statistics

import pytest

from nasx.experiments.schedule import schedule_check


def test_compare_schedules_trains_each_net_seed_and_schedule_once_and_pairs_them():
    seen = []
    result = schedule_check("resnet", None, "1M:4M", "synthetic", budget="e1-f0.2", val_size=0.1, samples=2,
                            seeds=[0, 1], on_row=seen.append)
    specs = list(dict.fromkeys(r.net for r in result.rows))
    assert len(result.rows) == len(seen) == 2 * 2 * 2 and (result.nets, result.seeds) == (2, 2)
    acc = {(r.net, r.seed, r.schedule): r.val_acc for r in result.rows}
    by_net = [statistics.mean(acc[(s, k, "continuation")] - acc[(s, k, "cosine")] for k in (0, 1)) for s in specs]
    assert result.difference == pytest.approx(statistics.mean(by_net))
    assert result.low <= result.difference <= result.high
    assert all(0 <= r.val_acc <= 1 and r.seconds > 0 for r in result.rows)
    assert "continuation - cosine" in result.summary()
