"""Calibration of refine's complexity-normalized KS test (issue 18): planted nulls shaped like the real data (error a
function of FLOPs plus noise, ties, a restriction correlated with FLOPs, no effect given FLOPs), planted effects.

Run with -s to see the measured table (docs/refine.md quotes it):
    python -m pytest tests/experiments/test_refine_calibration.py -q -s
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from nasx.stats import complexity_weights, ks_permutation_pvalue, ks_stratified_test, log_bins

REPLICATES = 500
PERMUTATIONS = 199  # fixed inside the calibration: p = (1 + b) / 200 <= 0.05 exactly when b <= 9
ALPHA = 0.05
BAND = (10e6, 30e6)


def planted(rng: np.random.Generator, n: int, effect: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FLOPs log-uniform in the band; error falls with FLOPs (0.80 -> 0.70 across the band) plus noise (sd 0.05),
    rounded to 0.005 (ties, as accuracies on a few thousand images); the restriction is satisfied more often by larger
    nets (logistic in log FLOPs, from 1% at the band's bottom to 96% at its top); `effect` lowers the error of the
    nets that satisfy it (0: no effect given FLOPs)."""
    z = rng.uniform(0.0, 1.0, n)  # position in the band, log scale
    flops = BAND[0] * (BAND[1] / BAND[0]) ** z
    satisfy = rng.random(n) < 1 / (1 + np.exp(-8 * (z - 0.6)))
    error = 0.80 - 0.10 * z + rng.normal(0.0, 0.05, n) - effect * satisfy
    return np.round(error / 0.005) * 0.005, flops, satisfy


def _bins(n: int) -> int:
    return max(1, min(10, n // 10))  # refine's default: nets / 10, within 1..10


def old_pvalue(error, flops, satisfy, edges, seed) -> float:
    """The test refine used before issue 18: labels permuted across all nets, each net keeping its side's weight."""
    wa = complexity_weights(list(flops[satisfy]), edges)
    wb = complexity_weights(list(flops[~satisfy]), edges)
    return ks_permutation_pvalue(list(error[satisfy]), list(error[~satisfy]), wa, wb, n_perm=PERMUTATIONS, seed=seed)


def new_pvalue(error, flops, satisfy, edges, seed) -> float:
    return ks_stratified_test(error[satisfy], error[~satisfy], flops[satisfy], flops[~satisfy], edges,
                              n_perm=PERMUTATIONS, seed=seed).p_value


def rejection_rate(test, n: int, effect: float = 0.0, replicates: int = REPLICATES, seed: int = 0) -> float:
    """Share of `replicates` planted data sets (at least 5 nets on each side, as refine tests) where p <= ALPHA."""
    rng = np.random.default_rng([seed, n, int(effect * 1000)])
    rejected = done = 0
    while done < replicates:
        error, flops, satisfy = planted(rng, n, effect)
        if satisfy.sum() < 5 or (~satisfy).sum() < 5:
            continue
        edges = log_bins(list(flops), _bins(n))
        rejected += test(error, flops, satisfy, edges, done) <= ALPHA
        done += 1
    return rejected / replicates


LIMIT = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPLICATES)  # 0.079: 3 Monte Carlo standard errors above 0.05


@pytest.mark.slow
@pytest.mark.parametrize("n", [48, 142])
def test_the_refine_test_holds_its_level_on_a_null_shaped_like_the_data(n):
    new = rejection_rate(new_pvalue, n)
    old = rejection_rate(old_pvalue, n)
    print(f"\nnull, {n} nets, {_bins(n)} bins, {REPLICATES} replicates, {PERMUTATIONS} permutations: rejection at "
          f"alpha {ALPHA}: within-bin (new) {new:.3f}, across all nets (old) {old:.3f}; limit {LIMIT:.3f}")
    assert new <= LIMIT
    assert old > LIMIT  # the null is shaped to catch the old test's flaw: it must


@pytest.mark.slow
@pytest.mark.parametrize("n, effect, at_least", [(48, 0.05, 0.3), (142, 0.03, 0.4), (142, 0.05, 0.8)])
def test_the_refine_test_finds_planted_effects(n, effect, at_least):
    power = rejection_rate(new_pvalue, n, effect, replicates=200)
    print(f"\neffect -{effect * 100:.0f} points (noise sd 5), {n} nets: power at alpha {ALPHA} {power:.3f} "
          f"(200 replicates)")
    assert power >= at_least


def test_decisions_do_not_depend_on_the_permutation_seed():
    # a borderline split: its p near the threshold, so a fixed permutation count would flip with the seed
    rng = np.random.default_rng(7)
    error, flops, satisfy = planted(rng, 142, effect=0.02)
    edges = log_bins(list(flops), 10)
    results = [ks_stratified_test(error[satisfy], error[~satisfy], flops[satisfy], flops[~satisfy], edges,
                                  threshold=0.003, seed=s) for s in range(10)]
    p = [r.p_value for r in results]
    assert max(p) > min(p)  # the Monte Carlo p-value does move with the seed ...
    assert len({r.decision for r in results}) == 1  # ... the decision does not
    assert results[0].decision in ("significant", "not significant")
    # at the cap the decision is "undecided", never "significant"
    capped = ks_stratified_test(error[satisfy], error[~satisfy], flops[satisfy], flops[~satisfy], edges,
                                threshold=results[0].p_value, n_perm=100, max_perm=400)
    assert capped.decision == "undecided" and capped.permutations == 400


EXAMPLE = Path(__file__).resolve().parents[2] / "reports" / "examples" / "refine-resnext-cpu"


@pytest.mark.slow
def test_the_committed_example_decides_the_same_under_ten_permutation_seeds():
    """Round 3 of the committed example (rounds 1-3 pooled, 142 nets; nothing trained): the same decisions, the same
    verdict kind for every candidate, under permutation seeds 0-9."""
    from nasx.experiments.refine import RefineOptions, load_records, refine

    journal = str(EXAMPLE / "refine-resnext-cpu.journal")
    records = [r for k in (1, 2, 3) for r in load_records(f"refine-resnext-cpu-r{k}", journal).records]
    data = yaml.safe_load((EXAMPLE / "round-3.yaml").read_text())
    seen = set()
    for seed in range(10):
        r = refine(records, data, source="example", band=(10_000_000, 30_000_000), look=3,
                   options=RefineOptions(perm_seed=seed))
        assert r.nets == 142
        seen.add(tuple((e.step, e.restriction.text, e.kept, e.verdict.split(":")[0]) for e in r.evaluations))
    assert len(seen) == 1
    assert not any(kept for _, _, kept, _ in next(iter(seen)))  # the example keeps nothing under the valid test
