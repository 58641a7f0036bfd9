"""Fit a training's seconds = a x FLOPs x w + b to a stored fidelity run (w: a budget's work relative to the
reference budget) and print a (per 20 MFLOPs at w = 1), b (the fixed cost of a training) and b's bootstrap
95% interval: the planted benchmark of `nasx simulate` charges 52.5 s x FLOPs / 20 M x w + 3 s.

    python scripts/fixed_cost.py --name resnext-cpu \
        --storage reports/examples/fidelity-resnext-cpu/fidelity-resnext-cpu.journal
"""

from __future__ import annotations

import argparse

import numpy as np

from nasx.experiments.fidelity import load_fidelity
from nasx.study.record import COMPLETE


def main() -> None:
    """Read every complete training of the run, least squares (numpy), 2,000 bootstrap resamples of trainings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the fidelity run's name")
    parser.add_argument("--storage", default=None, help="its journal or postgresql URL (default: studies/)")
    args = parser.parse_args()
    data = load_fidelity(args.name, args.storage)
    reference = next(b for b, role in data.roles.items() if role == "reference")
    rows = [(rec.flops * data.costs[budget] / data.costs[reference], rec.outcome.wall_time, budget)
            for budget, records in data.budgets.items() for rec in records
            if rec.state == COMPLETE and rec.outcome.wall_time is not None]
    x = np.array([[flops_work, 1.0] for flops_work, _, _ in rows])
    y = np.array([seconds for _, seconds, _ in rows])
    (a, b), *_ = np.linalg.lstsq(x, y, rcond=None)
    rng = np.random.default_rng(0)
    boot = [np.linalg.lstsq(x[i], y[i], rcond=None)[0][1] for i in (rng.integers(len(y), size=len(y)) for _ in range(2000))]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    residual = float(np.sqrt(np.mean((y - x @ (a, b)) ** 2)))
    for budget in data.budgets:
        seconds = [s for _, s, name in rows if name == budget]
        print(f"{budget}: work {data.costs[budget] / data.costs[reference]:.4g}, {len(seconds)} trainings, "
              f"mean {np.mean(seconds):.1f} s")
    print(f"{len(rows)} trainings: seconds = {a * 20e6:.1f} s x FLOPs / 20 M x w + {b:.2f} s "
          f"(b: 95% bootstrap interval {lo:.2f}-{hi:.2f} s; residual rms {residual:.1f} s)")


if __name__ == "__main__":
    main()
