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


def main() -> None:
    """Draw the nets (nasx's sampler, the corner's band), compare the schedules (nasx.experiments.schedule)."""
    import dataclasses

    import torch

    from nasx.experiments.schedule import schedule_check

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
    result = schedule_check(args.space, args.corner, args.flops, args.dataset, args.data_dir, args.budget,
                            args.val_size, args.samples, [int(s) for s in args.seeds.split(",") if s.strip()],
                            on_row=lambda row: print(json.dumps(dataclasses.asdict(row)), flush=True))
    for schedule, acc in result.mean.items():
        print(f"{schedule}: mean val acc {acc:.4f}")
    print(result.summary())
    if args.out:
        with open(args.out, "w") as f:
            json.dump([dataclasses.asdict(r) for r in result.rows], f, indent=1)


if __name__ == "__main__":
    main()
