"""Compare the fronts two (or more) studies found: retrain every front net under new seeds at one budget, score each
front by the hypervolume of its nets' retrained test errors, and write a markdown table and JSON.

    python scripts/compare_fronts.py --study resnext-default --study resnext-rungs --seeds 1,2 \
        --out reports/examples/rungs-vs-default-cpu

The fronts are what each study reports (a study with rungs: its top rung's); the retraining is one fixed study
(`--retrain`, resumable) on the first study's dataset, split, corner and top budget, with the test split evaluated
(final numbers: never read by a search). Hypervolume: nasx's (error vs normalized log FLOPs, reference point
(0.9, 1.1 x the band's top)), of each seed's accuracies and of their mean.

An experiment script, not a nasx command: it made the committed comparison in reports/examples/rungs-vs-default-cpu/
(its run.sh, compare.md; docs/rungs.md) and stays here as the record of how. It reads the studies and trains through
nasx's own API, so it holds only the experiment's own steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path


def front_of(name: str, shelf):
    """The stored study (nasx.study.store), its front's records (the top rung's in a study with rungs), its results at
    the top budget and the compute it spent (device-seconds, duplicates cost nothing)."""
    from nasx.study.store import open_study

    study = open_study(name, shelf.url(name))
    compute = sum(r.outcome.wall_time or 0.0 for r in study.records if r.duplicate_of is None)
    return study, study.front(), len(study.results(top=True)), compute


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", action="append", required=True, help="a study to compare (give two or more)")
    ap.add_argument("--studies-dir", default="studies")
    ap.add_argument("--seeds", default="1,2", help="retraining seeds (the searches used the study seed)")
    ap.add_argument("--retrain", default="compare-retrain", help="the fixed study that retrains the front nets")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from nasx.stats.pareto import hypervolume
    from nasx.net.spec import NetSpec
    from nasx.study import StudyConfig, run_study
    from nasx.study.record import Shelf
    from nasx.study.run import Candidate
    from nasx.study.store import open_study

    shelf = Shelf(folder=args.studies_dir)
    seeds = [int(s) for s in args.seeds.split(",")]
    fronts = {}
    for name in args.study:
        study, front, done, compute = front_of(name, shelf)
        fronts[name] = dict(config=study.config, info=study.info, front=front, done=done, compute=compute)
    first = fronts[args.study[0]]
    cfg0, info0 = first["config"], first["info"]
    band = tuple(cfg0["flops"]) if cfg0.get("flops") else None
    retrain = StudyConfig(space=info0.space, dataset=info0.dataset, corner=info0.corner, val_size=info0.val_size,
                          seed=info0.seed, device="cpu", workers=args.workers, threads=1, test=True, study=args.retrain,
                          storage=shelf.url(args.retrain), data_dir=cfg0.get("data_dir")).with_budget(info0.top_budget)
    nets = {}
    for name, f in fronts.items():
        for r in f["front"]:
            nets.setdefault(r.spec_id, NetSpec.from_dict(dict(r.spec)))
    candidates = [Candidate(spec, seed=s, tags={"compare": "front"}) for spec in nets.values() for s in seeds]
    started = time.time()
    print(f"retraining {len(nets)} front nets x {len(seeds)} seeds ({len(candidates)} trainings) in study "
          f"{args.retrain!r}", file=sys.stderr)
    summary = run_study(retrain, candidates=candidates,
                        progress=lambda snap: print(f"\r[{snap.elapsed:5.0f} s] {snap.complete}/{len(candidates)}",
                                                    end="", file=sys.stderr))
    print(file=sys.stderr)
    if summary.interrupted:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    test = {}
    for r in open_study(args.retrain, retrain.storage_url).records:
        if r.state == "COMPLETE" and r.outcome.test_acc is not None:
            test[(r.spec_id, r.seed)] = r.outcome.test_acc
    if band is None:
        flops = [r.flops for f in fronts.values() for r in f["front"]]
        band = (min(flops), max(flops))
    rows, result = [], {}
    for name, f in fronts.items():
        per_seed = [hypervolume([(1 - test[(r.spec_id, s)], r.flops) for r in f["front"]], band, 0.9)
                    for s in seeds]
        mean_acc = {r.spec_id: statistics.fmean(test[(r.spec_id, s)] for s in seeds) for r in f["front"]}
        hv_mean = hypervolume([(1 - mean_acc[r.spec_id], r.flops) for r in f["front"]], band, 0.9)
        result[name] = dict(
            rungs=[dict(x) for x in f["info"].rungs], eta=f["info"].eta, top_results=f["done"],
            compute_s=f["compute"], hv_per_seed=per_seed, hv_of_mean=hv_mean,
            front=[dict(trial=r.number, spec_id=r.spec_id, description=r.description, flops=r.flops,
                        search_val_acc=r.values[0], test_acc={str(s): test[(r.spec_id, s)] for s in seeds})
                   for r in f["front"]])
        rows.append(f"| {name} | {f['done']} | {f['compute']:,.0f} | {len(f['front'])} | {hv_mean:.4f} | "
                    + ", ".join(f"{h:.4f}" for h in per_seed) + " |")
    names = list(fronts)
    diffs = [result[names[1]]["hv_per_seed"][k] - result[names[0]]["hv_per_seed"][k] for k in range(len(seeds))]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result["_comparison"] = dict(seeds=seeds, band=list(band), reference_point=[0.9, 1.1],
                                 hv_difference_per_seed=diffs, retrain_wall_s=time.time() - started)
    (out / "compare.json").write_text(json.dumps(result, indent=1, default=str))
    lines = ["| study | top-budget results | compute spent (device-s) | front nets | HV of mean test acc | "
             "HV per retraining seed |", "|---|---:|---:|---:|---:|---|", *rows, "",
             f"HV difference ({names[1]} - {names[0]}) per retraining seed: "
             + ", ".join(f"{d:+.4f}" for d in diffs)]
    for name in names:
        lines += ["", f"Front of {name} (retrained test accuracy per seed {', '.join(map(str, seeds))}):", "",
                  "| trial | FLOPs | search val acc | test acc per seed | net |", "|---:|---:|---:|---|---|"]
        for r in result[name]["front"]:
            lines.append(f"| {r['trial']} | {r['flops']:,} | {r['search_val_acc']:.2%} | "
                         + ", ".join(f"{v:.2%}" for v in r["test_acc"].values()) + f" | {r['description']} |")
    (out / "compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
