"""Calibration of refine's test (issues 18, 28): planted nulls shaped like the real data (error a function of FLOPs that
varies inside every bin, ties, a restriction correlated with FLOPs, no effect given FLOPs), refine's decision rule
(sequential within-bin permutations sized to the threshold), whole refinements of the committed example's real specs.

The full simulations (4,000 single-test replicates, 200 whole runs per planted effect) are
scripts/refine_calibration.py (docs/refine.md quotes them); the heavy tier runs reduced versions:
    python -m pytest tests/experiments/test_refine_calibration.py -q -s -m heavy
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from nasx.experiments.refine_calibration import (EXAMPLE, PLANTED, example_bench, planted_split,
                                                 single_test_rejections, whole_runs)
from nasx.stats import adjusted_shift_test, complexity_weights, ks_permutation_pvalue, ks_stratified_test, log_bins

ALPHA = 0.05


def _limit(rate: float, n: int, k: float = 3.0) -> float:
    return rate + k * math.sqrt(rate * (1 - rate) / n)


def old_rejections(n: int, replicates: int, seed: int = 0) -> float:
    """The test refine used before issue 18 (labels permuted across all nets, each keeping its side's weight)."""
    rng = np.random.default_rng([seed, n])
    rejected = done = 0
    while done < replicates:
        error, flops, satisfy = planted_split(rng, n)
        if satisfy.sum() < 5 or (~satisfy).sum() < 5:
            continue
        edges = log_bins(list(flops), max(1, min(10, n // 10)))
        wa, wb = complexity_weights(list(flops[satisfy]), edges), complexity_weights(list(flops[~satisfy]), edges)
        rejected += ks_permutation_pvalue(list(error[satisfy]), list(error[~satisfy]), wa, wb, n_perm=99,
                                          seed=done) <= ALPHA
        done += 1
    return rejected / replicates


@pytest.mark.slow
@pytest.mark.parametrize("n", [48, 142])
def test_the_refine_test_holds_its_level_on_a_null_shaped_like_the_data(n):
    replicates = 400
    new = single_test_rejections(n, replicates, alphas=(ALPHA,))[ALPHA]
    old = old_rejections(n, 200)
    print(f"\nnull, {n} nets: rejection at {ALPHA}: adjusted shift test {new:.3f} ({replicates} replicates), "
          f"old pooled KS {old:.3f} (200)")
    assert new <= _limit(ALPHA, replicates)
    assert old > _limit(ALPHA, 200)  # the null is shaped to catch the old test's flaw: it must


def test_p_values_reach_the_thresholds_refine_needs_and_the_seed_only_moves_borderline_ones():
    rng = np.random.default_rng(11)
    error, flops, satisfy = planted_split(rng, 142, effect=0.10)
    edges = log_bins(list(flops), 10)
    args = (error[satisfy], error[~satisfy], flops[satisfy], flops[~satisfy], edges)
    # a strong effect at a threshold below what a 64,000-permutation Clopper-Pearson interval could ever clear
    strong = adjusted_shift_test(*args, threshold=0.0001)
    assert strong.decision == "significant" and strong.p_value <= 0.0001 and strong.t < -5
    assert strong.permutations == math.ceil(20 / 0.0001) and not strong.borderline
    # the KS test of issue 18 does not keep it at that threshold (its p far above it; and its 99.9% interval at the
    # 64,000-permutation cap could never clear 0.0001)
    assert ks_stratified_test(*args, threshold=0.0001).decision != "significant"
    # a clear null stops after 20 as-extreme permutations (Besag-Clifford): p = 20 / drawn
    null = adjusted_shift_test(error[satisfy] + 0.10, error[~satisfy], *args[2:], threshold=0.001)
    assert null.decision == "not significant" and null.hits == 20 and null.p_value == pytest.approx(20 / null.permutations)
    # a p near its threshold: the seeds may disagree, and every such decision is marked borderline
    weak_rng = np.random.default_rng(5)
    e2, f2, s2 = planted_split(weak_rng, 142, effect=0.022)
    edges2 = log_bins(list(f2), 10)
    centre = adjusted_shift_test(e2[s2], e2[~s2], f2[s2], f2[~s2], edges2, n_perm=20000).p_value
    runs = [adjusted_shift_test(e2[s2], e2[~s2], f2[s2], f2[~s2], edges2, threshold=centre, seed=s) for s in range(8)]
    assert all(r.borderline for r in runs if r.decision != runs[0].decision)
    assert any(r.borderline for r in runs)
    # a user's cap below what the threshold needs: undecided, never significant on too few permutations
    capped = adjusted_shift_test(*args, threshold=0.0001, n_perm=100, max_perm=400)
    assert capped.decision == "undecided" and capped.permutations == 400


def _bench_records(effect: float, seed: int = 0):
    """The committed example's 142 nets (rounds 1-3) with planted errors, as run_refine's round 3 judges them."""
    bench = example_bench()
    from nasx.experiments.refine_calibration import planted_records

    rng = np.random.default_rng(seed)
    return [r for recs in bench.rounds for r in planted_records(recs, rng, effect)], bench.spaces[2]


def test_a_planted_restriction_is_kept_at_the_run_wide_threshold():
    """Round 3 of the example (142 nets, p needed 0.05 / 2^4 / m): a planted -5-point restriction is kept (under the
    KS test of issue 18 it was "undecided": no p-value could get below its 64,000-permutation cap's interval)."""
    from nasx.experiments.refine import refine

    records, data = _bench_records(0.05)
    r = refine(records, data, source="bench", band=(10_000_000, 30_000_000), look=3)
    assert [e.restriction.text for e in r.kept][:1] == [PLANTED]
    e = r.kept[0]
    assert e.threshold < 0.0002 and e.p_value <= e.threshold and e.shift < -3


@pytest.mark.heavy
def test_whole_runs_keep_nothing_under_the_null_and_planted_restrictions_with_power():
    """Reduced: 40 whole runs per effect (the full 200: scripts/refine_calibration.py, docs/refine.md)."""
    bench = example_bench()
    null = whole_runs(0.0, 40, bench=bench, seed=1000)
    five = whole_runs(0.05, 40, bench=bench, seed=1000)
    false = sum(o.first_keep is not None for o in null) / 40
    power = sum(o.planted_round is not None for o in five) / 40
    print(f"\n40 runs: null, kept anything {false:.3f}; -5 points, planted kept {power:.3f}")
    assert false <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 40)
    assert power >= 0.7


@pytest.mark.heavy
@pytest.mark.parametrize("n", [48, 142])
def test_the_single_test_level_at_005_and_001(n):
    """Reduced: 1,000 replicates (the full 4,000: scripts/refine_calibration.py)."""
    rates = single_test_rejections(n, 1000, seed=1)
    for a, r in rates.items():
        assert r <= _limit(a, 1000, 2.0) + 0.001


@pytest.mark.slow
def test_the_committed_example_decides_the_same_under_ten_permutation_seeds():
    """Round 3 of the committed example (rounds 1-3 pooled, 142 nets; nothing trained): the same decisions, the same
    verdict kind for every candidate, under permutation seeds 0-9."""
    from nasx.experiments.refine import RefineOptions, refine
    from nasx.study.store import open_study

    journal = str(EXAMPLE / "refine-resnext-cpu.journal")
    records = [r for k in (1, 2, 3) for r in open_study(f"refine-resnext-cpu-r{k}", journal).records]
    data = yaml.safe_load((EXAMPLE / "round-3.yaml").read_text())
    seen = set()
    for seed in range(10):
        r = refine(records, data, source="example", band=(10_000_000, 30_000_000), look=3,
                   options=RefineOptions(perm_seed=seed))
        assert r.nets == 142
        seen.add(tuple((e.step, e.restriction.text, e.kept, e.verdict.split(":")[0]) for e in r.evaluations))
    assert len(seen) == 1
    assert not any(kept for _, _, kept, _ in next(iter(seen)))  # the example keeps nothing


def test_the_tail_check_tests_round_one_s_candidates_at_round_one_s_threshold():
    """docs/refine.md's tail check (scripts/refine_tail_check.py): the example's 19 round-1 candidates with 5 nets a
    side, each tested at 0.05 / 4 / 19 on every planted null draw; a valid test rejects almost none."""
    from nasx.experiments.refine_calibration import tail_check

    check = tail_check(draws=5)
    assert (check.candidates, check.tests) == (19, 95) and check.threshold == pytest.approx(0.05 / 4 / 19)
    assert check.permutation_rejections <= 1 and check.t_rejections <= 1
