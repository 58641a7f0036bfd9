"""Coverage of the paired bootstrap interval of a tau difference (docs/fidelity.md): trivariate normal samples of
n nets (a reference and two rankings) with known correlations, 1,000 samples per case.

    python scripts/fidelity_paired_coverage.py
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_analysis import paired_tau_coverage
t=time.time()
for n in (16, 32):
    for case in ((0.5, 0.5, 0.25), (0.8, 0.4, 0.3), (0.9, 0.6, 0.55), (0.3, 0.6, 0.2)):
        print(n, case, f"{paired_tau_coverage(n, *case, reps=1000, n_boot=2000, seed=n):.3f}", f"{time.time()-t:.0f}s", flush=True)
