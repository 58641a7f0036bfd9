"""Calibration of the repeats page (docs/repeats.md, Calibration): P(mean on front) and the seed-draw share against the
true front on simulated studies, and the winner's curse of the mean with the selection seed.

    python scripts/repeats_calibration.py
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import numpy as np
from test_repeat import front_calibration
t = time.time()
out, w, wo = front_calibration(1000, seed=7)
p, s, on = (np.array(x, dtype=float) for x in zip(*out))
print(f"{len(p)} repeated nets of 1000 studies; bias of the mean with its selection seed {100*w:+.3f} points, without {100*wo:+.3f}")
print(f"Brier: P(mean on front) {np.mean((p-on)**2):.4f}, seed-draw share {np.mean((s-on)**2):.4f}; mean P {p.mean():.3f}, mean share {s.mean():.3f}, truly on front {on.mean():.3f}")
for lo, hi in ((0, .2), (.2, .4), (.4, .6), (.6, .8), (.8, 1.01)):
    m = (p >= lo) & (p < hi); m2 = (s >= lo) & (s < hi)
    print(f"[{lo:.1f}, {min(hi,1):.1f}): P: {m.sum()} nets, mean P {p[m].mean():.3f}, on front {on[m].mean():.3f} (s.e. {np.sqrt(on[m].mean()*(1-on[m].mean())/max(m.sum(),1)):.3f}) | share: {m2.sum()} nets, mean {s[m2].mean():.3f}, on front {on[m2].mean():.3f}")
print(f"{time.time()-t:.0f} s")
