"""Is the continuation schedule (warm-up, constant rate, a decay branch: `nasx.train.trainer.Continuation`) as good
as cosine at the top budget? The same nets trained under both schedules and several seeds, compared by the paired
difference over nets (scipy's t interval) beside the seed noise."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

__all__ = ["ScheduleRow", "ScheduleComparison", "compare_schedules", "schedule_check"]

SCHEDULES = ("cosine", "continuation")


@dataclass(frozen=True)
class ScheduleRow:
    """One training: the net, its FLOPs, the seed, the schedule, its validation accuracy and seconds."""

    net: str
    flops: int
    seed: int
    schedule: str
    val_acc: float
    seconds: float


@dataclass(frozen=True)
class ScheduleComparison:
    """Each schedule's mean accuracy, continuation - cosine averaged over seeds per net with its 95% t interval over
    nets, and cosine's seed standard deviation per net (mean over nets)."""

    rows: tuple[ScheduleRow, ...]
    mean: dict
    difference: float
    low: float
    high: float
    seed_std: float
    nets: int
    seeds: int

    def summary(self) -> str:
        return (f"continuation - cosine: {self.difference:+.4f} (95% interval {self.low:+.4f} to {self.high:+.4f}, "
                f"{self.nets} nets x {self.seeds} seeds); cosine's seed std per net, mean: {self.seed_std:.4f}")


def compare_schedules(specs: Sequence, dataset, budget, seeds: Sequence[int],
                      on_row: Optional[Callable[[ScheduleRow], None]] = None) -> ScheduleComparison:
    """Train every spec under every seed with cosine, then with continuation, at `budget` on the CPU: the rows and
    the paired comparison."""
    import numpy as np
    from scipy import stats

    from ..net.complexity import complexity
    from ..train import TrainConfig, train
    from ..train.trainer import Continuation

    rows = []
    for spec in specs:
        for seed in seeds:
            for schedule in SCHEDULES:
                start = time.time()
                result = train(spec, dataset, budget, "cpu", seed, config=TrainConfig(schedule="cosine"),
                               continuation=Continuation(budget) if schedule == "continuation" else None)
                rows.append(ScheduleRow(spec.id, complexity(spec).flops, seed, schedule, result.final_val_acc,
                                        time.time() - start))
                if on_row is not None:
                    on_row(rows[-1])
    acc = {(r.net, r.seed, r.schedule): r.val_acc for r in rows}
    nets = list(dict.fromkeys(r.net for r in rows))
    diff = [statistics.mean(acc[(n, s, "continuation")] - acc[(n, s, "cosine")] for s in seeds) for n in nets]
    noise = statistics.mean(statistics.stdev(acc[(n, s, "cosine")] for s in seeds) for n in nets) \
        if len(seeds) > 1 else math.nan
    if len(diff) < 2:
        low = high = math.nan
    elif stats.sem(diff) == 0:  # every net differs by the same amount: no spread to give an interval width
        low = high = float(np.mean(diff))
    else:
        low, high = stats.t.interval(0.95, len(diff) - 1, loc=np.mean(diff), scale=stats.sem(diff))
    mean = {s: float(np.mean([r.val_acc for r in rows if r.schedule == s])) for s in SCHEDULES}
    return ScheduleComparison(tuple(rows), mean, float(np.mean(diff)), float(low), float(high), noise, len(nets),
                              len(seeds))


def schedule_check(space: str = "resnext", corner: Optional[str] = "cpu", flops: str = "10M:30M",
                   dataset: str = "cifar10", data_dir: Optional[str] = None, budget: str = "e1-f0.5-b128",
                   val_size: float = 2000, samples: int = 8, seeds: Sequence[int] = (0, 1, 2),
                   on_row: Optional[Callable[[ScheduleRow], None]] = None) -> ScheduleComparison:
    """`samples` nets drawn (seed 0) from the space's corner in the FLOPs band, compared at `budget`
    (`compare_schedules`) on the dataset's held-out validation split."""
    import numpy as np

    from ..data import load
    from ..space import load_space, parse_band
    from ..space.sampling import sample
    from ..train import Budget

    data = load(dataset, data_dir=data_dir, val_size=int(val_size) if val_size >= 1 else val_size, seed=0).to("cpu")
    members = sample(load_space(space).with_corner(corner).at(data.input), np.random.default_rng(0), samples,
                     flops=parse_band(flops, "--flops"))
    return compare_schedules([m.spec for m in members], data, Budget.parse(budget), seeds, on_row=on_row)
