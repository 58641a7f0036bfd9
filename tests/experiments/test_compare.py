"""`nasx compare` (nasx.experiments.compare): the hypervolume difference of two retrained fronts paired by seed with
its t interval and verdict, by hand; a comparison of two small synthetic studies that trains each (net, seed) once
and re-renders without training; the committed CPU example re-rendered from its journals; the interval's coverage
and power under planted fronts shaped like the real ones (heavy)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from nasx.cli.app import app
from nasx.experiments.compare import CompareError, Comparison, Front, FrontNet, compare, hv_difference
from nasx.stats.pareto import hypervolume
from nasx.study import StudyConfig, run_study
from nasx.study.record import COMPLETE, Shelf
from nasx.study.run import Candidate
from nasx.study.store import open_study
from nasx.train.budget import Budget
from study_fakes import curve_train, final_accuracy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "reports" / "examples" / "rungs-vs-default-cpu"
EARLIER = EXAMPLE / "2026-12-01"  # the first comparison (rungs retrained, 2 seeds)
BAND, CHANCE = (5_000_000, 30_000_000), 0.9


def net(trial: int, flops: int, *test_acc: float) -> FrontNet:
    return FrontNet(trial, f"id{trial}", f"net {trial}", flops, None, tuple(test_acc))


# ---------------------------------------------------------------------------------------------
# The difference and its interval, by hand


def test_the_difference_is_paired_by_seed_with_a_student_t_interval_of_n_minus_1_df():
    a = Front("a", (net(0, 6_000_000, 0.40, 0.42, 0.41), net(1, 20_000_000, 0.45, 0.44, 0.47)))
    b = Front("b", (net(0, 6_000_000, 0.40, 0.42, 0.41), net(2, 12_000_000, 0.48, 0.48, 0.49)))
    d = hv_difference(a, b, BAND, CHANCE)
    hv = {f.study: [hypervolume([(1 - n.test_acc[k], n.flops) for n in f.nets], BAND, CHANCE) for k in range(3)]
          for f in (a, b)}
    diffs = [y - x for x, y in zip(hv["a"], hv["b"])]
    assert d.per_seed == pytest.approx(diffs, abs=1e-15)
    half = stats.t.ppf(0.975, 2) * statistics.stdev(diffs) / math.sqrt(3)
    assert (d.test.low, d.test.high) == pytest.approx((statistics.fmean(diffs) - half, statistics.fmean(diffs) + half))
    assert d.test.n == 3 and d.test.low > 0 and d.verdict == "higher beyond the seed spread"
    assert hv_difference(b, a, BAND, CHANCE).verdict == "lower beyond the seed spread"
    assert "(t, 2 df): higher beyond the seed spread" in d.text()
    # b's middle net trades places with a's big one under seed 3: the interval holds 0
    c = Front("c", (net(0, 6_000_000, 0.40, 0.42, 0.41), net(2, 12_000_000, 0.46, 0.43, 0.30)))
    assert hv_difference(a, c, BAND, CHANCE).verdict == "no difference shown (the 95% interval holds 0)"
    one = Front("one", tuple(dataclasses.replace(n, test_acc=n.test_acc[:1]) for n in b.nets))
    first = Front("first", tuple(dataclasses.replace(n, test_acc=n.test_acc[:1]) for n in a.nets))
    assert hv_difference(first, one, BAND, CHANCE).verdict == "no difference shown (one seed: no interval)"
    # the same front twice: every difference 0, no spread to judge by
    assert hv_difference(a, a, BAND, CHANCE).verdict.startswith("no difference shown (the same difference")
    # the hypervolume of the seed means: each net's mean test accuracy
    assert a.hv_of_mean(BAND, CHANCE) == pytest.approx(
        hypervolume([(1 - 0.41, 6_000_000), (1 - statistics.fmean([0.45, 0.44, 0.47]), 20_000_000)], BAND, CHANCE))


# ---------------------------------------------------------------------------------------------
# Two small synthetic studies compared: each (net, seed) trains once, a second call trains nothing

CALLS: list[tuple[str, int, bool]] = []


def retrain_fn(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False, progress=None,
               continuation=None):
    """The curve trainer, logging (net, seed, test) and, with `test`, a test accuracy of the net's own plus a seed's
    luck (sd 0.02)."""
    CALLS.append((spec.id, seed, test))
    r = curve_train(spec, dataset, budget, device, seed, callback, config=config)
    luck = np.random.default_rng([seed, int(spec.id[:8], 16)]).normal(0, 0.02)
    return dataclasses.replace(r, test_acc=final_accuracy(spec) + luck if test else None, seed=seed)


def tiny(tmp_path, study: str, trials: int) -> StudyConfig:
    return StudyConfig(dataset="synthetic", space="resnet", flops=(1_000_000, 4_000_000), budget=Budget(1, 0.5),
                       device="cpu", sampler="random", workers=1, trials=trials, seed=3, prune=False, study=study,
                       storage=str(tmp_path / f"{study}.journal"))


def test_compare_retrains_each_front_net_once_a_seed_and_rerenders_without_training(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # the journal's durability is not under test: 60% of the time
    for study, trials in (("base", 4), ("other", 6)):  # one sampler stream: other's first 4 nets are base's
        run_study(tiny(tmp_path, study, trials), train_fn=curve_train)
    shelf = Shelf(folder=tmp_path)
    fronts = {s: open_study(s, shelf.url(s)).front() for s in ("base", "other")}
    nets = {r.spec_id for f in fronts.values() for r in f}
    shared = {r.spec_id for r in fronts["base"]} & {r.spec_id for r in fronts["other"]}
    assert len(nets) > max(map(len, fronts.values())) >= 2 and shared  # fronts of 2 or more nets, some on both
    CALLS.clear()
    done = compare(["base", "other"], shelf=shelf, seeds=(1, 2), train_fn=retrain_fn)
    assert done.retrain == "base-retrain" and done.trained == 2 * len(nets)
    assert sorted(CALLS) == sorted((i, s, True) for i in nets for s in (1, 2))  # a shared net trains once a seed
    retrained = [r for r in open_study("base-retrain", shelf.url("base-retrain")).records if r.state == COMPLETE]
    assert all(r.budget == {"epochs": 1, "fraction": 0.5} and r.tags == {"compare": "front"} for r in retrained)
    test = {(r.spec_id, r.seed): r.outcome.test_acc for r in retrained}
    for front, study in zip(done.fronts, ("base", "other")):
        assert [n.trial for n in front.nets] == [r.number for r in fronts[study]]
        assert [n.test_acc for n in front.nets] == [tuple(test[(r.spec_id, s)] for s in (1, 2)) for r in fronts[study]]
    assert done.band == (1_000_000, 4_000_000) and done.chance == pytest.approx(0.9)
    page = done.write(tmp_path / "out")
    data = json.loads((tmp_path / "out" / "compare.json").read_text())
    d = done.differences()[0]
    assert data["differences"][0]["per_seed"] == pytest.approx(list(d.per_seed))
    assert data["studies"][1]["hv_of_mean"] == pytest.approx(done.fronts[1].hv_of_mean(done.band, 0.9))
    assert d.text() in page.read_text()
    # again: every (net, seed) is stored, so nothing trains and the companion's journal is not written
    journal = (tmp_path / "base-retrain.journal").read_bytes()
    CALLS.clear()
    again = compare(["base", "other"], shelf=shelf, seeds=(1, 2), train_fn=retrain_fn)
    assert CALLS == [] and again == dataclasses.replace(done, trained=0)
    assert (tmp_path / "base-retrain.journal").read_bytes() == journal
    # and run_study itself, given candidates that are all done, trains nothing either
    cfg = dataclasses.replace(tiny(tmp_path, "base-retrain", 1), test=True)
    candidates = [Candidate(r.net, seed=r.seed, tags={"compare": "front"}) for r in retrained]
    run_study(cfg, candidates=candidates, train_fn=retrain_fn)
    assert CALLS == [] and len(open_study("base-retrain", shelf.url("base-retrain")).records) == len(retrained)
    # a third seed trains only the new (net, seed) pairs
    more = compare(["base", "other"], shelf=shelf, seeds=(1, 2, 3), train_fn=retrain_fn)
    assert more.trained == len(nets) and sorted(CALLS) == sorted((i, 3, True) for i in nets)
    assert more.differences()[0].test.n == 3


def test_bad_comparisons_are_one_line_errors(tmp_path):
    shutil.copy(EARLIER / "e2e-after.journal", tmp_path / "base.journal")  # a study named e2e-after
    shelf = Shelf(folder=tmp_path)
    with pytest.raises(CompareError, match="two or more distinct studies"):
        compare(["base", "base"], shelf=shelf)
    with pytest.raises(CompareError, match="distinct seeds"):
        compare(["base", "x"], shelf=shelf, seeds=(1, 1))
    res = CliRunner().invoke(app, ["compare", "e2e-after", "nope", "--storage", str(tmp_path / "base.journal"),
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "unknown study 'nope'" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["compare", "base", "base", "--seeds", "1,two", "--studies-dir", str(tmp_path)])
    assert res.exit_code == 2 and "--seeds 1,two: give whole numbers" in res.output


# ---------------------------------------------------------------------------------------------
# The committed CPU example re-rendered from its journals, without training


def _hv_of_mean(page: str) -> dict[str, tuple[float, list[float]]]:
    """The study rows of a compare.md: study -> (HV of mean test acc, HV per retraining seed)."""
    rows = re.findall(r"^\| ([\w-]+) \| [\d,]+ \| [\d,]+ \| \d+ \| ([\d.]+) \| ([\d., ]+) \|$", page, re.M)
    return {s: (float(m), [float(x) for x in per.split(", ")]) for s, m, per in rows}


@pytest.mark.parametrize("folder, studies, seeds, says", [
    (EXAMPLE, ("cmp-default", "cmp-continue"), "1,2,3",
     ["(cmp-continue - cmp-default) per retraining seed: -0.0089, +0.0000, -0.0041; mean -0.0043",
      "95% interval -0.0155 .. +0.0068 (t, 2 df): no difference shown"]),
    (EARLIER, ("e2e-after", "cmp-rungs"), "1,2",
     ["(cmp-rungs - e2e-after) per retraining seed: -0.0003, -0.0152; mean -0.0078", "(t, 1 df): no difference shown"]),
])
def test_the_committed_cpu_examples_rerender_from_their_journals_without_training(tmp_path, folder, studies, seeds,
                                                                                  says):
    names = (*studies, "cmp-retrain")
    for name in names:
        shutil.copy(folder / f"{name}.journal", tmp_path)  # a copy: nothing can write into the committed files
    res = CliRunner().invoke(app, ["compare", *studies, "--studies-dir", str(tmp_path), "--retrain",
                                   "cmp-retrain", "--seeds", seeds, "--device", "cpu", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "0 retraining(s) run" in res.output
    committed = _hv_of_mean((folder / "compare.md").read_text())
    again = _hv_of_mean((tmp_path / "out" / "compare.md").read_text())
    assert set(committed) == set(studies) and again == committed  # e.g. 0.4212 and 0.4160 of the means
    for text in says:
        assert text in res.output
    for name in names:
        assert (tmp_path / f"{name}.journal").read_bytes() == (folder / f"{name}.journal").read_bytes()


# ---------------------------------------------------------------------------------------------
# Calibration: the interval's coverage of the true difference under planted fronts like the real ones


def planted_fronts(rng: np.random.Generator, gap: float, twins: bool = True) -> tuple[list, list, list]:
    """Two fronts shaped like the CPU example's: 3-6 nets each over 5-30 MFLOPs, true test accuracies 35-50%
    rising with FLOPs; 1-2 nets on both (trained once a seed: the same result in both fronts). The second front's
    own nets are `gap` points of accuracy better than the curve, and (`twins`) at the FLOPs and accuracies of the
    first's own nets, each with its own training noise: gap 0 with twins is a planted null (the true difference 0
    by symmetry); else at FLOPs of their own. Returns (flops, accuracies, owners): per net, the fronts it is on."""
    def curve(k: int) -> tuple[np.ndarray, np.ndarray]:
        flops = np.sort(np.exp(rng.uniform(np.log(5e6), np.log(30e6), k)))
        return flops, 0.35 + 0.15 * np.log(flops / 5e6) / np.log(6) + rng.normal(0, 0.005, k)

    k = int(rng.integers(3, 7))
    flops, acc = curve(k)
    shared = set(rng.choice(k, size=int(rng.integers(1, 3)), replace=False).tolist())
    own = [(f, a) for i, (f, a) in enumerate(zip(flops, acc)) if i not in shared]
    if not twins:
        own = list(zip(*curve(int(rng.integers(max(1, 3 - len(shared)), 7 - len(shared))))))
    nets = [(f, a, (0, 1) if i in shared else (0,)) for i, (f, a) in enumerate(zip(flops, acc))]
    nets += [(f, a + gap, (1,)) for f, a in own]
    return [n[0] for n in nets], [n[1] for n in nets], [n[2] for n in nets]


def simulated(flops, acc, owners, rng, seeds: int, sd: float = 0.018) -> tuple[Front, Front]:
    """Both fronts retrained under `seeds` seeds: each net's test accuracy its true one plus N(0, sd) a seed."""
    test = np.asarray(acc)[:, None] + rng.normal(0, sd, (len(acc), seeds))
    nets = [FrontNet(i, f"n{i}", "", int(f), None, tuple(test[i])) for i, f in enumerate(flops)]
    first, second = (Front(name, tuple(n for n, o in zip(nets, owners) if k in o))
                     for k, name in enumerate(("first", "second")))
    return first, second


def coverage_and_power(gap: float, replicates: int, seeds: int, twins: bool = True, scenarios: int = 20,
                       truth_draws: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(coverage of the true difference, share of intervals that exclude 0, mean true difference) over `replicates`
    comparisons under `seeds` retraining seeds: `scenarios` planted front pairs (`planted_fronts`), the true
    difference of each 0 for a planted null, else the mean of `truth_draws` simulated per-seed differences (a
    standard error about 1/45 of one seed's spread)."""
    rng = np.random.default_rng(seed)
    covered = excludes = 0
    truths = []
    for _ in range(scenarios):
        shape = planted_fronts(rng, gap, twins)
        if gap == 0 and twins:
            truth = 0.0  # twins: the two fronts' hypervolumes have one distribution
        else:
            truth = statistics.fmean(hv_difference(*simulated(*shape, rng, truth_draws), BAND, CHANCE).per_seed)
        truths.append(truth)
        for _ in range(replicates // scenarios):
            d = hv_difference(*simulated(*shape, rng, seeds), BAND, CHANCE).test
            covered += d.low <= truth <= d.high
            excludes += d.significant
    n = scenarios * (replicates // scenarios)
    return covered / n, excludes / n, statistics.fmean(truths)


def test_under_a_planted_null_the_3_seed_interval_covers_0_95_percent_of_the_time():
    """2,000 comparisons (20 front pairs like the CPU example's, 100 retrainings under 3 seeds each)."""
    coverage, excludes, _ = coverage_and_power(0.0, 2000, 3)
    assert 0.94 <= coverage <= 0.96 and excludes == pytest.approx(1 - coverage)  # measured 0.9505


@pytest.mark.heavy
@pytest.mark.parametrize("seeds", [3, 5, 10])
def test_the_interval_covers_the_true_difference_and_its_power_grows_with_the_gap_and_the_seeds(seeds):
    """docs/rungs.md's table: coverage and power at planted gaps of 1.5 and 3 points of accuracy (hypervolume about
    0.009 and 0.018, the CPU example's size) on twin fronts, and coverage on fronts whose own nets lie at FLOPs of
    their own (each pair's true difference its own, of either sign: no power to read there)."""
    power = []
    for twins in (True, False):
        for gap in (0.0, 0.015, 0.03):
            coverage, excludes, truth = coverage_and_power(gap, 2000, seeds, twins, seed=1)
            print(f"seeds {seeds}, {'twins' if twins else 'own FLOPs'}, gap {gap}: mean true hv difference "
                  f"{truth:+.4f}, coverage {coverage:.3f}, intervals excluding 0 {excludes:.3f}")
            assert 0.92 <= coverage <= 0.98
            if twins:
                power.append(excludes)
    assert power[0] <= 0.08 and power[0] < power[1] < power[2]
