"""Calibration and power of `nasx refine` by simulation (docs/refine.md, Calibration): the single test's rejection rate
under planted nulls (48 nets in 4 FLOPs bins, 142 in 10), and whole runs on the committed example's real specs with
planted errors (family-wise error under the null, power for planted -5 and -3 point restrictions).

    python scripts/refine_calibration.py --single 4000 --runs 200
"""

from __future__ import annotations

import argparse
import time

from nasx.experiments.refine_calibration import example_bench, mc_se, single_test_rejections, whole_runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--single", type=int, default=4000, help="replicates of each single-test null")
    ap.add_argument("--runs", type=int, default=200, help="whole runs of each planted effect")
    ap.add_argument("--effects", default="0,0.05,0.03", help="planted effects of the whole runs (error points / 100)")
    ap.add_argument("--seed", type=int, default=0, help="the first run's seed (runs use seed .. seed + runs - 1)")
    ap.add_argument("--only", type=int, default=None, help="round k's refinement alone (rounds 1..k pooled, look k)")
    args = ap.parse_args()
    start = time.time()
    for n in (48, 142):
        if args.single:
            rates = single_test_rejections(n, args.single)
            print(f"single test, null, {n} nets, {max(1, min(10, n // 10))} bins, {args.single} replicates: "
                  + ", ".join(f"alpha {a:g}: {r:.4f} (s.e. {mc_se(a, args.single):.4f})" for a, r in rates.items()),
                  flush=True)
    bench = example_bench()
    for effect in (float(e) for e in args.effects.split(",")):
        def progress(i, _outcome, effect=effect):
            if (i + 1) % 20 == 0:
                print(f"  effect -{effect * 100:g}: {i + 1} runs, {time.time() - start:.0f} s", flush=True)

        out = whole_runs(effect, args.runs, bench=bench, on_run=progress, only=args.only, seed=args.seed)
        anykeep = sum(o.first_keep is not None for o in out) / len(out)
        r1 = sum(o.planted_round == 1 for o in out) / len(out)
        planted = sum(o.planted_round is not None for o in out) / len(out)
        other = sum(any(t != o.kept[0][1] or o.planted_round is None for _, t in o.kept) for o in out
                    if o.kept) / len(out)
        what = "whole runs (3 rounds: 48, 95, 142 nets)" if args.only is None else f"round {args.only} alone"
        print(f"{what}, effect -{effect * 100:g} points, {args.runs} runs: kept "
              f"anything {anykeep:.3f} (s.e. {mc_se(anykeep, args.runs):.3f}); the planted restriction kept in round 1 "
              f"(48 nets) {r1:.3f} (s.e. {mc_se(r1, args.runs):.3f}), by round 3 (142 nets) {planted:.3f} (s.e. "
              f"{mc_se(planted, args.runs):.3f}); another restriction kept {other:.3f}; "
              f"{time.time() - start:.0f} s so far", flush=True)


if __name__ == "__main__":
    main()
