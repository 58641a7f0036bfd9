"""CLI start-up of two source trees side by side: median wall and user/sys CPU of each command, runs interleaved.

    git archive OLD nasx spaces | tar -x -C /tmp/before
    python scripts/bench_startup.py --tree before=/tmp/before --tree after=. [--runs 5] [--study S --studies-dir D]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="LABEL=PATH of a tree holding nasx/")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--study", help="a stored study for `nasx export` (left out when not given)")
    parser.add_argument("--studies-dir", default="studies")
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree)
    commands = [["--help"], ["zoo"], ["count", "resnet50"], ["spaces"], ["sample", "--space", "resnet", "-n", "10"],
                ["explore", "--help"]]
    if args.study:
        commands.append(["export", args.study, "--best", "--out", "/tmp/nasx-bench-startup.yaml",
                         "--studies-dir", args.studies_dir])
    for command in commands:
        runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label in trees}
        for _ in range(args.runs):
            for label, path in trees.items():
                env = {**os.environ, "PYTHONPATH": os.path.abspath(path)}
                before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
                done = subprocess.run(["nasx", *command], env=env, capture_output=True)
                wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
                if done.returncode:
                    raise SystemExit(f"{label}: nasx {' '.join(command)} failed: {done.stderr.decode()[-300:]}")
                runs[label].append((wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime))
        cells = [f"{label}: " + " / ".join(f"{statistics.median(r[i] for r in rs):.2f}" for i in range(3))
                 for label, rs in runs.items()]
        print(f"nasx {' '.join(command[:3])}: " + " | ".join(cells) + "  (wall / user / sys s, medians)", flush=True)


if __name__ == "__main__":
    main()
