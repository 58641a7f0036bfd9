"""Calibration and power of refine's decisions by simulation: planted nulls and effects shaped like the real data,
for the single test (adjusted_shift_test at refine's decision rule) and for whole runs (`refine` on the committed
example's real specs and FLOPs, rounds 1-3 as the run judged them, with planted errors).

Used by scripts/refine_calibration.py (the full runs quoted in docs/refine.md) and the heavy tier's reduced runs."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..stats import adjusted_shift_test, log_bins
from ..study.record import COMPLETE, TrialRecord
from ..study.store import open_study
from .refine import RefineOptions, refine, space_mapping

__all__ = ["planted_split", "single_test_rejections", "ExampleBench", "example_bench", "planted_records",
           "RunOutcome", "whole_run", "whole_runs", "mc_se", "EXAMPLE", "PLANTED", "TailCheck", "tail_check"]

BAND = (10e6, 30e6)
EXAMPLE = Path(__file__).resolve().parents[2] / "reports" / "examples" / "refine-resnext-cpu"
PLANTED = "stages.aggregated.cardinality: 1..8 (power_of_two) -> 8 (complement of the upper cut)"  # cardinality 8 only


def mc_se(rate: float, n: int) -> float:
    """Monte Carlo standard error of a share measured over n replicates."""
    return math.sqrt(max(rate * (1 - rate), 1e-12) / n)


def planted_split(rng: np.random.Generator, n: int, effect: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FLOPs log-uniform in 10-30M; error falls with FLOPs (0.80 -> 0.70 across the band, so it varies inside every
    bin) plus noise (sd 0.05), rounded to 0.005 (ties); the restriction is satisfied more often by larger nets
    (logistic in log FLOPs, 1% at the bottom of the band, 96% at its top); `effect` lowers the error of the nets that
    satisfy it (0: no effect given FLOPs)."""
    z = rng.uniform(0.0, 1.0, n)
    flops = BAND[0] * (BAND[1] / BAND[0]) ** z
    satisfy = rng.random(n) < 1 / (1 + np.exp(-8 * (z - 0.6)))
    error = 0.80 - 0.10 * z + rng.normal(0.0, 0.05, n) - effect * satisfy
    return np.round(error / 0.005) * 0.005, flops, satisfy


def single_test_rejections(n: int, replicates: int, alphas: Sequence[float] = (0.05, 0.01), effect: float = 0.0,
                           seed: int = 0) -> dict[float, float]:
    """Share of `replicates` planted data sets (at least 5 nets on each side, refine's bins: nets / 10) where the
    adjusted shift test at threshold alpha (refine's sequential rule) says "significant", for each alpha."""
    rng = np.random.default_rng([seed, n, int(round(effect * 1000))])
    hits = {a: 0 for a in alphas}
    done = 0
    while done < replicates:
        error, flops, satisfy = planted_split(rng, n, effect)
        if satisfy.sum() < 5 or (~satisfy).sum() < 5:
            continue
        edges = log_bins(list(flops), max(1, min(10, n // 10)))
        for a in alphas:
            r = adjusted_shift_test(error[satisfy], error[~satisfy], flops[satisfy], flops[~satisfy], edges,
                                    threshold=a, n_perm=200, seed=done)
            hits[a] += r.decision == "significant"
        done += 1
    return {a: h / replicates for a, h in hits.items()}


@dataclass(frozen=True)
class ExampleBench:
    """The committed example's three rounds as the run judged them: each round's records (real specs and FLOPs),
    the space it sampled, and which nets satisfy the planted restriction."""

    rounds: tuple[tuple[TrialRecord, ...], ...]
    spaces: tuple[Mapping[str, Any], ...]


def example_bench(example: Path = EXAMPLE) -> ExampleBench:
    """The example's rounds 1-3 (48 nets each; the space of round 1 is resnext's cpu corner, rounds 2 and 3 sampled
    it again: nothing was kept)."""
    import yaml

    journal = str(example / "refine-resnext-cpu.journal")
    rounds = tuple(tuple(open_study(f"refine-resnext-cpu-r{k}", journal).records) for k in (1, 2, 3))
    spaces = (space_mapping("resnext", corner="cpu")[0], yaml.safe_load((example / "round-2.yaml").read_text()),
              yaml.safe_load((example / "round-3.yaml").read_text()))
    return ExampleBench(rounds, spaces)


def _cardinality_8(record: TrialRecord) -> bool:
    return all(getattr(s.block, "cardinality", None) == 8 for s in record.net.stages)


def planted_records(records: Sequence[TrialRecord], rng: np.random.Generator, effect: float = 0.0,
                    noise: float = 0.031) -> list[TrialRecord]:
    """The records with planted validation accuracies: error 0.76 - 0.03 z + noise (z the log-FLOPs position in the
    band: error falls with FLOPs inside every bin too; noise sd as the example's residuals, 3.1 points), rounded to
    0.0005 (2,000 validation images), lowered by `effect` for the nets whose every stage has cardinality 8 (the
    planted restriction, PLANTED)."""
    out = []
    for r in records:
        if r.state != COMPLETE or r.outcome.val_acc is None:
            out.append(r)
            continue
        z = math.log(r.flops / BAND[0]) / math.log(BAND[1] / BAND[0])
        error = 0.76 - 0.03 * z + rng.normal(0.0, noise) - (effect if _cardinality_8(r) else 0.0)
        error = min(max(round(error / 0.0005) * 0.0005, 0.0), 1.0)
        out.append(dataclasses.replace(r, outcome=dataclasses.replace(r.outcome, val_acc=1.0 - error)))
    return out


@dataclass(frozen=True)
class RunOutcome:
    """What one simulated run kept: the round of its first keep (None: none), whether the planted restriction was
    kept (and in which round), and every kept restriction's text."""

    first_keep: Optional[int]
    planted_round: Optional[int]
    kept: tuple[tuple[int, str], ...]


def whole_run(bench: ExampleBench, effect: float, seed: int, rounds: int = 3,
              options: Optional[RefineOptions] = None, only: Optional[int] = None) -> RunOutcome:
    """One run of `rounds` rounds on the bench with planted errors, decided by `refine` as run_refine does: round k
    judges rounds 1..k pooled (the space did not change) at look k; the run stops at the first round that keeps a
    restriction (its next round would sample the restricted space, which the bench does not hold). `only=k`: round
    k's refinement alone (rounds 1..k pooled at look k), as if the earlier rounds had kept nothing."""
    rng = np.random.default_rng([seed, int(round(effect * 1000))])
    planted = [planted_records(recs, rng, effect) for recs in bench.rounds]
    kept: list[tuple[int, str]] = []
    for k in range(1, rounds + 1) if only is None else (only,):
        pooled = [r for recs in planted[:k] for r in recs]
        res = refine(pooled, bench.spaces[k - 1], source="bench", band=(int(BAND[0]), int(BAND[1])), look=k,
                     options=options)
        kept = [(k, e.restriction.text) for e in res.kept]
        if kept:
            break
    first = kept[0][0] if kept else None
    planted_round = next((k for k, text in kept if text == PLANTED), None)
    return RunOutcome(first, planted_round, tuple(kept))


def whole_runs(effect: float, runs: int, rounds: int = 3, seed: int = 0, options: Optional[RefineOptions] = None,
               bench: Optional[ExampleBench] = None, on_run: Optional[Callable[[int, RunOutcome], None]] = None,
               only: Optional[int] = None) -> list[RunOutcome]:
    """`runs` simulated runs (seeds seed..seed+runs-1); `on_run(i, outcome)` after each. The in-band shares refine
    measures (seeded draws of a space: the same for every run of the bench) are computed once per space."""
    from unittest import mock

    from . import refine as refine_module

    bench = bench or example_bench()
    real, memo = refine_module.in_band_share, {}

    def in_band_share(space, band, draws, seed):
        key = (space.content_hash, tuple(band), draws, seed)
        if key not in memo:
            memo[key] = real(space, band, draws, seed)
        return memo[key]

    out = []
    with mock.patch.object(refine_module, "in_band_share", in_band_share):
        for i in range(runs):
            out.append(whole_run(bench, effect, seed + i, rounds, options, only))
            if on_run is not None:
                on_run(i, out[-1])
    return out


@dataclass(frozen=True)
class TailCheck:
    """Round 1's candidates tested at round 1's threshold on planted null errors: how many tests, and how many the
    permutation test and the Student t test rejected (expected under the null: threshold x tests)."""

    candidates: int
    threshold: float
    tests: int
    permutation_rejections: int
    t_rejections: int


def tail_check(draws: int = 2000, seed: int = 123, bench: Optional[ExampleBench] = None,
               on_progress: Optional[Callable[[TailCheck], None]] = None) -> TailCheck:
    """The refine test's level at round 1's threshold (0.05 / 4 / m) on the example's 48 real specs: every candidate
    with at least 5 nets on each side, tested on `draws` planted null error draws (error 0.76 - 0.03 z + noise sd
    3.1 points, rounded to 0.0005, z the log-FLOPs position in 10-30M)."""
    from scipy import stats

    from ..space import parse_space
    from ..space.edit import candidates, flat
    from .refine import _member, _nets

    bench = bench or example_bench()
    data = flat(bench.spaces[0])
    space = parse_space(data, "x")
    nets = _nets(list(bench.rounds[0]), space)[0]
    specs = [n.spec for n in nets]
    flops = np.array([n.flops for n in nets])
    edges = log_bins(list(flops), 4)
    members = []
    for r in candidates(data, space, specs):
        sub, cache = parse_space(r.data, "x"), {}
        inside = np.array([_member(sub, s, cache) for s in specs])
        if 5 <= inside.sum() <= len(specs) - 5:
            members.append(inside)
    threshold = 0.05 / 4 / len(members)
    rng = np.random.default_rng(seed)
    z = np.log(flops / 10e6) / np.log(3)
    tests = perm = par = 0
    for rep in range(draws):
        error = np.round((0.76 - 0.03 * z + rng.normal(0, 0.031, len(z))) / 0.0005) * 0.0005
        for m in members:
            r = adjusted_shift_test(error[m], error[~m], flops[m], flops[~m], edges, threshold=threshold, n_perm=200,
                                    seed=rep)
            tests += 1
            perm += r.decision == "significant"
            par += stats.t.cdf(r.t, r.df) <= threshold
        if on_progress is not None and (rep + 1) % 250 == 0:
            on_progress(TailCheck(len(members), threshold, tests, perm, int(par)))
    return TailCheck(len(members), threshold, tests, perm, int(par))
