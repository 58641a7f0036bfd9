"""The refine test's level at round 1's threshold (0.05 / 4 / m) on the committed example's 48 real specs with planted
null errors (docs/refine.md, Calibration): every candidate tested on 2,000 error draws, permutation decisions beside
the Student t ones (nasx.experiments.refine_calibration.tail_check).

    python scripts/refine_tail_check.py
"""

from __future__ import annotations

import argparse
import time

from nasx.experiments.refine_calibration import tail_check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2000, help="planted null error draws")
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    start = time.time()

    def progress(c) -> None:
        print(f"{c.tests} tests ({c.candidates} candidates), threshold {c.threshold:.6f}: expected "
              f"{c.threshold * c.tests:.1f}, permutation {c.permutation_rejections}, Student t {c.t_rejections} "
              f"({time.time() - start:.0f} s)", flush=True)

    progress(tail_check(args.draws, args.seed, on_progress=progress))


if __name__ == "__main__":
    main()
