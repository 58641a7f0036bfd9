"""The simulated clock: replay of a recorded fidelity run, the planted benchmark's noise, and the rung
strategy's promotions inside a simulated run."""

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau

from nasx.experiments.fidelity import load_fidelity
from nasx.study.rungs import promotion_order
from nasx.train.budget import Budget, Ladder
from nasx.experiments.simulate import (FixedBudget, PlantedBenchmark, ReplayTable, Rungs, compare, compute_to_reach,
                           hypervolume, simulate)
from nasx.space import load_space

EXAMPLE = Path(__file__).resolve().parents[2] / "reports" / "examples" / "fidelity-resnext-cpu"
BAND = (10e6, 30e6)


@pytest.fixture(scope="module")
def fidelity_data():
    return load_fidelity("resnext-cpu", storage=str(EXAMPLE / "fidelity-resnext-cpu.journal"))


def bench():
    return PlantedBenchmark(load_space("resnext").corner("cpu"), BAND)


def test_replay_serves_the_recorded_results(fidelity_data):
    table = ReplayTable.from_fidelity(fidelity_data)
    reference = next(b for b, r in fidelity_data.roles.items() if r == "reference")
    recorded = {r.spec_id: (r.outcome.val_acc, r.outcome.wall_time) for r in fidelity_data.budgets[reference] if r.state == "COMPLETE"}
    assert table.work[-1] == 1.0 and len(table.pool) == len(recorded) == 16
    trace = simulate(FixedBudget(table, 1.0, "random", seed=3), table, compute=1e9, workers=2)
    # every net of the pool trained once at the reference budget, with exactly its recorded accuracy and seconds
    assert sorted(k for k, *_ in trace.jobs) == sorted(recorded)
    for key, rung, acc, seconds in trace.jobs:
        assert (acc, seconds) == pytest.approx(recorded[key])
    assert trace.compute[-1] == pytest.approx(sum(s for _, s in recorded.values()))


def test_replay_rungs_use_the_recorded_proxy(fidelity_data):
    table = ReplayTable.from_fidelity(fidelity_data)
    proxy = next(b for b in fidelity_data.budgets if b == "e1-f0.125")
    ladder = Ladder.parse("e1-f0.125,e1-f0.5", eta=4)  # its work, derived from the budgets, is the recorded cost's
    assert ladder.work(table.native) == (fidelity_data.costs[proxy] / fidelity_data.costs["e1-f0.5"], 1.0)
    assert table.native == 32
    trace = simulate(Rungs(table, ladder, seed=0), table, compute=1e9, workers=1)
    low = {k: a for k, r, a, _ in trace.jobs if r == 0}
    recorded = {r.spec_id: r.outcome.val_acc for r in fidelity_data.budgets[proxy] if r.state == "COMPLETE"}
    assert low == pytest.approx({k: recorded[k] for k in low}) and len(low) == 16
    promoted = [k for k, r, *_ in trace.jobs if r == 1]
    assert len(promoted) == len(set(promoted)) >= 16 // 4     # each once; ASHA never takes a promotion back


def test_planted_proxy_ranks_like_the_measured_cpu_proxies():
    b = bench()
    tau = b.proxy_tau(1 / 9)   # 300 nets, one seed at 1/9 of the work against one at the top budget
    assert 0.15 < tau < 0.45  # measured at explore's CPU proxy: 0.19-0.31 for 1/16 to 1/4 of its work
    rng = np.random.default_rng(0)
    keys = [b.new_net(rng) for _ in range(300)]
    low = [b.observe(k, 1 / 9, 0)[0] for k in keys]
    top = [b.observe(k, 1.0, 0)[0] for k in keys]
    assert kendalltau(low, top).statistic == pytest.approx(tau)  # proxy_tau is that computation
    spread = np.std([b.truth(k) for k in keys])
    assert 0.02 < spread < 0.04  # 16 measured nets spanned 36.8-45.2%


def test_proxy_noise_sharpens_the_cheap_ranking():
    space = load_space("resnext").corner("cpu")
    tau = {s: PlantedBenchmark(space, BAND, proxy_noise=s).proxy_tau(1 / 9) for s in (1.0, 0.25, 0.0)}
    # measured 0.37, 0.56, 0.60: with no proxy noise the cheap budget ranks like a second seed of the top one
    assert tau[1.0] < 0.45 and tau[0.0] > 0.5 and tau[0.0] - tau[1.0] > 0.15
    assert tau[1.0] < tau[0.25] <= tau[0.0] + 0.02
    b0, b1 = PlantedBenchmark(space, BAND, proxy_noise=0.0), bench()
    keys = [[b.new_net(rng) for _ in range(300)] for b, rng in ((b0, np.random.default_rng(1)), (b1, np.random.default_rng(1)))]
    assert keys[0] == keys[1]                                      # the scale does not change which nets are drawn
    keys = keys[0]
    truth = [b1.truth(k) for k in keys]
    assert truth == [b0.truth(k) for k in keys]
    against_truth = {name: kendalltau([b.observe(k, 1 / 9, 0)[0] for k in keys], truth).statistic
                     for name, b in (("0", b0), ("1", b1))}
    assert against_truth["0"] > 0.6 and against_truth["1"] < 0.5   # measured 0.69 and 0.37; one top-budget seed: 0.69
    with pytest.raises(ValueError, match="proxy_noise"):
        PlantedBenchmark(space, BAND, proxy_noise=-0.1)


def test_proxy_noise_leaves_the_top_budget_unchanged():
    space = load_space("resnext").corner("cpu")
    benches = [PlantedBenchmark(space, BAND, proxy_noise=s) for s in (0.0, 0.5, 1.0, 2.0)]
    traces = [simulate(FixedBudget(b, 1.0, "random", seed=2), b, compute=1500.0, workers=2) for b in benches]
    assert all(t.jobs == traces[0].jobs and t.hv == traces[0].hv for t in traces)  # random search: the same run
    keys = [k for k, *_ in traces[0].jobs]
    for k in keys:
        tops = {b.observe(k, 1.0, seed) for b in benches for seed in (0, 7)}
        assert len(tops) == 2                                      # two seeds, the same under every scale
        assert len({b.observe(k, 1 / 9, 0)[1] for b in benches}) == 1   # seconds do not depend on the scale
        assert len({b.observe(k, 1 / 9, 0)[0] for b in benches}) == 4   # the cheap budget's accuracy does


def test_rungs_promote_each_net_once_within_quota_and_stay_in_compute():
    b = bench()
    ladder = Ladder.geometric(Budget(1, 1.0), eta=3, rungs=3)
    compute = 4000.0
    strategy = Rungs(b, ladder, seed=1)
    trace = simulate(strategy, b, compute=compute, workers=3)
    per_rung = Counter((k, r) for k, r, *_ in trace.jobs)
    assert max(per_rung.values()) == 1                           # no net trained twice at one rung
    # every promotion was of a net in the top floor(n / 3) of the n results its rung had when it was decided
    assert strategy.log and len({(r, k) for r, k, _ in strategy.log}) == len(strategy.log)
    for rung, key, n in strategy.log:
        ranked = strategy.results[rung][:n]
        top = [ranked[i].key for i in promotion_order(ranked)[: n // 3]]
        assert key in top
    assert Counter(r for _, r, *_ in trace.jobs)[2] >= 1
    promoted = {k for k, r, *_ in trace.jobs if r == 1}
    assert promoted <= {k for k, r, *_ in trace.jobs if r == 0}
    longest = max(s for *_, s in trace.jobs)
    assert compute <= sum(s for *_, s in trace.jobs) <= compute + 3 * longest
    b2 = bench()
    again = simulate(Rungs(b2, ladder, seed=1), b2, compute=compute, workers=3)
    assert again.jobs == trace.jobs and again.hv == trace.hv    # a seed fixes the run


def test_hypervolume_by_hand_and_compute_to_reach():
    # FLOPs at the band's ends: normalized 0 and 1; reference (0.9, log(1.1 * 3) / log 3)
    x_ref = math.log(3.3) / math.log(3)
    assert hypervolume([(0.5, 10e6)], BAND, 0.9) == pytest.approx(0.4 * x_ref)
    assert hypervolume([(0.5, 10e6), (0.3, 30e6)], BAND, 0.9) == pytest.approx(0.4 * x_ref + 0.2 * (x_ref - 1))
    assert hypervolume([(0.95, 10e6)], BAND, 0.9) == 0.0
    b = bench()
    trace = simulate(FixedBudget(b, 1.0, "random", 0), b, compute=2000.0, workers=2)
    assert trace.hv == sorted(trace.hv)                           # the front only grows
    assert compute_to_reach(trace, trace.hv[-1]) <= trace.compute[-1]
    assert compute_to_reach(trace, trace.hv[-1] + 1) == math.inf


@pytest.mark.slow
def test_compare_targets_random_median_and_reports_every_seed():
    ladder = Ladder.geometric(Budget(1, 1.0), eta=3, rungs=3)
    result = compare(bench, ["random", "rungs"], ladder, compute=3000.0, seeds=3, workers=2)
    random_ = result.outcome("random")
    assert result.target == sorted(random_.final_hv)[0]           # the lower quartile of 3 values: the least
    assert random_.reached == 3 and len(result.outcome("rungs").to_target) == 3
    assert random_.median_to_target == sorted(random_.to_target)[1] <= 3000.0
    assert len(result.traces) == 6


def test_cli_writes_the_page_and_refuses_bad_input(tmp_path):
    from typer.testing import CliRunner

    from nasx.cli.app import app

    runner = CliRunner()
    out = tmp_path / "sim"
    result = runner.invoke(app, ["simulate", "--seeds", "2", "--first-seed", "5", "--compute", "800",
                                 "--strategies", "random,rungs", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "index.html").is_file() and (out / "hv_vs_compute.png").is_file()
    page = (out / "index.html").read_text()
    tau = float(page.split("proxy noise scale 1 ")[1].split("nets, ")[1].split(" at work 1/9")[0])
    assert tau == pytest.approx(bench().proxy_tau(1 / 9), abs=0.005)   # the page states the scale and its tau
    import pandas as pd

    table = pd.read_csv(out / "strategies.csv")
    assert sorted(table.strategy.unique()) == ["random", "rungs"] and len(table) == 4
    assert sorted(table.seed) == [5, 5, 6, 6]                    # --first-seed: fresh seeds 5 and 6
    for args, says in [(["--strategies", "grid"], "unknown grid"), (["--rungs", "0.5,0.25"], "increasing"),
                       (["--rungs", "0.25,0.5"], "write it as 1"), (["--flops", "30M:10M"], "--flops"),
                       (["--proxy-noise", "-0.5"], "'--proxy-noise': -0.5 must be >= 0"),
                       (["--replay", "resnext-cpu", "--proxy-noise", "0.5"], "--replay serves recorded results as they are"),
                       (["--noise-from", "rungs-cpu", "--proxy-noise", "0.5"], "not both"),
                       (["--noise-from", "nothing-here", "--storage", str(tmp_path / "none.journal")],
                        "no fidelity run 'nothing-here'")]:
        bad = runner.invoke(app, ["simulate", "--seeds", "1", "--out", str(tmp_path / "x"), *args])
        assert bad.exit_code == 2 and says in bad.output and "Traceback" not in bad.output, bad.output
        assert len(bad.output.strip().splitlines()) == 1, bad.output
    assert not (tmp_path / "x").exists()                         # nothing written for bad input


@pytest.mark.heavy
def test_default_rungs_need_less_compute_than_random_over_20_seeds():
    # the default ladder (docs/simulate.md's sweep): 1/9, 1/3, 1 with eta 3 on seeds 0-19, 2 workers, 2 device-hours
    ladder = Ladder.geometric(Budget(1, 1.0), eta=3, rungs=3)
    result = compare(bench, ["random", "rungs"], ladder, compute=7200.0, seeds=20, workers=2)
    random_, rungs = result.outcome("random"), result.outcome("rungs")
    assert rungs.reached >= random_.reached
    # the goal was <= 1/3; measured 0.52 (IQR 0.44-0.90 of random's median): it is not met
    assert rungs.median_to_target <= 0.6 * random_.median_to_target


@pytest.mark.heavy
def test_steep_rungs_reach_a_third_of_random_with_a_better_cheap_budget():
    # docs/simulate.md, "How good must the cheap budget be?": 1/25, 1/5, 1 with eta 5 at proxy-noise 0.25 on the
    # fresh seeds 100-119 (reports/examples/simulate-resnext-cpu-proxy-0.25): measured 0.30 of random's compute
    space = load_space("resnext").corner("cpu")
    ladder = Ladder((Budget(1, 1 / 25), Budget(1, 1 / 5), Budget(1, 1.0)), eta=5)
    result = compare(lambda: PlantedBenchmark(space, BAND, proxy_noise=0.25), ["random", "rungs"], ladder,
                     compute=7200.0, seeds=20, workers=2, first_seed=100)
    random_, rungs = result.outcome("random"), result.outcome("rungs")
    assert rungs.reached == 20 and rungs.median_to_target <= random_.median_to_target / 3


def test_a_continued_promotion_pays_only_what_its_rung_below_did_not_train():
    """rungs+continue: a promotion pays its rung's seconds less the rung below's trunk (all but its decay fifth, net
    of the fixed cost) plus the checkpoint I/O; a net at the lowest rung and a retraining pay in full; the same
    nets and results as retraining, for less compute."""
    from nasx.experiments.simulate import CHECKPOINT_IO, make_strategy, strategy_known

    ladder = Ladder.geometric(Budget(1, 1.0), eta=3, rungs=3)
    runs = {}
    for name in ("rungs", "rungs+continue"):
        b = bench()
        strategy = make_strategy(name, b, ladder, seed=1)
        runs[name] = (simulate(strategy, b, compute=3000.0, workers=1), b, strategy)
    (plain, b, _), (cont, _, strategy) = runs["rungs"], runs["rungs+continue"]
    assert strategy.continuation and not runs["rungs"][2].continuation
    assert [(k, r, a) for k, r, a, _ in cont.jobs[:40]] == [(k, r, a) for k, r, a, _ in plain.jobs[:40]]
    full = {(k, r): s for k, r, _, s in plain.jobs}
    work = ladder.work()
    for key, rung, _, paid in cont.jobs[:40]:
        seconds = b.observe(key, work[rung], 0)[1]
        if rung == 0:
            assert paid == pytest.approx(seconds)
        else:
            below = b.observe(key, work[rung - 1], 0)[1]
            assert paid == pytest.approx(seconds - 0.8 * (below - 3.0) + CHECKPOINT_IO)
            assert paid < full[(key, rung)]
    assert len(cont.jobs) > len(plain.jobs)  # the same compute buys more trainings
    assert all(map(strategy_known, ("rungs+continue", "rungs+predict", "rungs+continue+predict")))
    assert not any(map(strategy_known, ("rungs+retrain", "random+continue", "rungs+predict+predict")))


def test_a_predicted_ranking_starts_once_enough_nets_reached_the_top():
    """rungs+predict: the same promotions as the plain rungs until 8 nets have top results; then some differ."""
    from nasx.experiments.simulate import make_strategy
    from nasx.study.rungs import MIN_PAIRS

    ladder = Ladder.geometric(Budget(1, 1.0), eta=3, rungs=3)
    logs = {}
    for name in ("rungs", "rungs+predict"):
        b = bench()
        strategy = make_strategy(name, b, ladder, seed=2)
        trace = simulate(strategy, b, compute=5000.0, workers=1)
        logs[name] = (strategy.log, [k for k, r, *_ in trace.jobs if r == 2])
    (plain, plain_top), (pred, _) = logs["rungs"], logs["rungs+predict"]
    # before its MIN_PAIRS-th promotion fewer than MIN_PAIRS nets can have top results: the fallback, the same order
    assert pred[:MIN_PAIRS] == plain[:MIN_PAIRS]
    assert pred != plain and len(plain_top) >= MIN_PAIRS


def test_the_bounds_change_only_what_they_name_below_the_top_budget():
    """scripts/simulate_bounds.py's benchmarks: a perfect cheap budget observes truth less the shared shift, no noise;
    no fixed cost takes the planted 3 s off a cheap training only; the top budget is the planted benchmark's."""
    from nasx.experiments.simulate import PlantedBenchmark, bound_benchmark
    from nasx.space import load_space

    plain = PlantedBenchmark(load_space("resnext").corner("cpu"), (10e6, 30e6))
    perfect, free = bound_benchmark("perfect"), bound_benchmark("no-fixed-cost")
    key = [b.new_net(np.random.default_rng(7)) for b in (plain, perfect, free)][0]  # the same net in each
    w = 1 / 9
    assert perfect.observe(key, w, 3)[0] == pytest.approx(perfect.truth(key) - 0.12 * (1 - w ** 0.35))
    assert plain.observe(key, w, 3)[0] != pytest.approx(perfect.observe(key, w, 3)[0])
    assert free.observe(key, w, 3) == pytest.approx((plain.observe(key, w, 3)[0], plain.observe(key, w, 3)[1] - 3.0))
    for bench in (perfect, free):
        assert bench.observe(key, 1, 3) == plain.observe(key, 1, 3)
