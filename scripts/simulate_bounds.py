"""Bounds of the rungs on the planted benchmark that no `nasx simulate` option gives: a perfect cheap budget (a rung
below the top observes every net's true accuracy less the shift all nets share, no noise) or no fixed cost below
the top (a lower rung's training costs 3 s less); prints the rungs' and random search's median compute to the
target as `nasx simulate` computes it, and where the rungs' compute went up to the target.

    python scripts/simulate_bounds.py --bound perfect --rungs 1/9,1/3,1 --eta 3
    python scripts/simulate_bounds.py --bound no-fixed-cost --proxy-noise 0 --rungs 1/9,1/3,1 --eta 3
"""

from __future__ import annotations

import argparse
import math
from fractions import Fraction

import numpy as np

from nasx.experiments.simulate import BOUNDS, bound_benchmark, compare, planted_ladder


def main() -> None:
    """Run random and the rungs on the chosen bound over the seeds, then print the medians and the compute split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bound", choices=list(BOUNDS), required=True)
    parser.add_argument("--rungs", default="1/9,1/3,1")
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--proxy-noise", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--compute", type=float, default=7200.0)
    args = parser.parse_args()
    ladder = planted_ladder([Fraction(r) for r in args.rungs.split(",")], args.eta)
    result = compare(lambda: bound_benchmark(args.bound, args.proxy_noise), ["random", "rungs"], ladder,
                     args.compute, args.seeds, first_seed=args.first_seed)
    random_, rungs = result.outcome("random"), result.outcome("rungs")
    print(f"{args.bound}, rungs {args.rungs}, eta {args.eta}, proxy noise {args.proxy_noise:g}: target "
          f"{result.target:.4f}; random {random_.median_to_target:,.0f} s ({random_.reached}/{args.seeds}); rungs "
          f"{rungs.median_to_target:,.0f} s = {rungs.median_to_target / random_.median_to_target:.2f} of random's "
          f"({rungs.reached}/{args.seeds})")
    seconds, trainings = np.zeros(len(ladder)), np.zeros(len(ladder))
    for trace, stop in zip([t for t in result.traces if t.strategy == "rungs"], rungs.to_target):
        spent = 0.0
        for _key, rung, _acc, s in trace.jobs if math.isfinite(stop) else []:
            if spent >= stop:
                break
            spent += s
            seconds[rung] += s
            trainings[rung] += 1
    print("up to the target, per rung: share of compute " + ", ".join(f"{x:.2f}" for x in seconds / seconds.sum())
          + "; trainings per seed " + ", ".join(f"{x:.1f}" for x in trainings / rungs.reached))


if __name__ == "__main__":
    main()
