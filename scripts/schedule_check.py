"""Is the continuation schedule (warm-up, constant rate, a decay branch: nasx.train.trainer.Continuation) as good
as the CPU default's cosine at the top budget? Train the same nets under both schedules and several seeds at one
budget, and print each schedule's mean validation accuracy, the paired difference (continuation - cosine) and its
95% interval (scipy's t interval over nets, each net's difference averaged over seeds) beside the seed noise.

    python scripts/schedule_check.py --samples 8 --seeds 0,1,2            # CIFAR-10, resnext cpu corner, e1-f0.5

An experiment script, not a nasx command (docs/rungs.md, "To measure"): the CPU default stays cosine until it has
run. It trains through nasx's own API (the sampler, the trainer), one thread per process, nothing stored.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    """Draw the nets (nasx's sampler, the corner's band), train each under every seed with cosine and with
    continuation at the budget, then the table and the paired interval (scipy)."""
    import numpy as np
    import torch
    from scipy import stats

    from nasx import data
    from nasx.space import load_space, parse_band
    from nasx.space.sampling import sample
    from nasx.train import Budget, TrainConfig, train
    from nasx.train.trainer import Continuation

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="resnext")
    parser.add_argument("--corner", default="cpu")
    parser.add_argument("--flops", default="10M:30M")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--budget", default="e1-f0.5-b128", help="the top budget (the CPU default's: e1-f0.5-b128)")
    parser.add_argument("--val-size", type=float, default=2000)
    parser.add_argument("--samples", type=int, default=8, help="nets drawn in the band")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds, comma-separated (>= 3 for the issue)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    budget = Budget.parse(args.budget)
    val = int(args.val_size) if args.val_size >= 1 else args.val_size
    dataset = data.load(args.dataset, data_dir=args.data_dir, val_size=val, seed=0).to("cpu")
    space = load_space(args.space).with_corner(args.corner).at(dataset.input)
    drawn = sample(space, np.random.default_rng(0), args.samples, flops=parse_band(args.flops, "--flops"))
    rows = []
    for k, d in enumerate(drawn):
        for seed in seeds:
            for schedule in ("cosine", "continuation"):
                t = time.time()
                result = train(d.spec, dataset, budget, "cpu", seed, config=TrainConfig(schedule="cosine"),
                               continuation=Continuation(budget) if schedule == "continuation" else None)
                rows.append({"net": d.spec.id, "flops": d.complexity.flops, "seed": seed, "schedule": schedule,
                             "val_acc": result.final_val_acc, "seconds": time.time() - t})
                print(json.dumps(rows[-1]), flush=True)
    acc = {(r["net"], r["seed"], r["schedule"]): r["val_acc"] for r in rows}
    nets = list(dict.fromkeys(r["net"] for r in rows))
    diff = [statistics.mean(acc[(n, s, "continuation")] - acc[(n, s, "cosine")] for s in seeds) for n in nets]
    noise = statistics.mean(statistics.stdev(acc[(n, s, "cosine")] for s in seeds) for n in nets) \
        if len(seeds) > 1 else float("nan")
    lo, hi = stats.t.interval(0.95, len(diff) - 1, loc=np.mean(diff), scale=stats.sem(diff)) \
        if len(diff) > 1 else (float("nan"), float("nan"))
    for schedule in ("cosine", "continuation"):
        print(f"{schedule}: mean val acc {np.mean([r['val_acc'] for r in rows if r['schedule'] == schedule]):.4f}")
    print(f"continuation - cosine: {np.mean(diff):+.4f} (95% interval {lo:+.4f} to {hi:+.4f}, {len(nets)} nets x "
          f"{len(seeds)} seeds); cosine's seed std per net, mean: {noise:.4f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
