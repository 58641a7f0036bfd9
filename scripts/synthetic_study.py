"""Write a synthetic nasx study of N trials into an Optuna journal, for `nasx report` at scale (a thin command over
nasx.study.synthetic: no net is trained, the results are made up).

    python scripts/synthetic_study.py --trials 10000 --study big     # -> studies/big.journal
    nasx report big
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nasx.study.synthetic import make_study

__all__ = ["make_study"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", "-n", type=int, required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--studies-dir", type=Path, default=Path("studies"))
    parser.add_argument("--space", default="resnet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--as-workers", action="store_true", help="one journal record per attribute, as workers write")
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = args.studies_dir / f"{args.study}.journal"
    if path.exists():
        parser.error(f"{path} exists")
    seconds = make_study(path, args.study, args.trials, args.space, args.seed, as_workers=args.as_workers)
    print(f"{args.trials} trials -> {path} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
