"""The refine test's level at round 1's threshold (0.05 / 4 / m) on the committed example's 48 real specs with planted
null errors (docs/refine.md, Calibration): every candidate tested on 2,000 error draws, permutation decisions beside
the Student t ones.

    python scripts/refine_tail_check.py
"""
import time, numpy as np
from scipy import stats
from nasx.experiments.refine_calibration import example_bench, planted_records
from nasx.experiments.refine import _nets, _member
from nasx.experiments.refine import space_mapping
from nasx.space import parse_space
from nasx.space.edit import candidates, flat
from nasx.stats import adjusted_shift_test, log_bins
b = example_bench()
data = flat(b.spaces[0]); space = parse_space(data, "x")
nets = _nets(list(b.rounds[0]), space)[0]
specs = [n.spec for n in nets]
fl = np.array([n.flops for n in nets]); edges = log_bins(list(fl), 4)
members = []
for r in candidates(data, space, specs):
    sub = parse_space(r.data, "x"); cache = {}
    inside = np.array([_member(sub, s, cache) for s in specs])
    if 5 <= inside.sum() <= len(specs) - 5:
        members.append((r.text, inside))
print(len(members), "candidates", flush=True)
thr = 0.05 / 4 / len(members)
rng = np.random.default_rng(123)
t0 = time.time(); tests = perm_hits = par_hits = 0
z = np.log(fl / 10e6) / np.log(3)
for rep in range(2000):
    err = np.round((0.76 - 0.03 * z + rng.normal(0, 0.031, len(z))) / 0.0005) * 0.0005
    for text, m in members:
        r = adjusted_shift_test(err[m], err[~m], fl[m], fl[~m], edges, threshold=thr, n_perm=200, seed=rep)
        tests += 1
        perm_hits += r.decision == "significant"
        par_hits += stats.t.cdf(r.t, r.df) <= thr
    if (rep + 1) % 250 == 0:
        print(rep + 1, tests, f"thr {thr:.6f} expected {thr*tests:.1f} perm {perm_hits} parametric {par_hits} {time.time()-t0:.0f}s", flush=True)
