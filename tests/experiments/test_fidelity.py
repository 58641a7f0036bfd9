"""nasx.experiments.fidelity and `nasx fidelity`: budgets, the resumable per-budget studies, rank agreement, the page, --proxy."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pytest
import typer
from typer.testing import CliRunner

from nasx.stats import kendall_tau
from nasx.experiments.fidelity import (FidelityData, FidelityError, load_fidelity, measure, plan_fidelity,
                           resolve_proxy, run_fidelity)
from nasx.net.complexity import complexity
from nasx.net.spec import AggregatedBlock, NetSpec, Stage, Stem
from nasx.study.record import TrialRecord
from nasx.report.fidelity import write_fidelity_report
from nasx.study import StudyConfig, open_storage
from nasx.train import TrainResult
from nasx.train.budget import Budget, BudgetError

from study_fakes import curve_train, final_accuracy


def nets(n: int = 6) -> list[NetSpec]:
    """n distinct small aggregated nets at 16 px (the synthetic data's side)."""
    out = []
    for i in range(n):
        stages = tuple(Stage(depth=1, width=w * (i + 2), stride=2, block=AggregatedBlock(cardinality=2, group_width=4))
                       for w in (8, 16))
        out.append(NetSpec(stem=Stem("cifar", 8), stages=stages, num_classes=10, resolution=16))
    return out


def config(tmp_path, **kw) -> StudyConfig:
    return StudyConfig(dataset="synthetic", device="cpu", workers=1, storage=str(tmp_path / "fid.journal"), **kw)


CALLS: list[tuple[str, int, float, int]] = []


def counting_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False, progress=None):
    """The curve trainer (accuracy a function of the net alone), logging what it was asked to train."""
    CALLS.append((spec.id, budget.epochs, budget.fraction, dataset.resolution))
    return curve_train(spec, dataset, budget, device, seed, callback, config=config, test=test)


def reversed_when_cheap_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                              progress=None):
    """Below a quarter of the data the order of nets is reversed: a proxy that ranks them backwards."""
    r = curve_train(spec, dataset, budget, device, seed, callback, config=config, test=test)
    if budget.fraction < 0.25:
        flipped = 1.0 - r.final_val_acc
        return TrainResult(**{**r.__dict__, "val_acc": [flipped], "final_val_acc": flipped})
    return r


# ---------------------------------------------------------------------------------------------
# Budgets and plans


def test_budget_names_parse_back_and_cost_scales_with_area():
    b = Budget(2, 0.25, resolution=24, batch_size=64)
    assert b.name == "e2-f0.25-r24-b64"
    assert Budget.parse(b.name) == b
    assert Budget.parse("epochs=2,fraction=0.25,res=24,batch=64") == b
    assert Budget.parse("e1-f1") == Budget(1, 1.0)
    assert b.cost(32) == pytest.approx(2 * 0.25 * (24 / 32) ** 2)
    assert Budget(1, 0.5).cost(32) == 0.5


@pytest.mark.parametrize("text, message", [
    ("e0-f0.5", "epochs"), ("e1-f1.5", "fraction"), ("one epoch", "write e<epochs>"), ("fraction=0.5", "give epochs"),
    ("epochs=x", "not a number")])
def test_bad_budgets_are_one_line_errors(text, message):
    with pytest.raises(BudgetError, match=message):
        Budget.parse(text)


def test_the_reference_must_cost_four_times_the_largest_proxy():
    ok = plan_fidelity("t", nets(4), [Budget(1, 0.125), Budget(1, 0.25)], Budget(1, 1.0), native=32)
    assert [b.name for b in ok.budgets] == ["e1-f0.125", "e1-f0.25", "e1-f1"]  # cheapest first
    with pytest.raises(FidelityError, match="at least 4x"):
        plan_fidelity("t", nets(4), [Budget(1, 0.5)], Budget(1, 1.0), native=32)
    # a lower resolution makes the proxy cheaper: 1 x 1 x (16/32)^2 = 0.25, so e1-f1 is 4x it
    plan_fidelity("t", nets(4), [Budget(1, 1.0, resolution=16)], Budget(1, 1.0), native=32)
    with pytest.raises(FidelityError, match="at least 4"):
        plan_fidelity("t", nets(3), [Budget(1, 0.1)], Budget(1, 1.0), native=32)
    with pytest.raises(FidelityError, match="repeat"):
        plan_fidelity("t", nets(4), [Budget(1, 0.1), Budget(1, 0.1)], Budget(1, 1.0), native=32)


# ---------------------------------------------------------------------------------------------
# Runs


def test_a_proxy_that_ranks_as_the_reference_has_tau_one_and_a_resumed_run_trains_nothing_twice(tmp_path):
    CALLS.clear()
    plan = plan_fidelity("same", nets(6), [Budget(1, 0.125), Budget(1, 0.25)], Budget(2, 0.5), native=16)
    summaries = run_fidelity(plan, config(tmp_path), train_fn=counting_train)
    assert [s.snapshot.complete for s in summaries] == [6, 6, 6]
    assert sorted((e, f) for _, e, f, _ in CALLS) == sorted([(1, 0.125)] * 6 + [(1, 0.25)] * 6 + [(2, 0.5)] * 6)
    assert len(set(CALLS)) == 18  # each net once under each budget

    result = measure(load_fidelity("same", str(tmp_path / "fid.journal")))
    assert result.reference == "e2-f0.5"
    assert [p.budget for p in result.proxies] == ["e1-f0.125", "e1-f0.25"]
    for p in result.proxies:  # the fake's accuracy depends on the net alone: every proxy ranks as the reference
        assert p.nets == 6 and p.tau == pytest.approx(1.0) and p.rho == pytest.approx(1.0)
        assert p.top_k == 1.0 and p.regret == 0.0
    expected = sorted(final_accuracy(n) for n in nets(6))
    assert sorted(result.nets["e2-f0.5"]) == pytest.approx(expected)

    CALLS.clear()
    again = run_fidelity(plan, config(tmp_path), train_fn=counting_train)
    assert CALLS == [] and [s.snapshot.complete for s in again] == [6, 6, 6]
    store = open_storage(str(tmp_path / "fid.journal"))
    for budget in plan.budgets:
        trials = optuna.load_study(study_name=f"fidelity-same-{budget.name}", storage=store).get_trials()
        assert len(trials) == 6
        assert all("test_acc" not in t.user_attrs for t in trials)  # the test split is never read


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    CALLS.clear()
    plan = plan_fidelity("cut", nets(5), [Budget(1, 0.2)], Budget(1, 0.8), native=16)

    def stop_at_seventh(*args, **kwargs):
        if len(CALLS) == 6:
            CALLS.append(("stop", 0, 0.0, 0))
            raise KeyboardInterrupt
        return counting_train(*args, **kwargs)

    first = run_fidelity(plan, config(tmp_path), train_fn=stop_at_seventh)
    assert first[-1].interrupted and len(first) == 2  # the proxy finished, the reference was cut after 1 net
    trained_before = [c for c in CALLS if c[0] != "stop"]
    CALLS.clear()
    run_fidelity(plan, config(tmp_path), train_fn=counting_train)
    assert len(CALLS) == 4  # the 4 reference nets not done, nothing else
    assert not {c[:3] for c in CALLS} & {c[:3] for c in trained_before}


def test_a_proxy_that_reverses_the_order_has_tau_minus_one_and_regret(tmp_path):
    plan = plan_fidelity("rev", nets(6), [Budget(1, 0.125), Budget(1, 0.25)], Budget(1, 1.0), native=16)
    run_fidelity(plan, config(tmp_path), train_fn=reversed_when_cheap_train)
    result = measure(load_fidelity("rev", str(tmp_path / "fid.journal")))
    bad, good = result.proxies
    assert bad.budget == "e1-f0.125" and bad.tau == pytest.approx(-1.0) and bad.rho == pytest.approx(-1.0)
    ref = sorted(final_accuracy(n) for n in nets(6))
    assert bad.regret == pytest.approx(ref[-1] - ref[0])  # the proxy's best is the reference's worst
    assert bad.top_k == 0.0
    assert good.tau == pytest.approx(1.0)
    assert result.cheapest(0.7).budget == "e1-f0.25"
    assert result.cheapest(1.01) is None

    out = write_fidelity_report("rev", storage=str(tmp_path / "fid.journal"), out=tmp_path / "rep", min_tau=0.7)
    page = (out / "index.html").read_text()
    assert "The cheapest proxy whose 95% interval of Kendall tau lies above 0.7 is e1-f0.25" in page
    assert "FLOPs alone (baseline: no training)" in page and "params alone (baseline: no training)" in page
    for f in ("fidelity.csv", "nets.csv", "proxy_vs_reference.png", "cost_vs_tau.png", "cost_vs_tau.svg"):
        assert (out / f).is_file() and (out / f).stat().st_size > 100
    import pandas as pd

    table = pd.read_csv(out / "fidelity.csv")
    assert list(table["budget"]) == ["e1-f0.125", "e1-f0.25", "FLOPs alone", "params alone"]
    assert list(table["kind"]) == ["proxy", "proxy", "baseline", "baseline"]
    assert table["kendall_tau"].tolist()[:2] == pytest.approx([-1.0, 1.0])
    ref_acc = result.nets["e1-f1"].to_numpy(float)
    assert table["kendall_tau"].tolist()[2:] == pytest.approx(
        [kendall_tau(result.nets["flops"].to_numpy(float), ref_acc),
         kendall_tau(result.nets["params"].to_numpy(float), ref_acc)])


def seed_noise_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                     progress=None):
    """The curve trainer plus a seed's luck per net (sd 0.02): the reference under another seed reorders close nets."""
    CALLS.append((spec.id, budget.epochs, budget.fraction, seed))
    r = curve_train(spec, dataset, budget, device, seed, callback, config=config, test=test)
    acc = r.final_val_acc + np.random.default_rng([seed, int(spec.id[:8], 16)]).normal(0, 0.02)
    return TrainResult(**{**r.__dict__, "val_acc": [acc], "final_val_acc": acc})


def test_ceiling_seeds_train_the_reference_again_and_measure_its_own_agreement(tmp_path):
    CALLS.clear()
    plan = plan_fidelity("roof", nets(6), [Budget(1, 0.125)], Budget(1, 1.0), native=16, ceiling_seeds=3)
    run_fidelity(plan, config(tmp_path), train_fn=seed_noise_train)
    assert sorted(c[3] for c in CALLS if c[2] == 1.0) == [0] * 6 + [1] * 6 + [2] * 6  # the reference, 3 seeds
    assert sum(1 for c in CALLS if c[2] == 0.125) == 6  # the proxy once
    result = measure(load_fidelity("roof", str(tmp_path / "fid.journal")))
    assert [c.budget for c in result.ceiling] == ["e1-f1 seed +1", "e1-f1 seed +2"]
    ref = result.nets["e1-f1"].to_numpy(float)
    for c in result.ceiling:
        assert c.kind == "ceiling" and c.nets == 6
        assert c.tau == pytest.approx(kendall_tau(result.nets[c.budget].to_numpy(float), ref))
    assert [p.budget for p in result.proxies] == ["e1-f0.125"]  # the extra seeds are no proxy
    CALLS.clear()
    run_fidelity(plan, config(tmp_path), train_fn=seed_noise_train)
    assert CALLS == []  # resumed: nothing trained twice
    out = write_fidelity_report("roof", storage=str(tmp_path / "fid.journal"), out=tmp_path / "rep")
    page = (out / "index.html").read_text()
    assert "e1-f1 seed +1 (ceiling: the reference, another seed)" in page and "seed-to-seed agreement" in page
    with pytest.raises(FidelityError, match="ceiling-seeds"):
        plan_fidelity("roof", nets(6), [Budget(1, 0.125)], Budget(1, 1.0), native=16, ceiling_seeds=0)


def test_a_lower_resolution_trains_the_same_net_on_resized_images(tmp_path):
    CALLS.clear()
    plan = plan_fidelity("res", nets(4), [Budget(1, 1.0, resolution=8)], Budget(1, 1.0), native=16)
    run_fidelity(plan, config(tmp_path), train_fn=counting_train)
    assert sorted(r for *_, r in CALLS) == [8] * 4 + [16] * 4
    store = open_storage(str(tmp_path / "fid.journal"))
    proxy = optuna.load_study(study_name="fidelity-res-e1-f1-r8", storage=store)
    for t in proxy.get_trials():
        rec = TrialRecord.from_trial(t)
        deployed = NetSpec.from_dict(dict(rec.spec))
        assert deployed.resolution == 16 and rec.flops == complexity(deployed).flops  # counts: the deployed net
        assert rec.outcome.trained_spec_id == deployed.replace(resolution=8).id != rec.spec_id
        assert rec.budget["resolution"] == 8 and rec.split_hash.endswith("@8")
        # the stored budget keeps the keys and their order of earlier versions: epochs, fraction, resolution, batch
        assert json.dumps(t.user_attrs["budget"]) == '{"epochs": 1, "fraction": 1.0, "resolution": 8}'


def test_measure_agrees_with_the_rank_statistics_on_stored_records():
    refs = [0.50, 0.61, 0.55, 0.70, 0.42, 0.66, 0.58]
    proxy = [0.30, 0.41, 0.38, 0.36, 0.20, 0.45, 0.33]

    def recs(values, budget, role):
        return [TrialRecord.of(i, "COMPLETE", val_acc=v, wall_time=2.0 if role == "proxy" else 9.0, spec_id=f"n{i}",
                            flops=1000 + i, tags={"fidelity": "m", "budget": budget, "role": role, "net": i})
                for i, v in enumerate(values)]

    data = FidelityData("m", "mem", {"e1-f0.1": recs(proxy, "e1-f0.1", "proxy"),
                                     "e1-f1": recs(refs, "e1-f1", "reference")},
                        {"e1-f0.1": "proxy", "e1-f1": "reference"}, {"e1-f0.1": 0.1, "e1-f1": 1.0})
    p, = measure(data, top_k=2).proxies
    assert p.tau == pytest.approx(kendall_tau(proxy, refs))
    from scipy.stats import kendalltau, spearmanr

    assert p.tau == pytest.approx(kendalltau(proxy, refs).statistic)
    assert p.rho == pytest.approx(spearmanr(proxy, refs).statistic)
    assert p.tau_ci[0] <= p.tau <= p.tau_ci[1]
    assert p.top_k == 0.5  # proxy's top-2: nets 5, 1; reference's: 3, 5
    assert p.regret == pytest.approx(0.70 - 0.66) and p.regret_range == pytest.approx((0.04, 0.04))
    assert p.seconds_per_net == 2.0 and measure(data).reference_seconds == 9.0


def _data(proxy, refs, flops, params, name="m"):
    def recs(values, budget, role):
        return [TrialRecord.of(i, "COMPLETE", val_acc=v, wall_time=2.0 if role == "proxy" else 9.0, spec_id=f"n{i}",
                            flops=flops[i], params=params[i],
                            tags={"fidelity": name, "budget": budget, "role": role, "net": i})
                for i, v in enumerate(values)]

    return FidelityData(name, "mem", {"e1-f0.1": recs(proxy, "e1-f0.1", "proxy"), "e1-f1": recs(refs, "e1-f1", "reference")},
                        {"e1-f0.1": "proxy", "e1-f1": "reference"}, {"e1-f0.1": 0.1, "e1-f1": 1.0})


def test_regret_and_top_k_do_not_depend_on_how_the_proxy_breaks_a_tie():
    # the proxy scores nets 0 and 3 equally (as e1-f0.125-r24 scores nets 0 and 6 in the committed example):
    # the reference's best (net 0) or a net 2.9 points worse is taken, each with probability 1/2
    refs = [0.4515, 0.3875, 0.3755, 0.4225, 0.40, 0.39, 0.41, 0.38]
    proxy = [0.313, 0.147, 0.256, 0.313, 0.20, 0.21, 0.22, 0.19]
    flops = [8, 1, 2, 7, 3, 4, 6, 5]
    p, = measure(_data(proxy, refs, flops, flops), top_k=1).proxies
    assert p.regret_range == pytest.approx((0.0, 0.029)) and p.regret == pytest.approx(0.0145)
    assert p.top_k_range == (0.0, 1.0) and p.top_k == 0.5
    swapped = [proxy[3], *proxy[1:3], proxy[0], *proxy[4:]]  # the same scores, the tied nets in the other order
    refs_swapped = [refs[3], *refs[1:3], refs[0], *refs[4:]]
    q, = measure(_data(swapped, refs_swapped, flops, flops), top_k=1).proxies
    assert (q.regret, *q.regret_range, q.top_k, *q.top_k_range) == pytest.approx(
        (p.regret, *p.regret_range, p.top_k, *p.top_k_range))


def test_baselines_rank_by_flops_and_params_and_the_verdict_needs_the_interval_above_the_threshold(tmp_path):
    rng = np.random.default_rng(0)
    n = 12
    refs = np.linspace(0.3, 0.6, n)
    flops = np.arange(1, n + 1) * 1000  # FLOPs alone ranks the nets exactly as the reference does
    params = rng.permutation(n) + 100
    good = refs + rng.normal(0, 0.035, n)  # a proxy with tau 0.88 whose interval reaches below 0.7
    result = measure(_data(list(good), list(refs), list(flops), list(params)))
    p, = result.proxies
    by = {b.budget: b for b in result.baselines}
    assert set(by) == {"FLOPs alone", "params alone"} and all(b.kind == "baseline" for b in by.values())
    assert by["FLOPs alone"].tau == pytest.approx(1.0) and by["FLOPs alone"].regret == 0.0
    assert by["params alone"].tau == pytest.approx(kendall_tau(params, refs))
    assert by["FLOPs alone"].cost == 0.0 and by["FLOPs alone"].nets == n
    assert p.tau > 0.7 > p.tau_ci[0]
    assert result.cheapest(0.7) is None  # the point estimate clears 0.7, its interval does not
    assert not result.beats_baselines(p)  # and FLOPs alone ranks better for free
    low = p.tau_ci[0] - 0.01
    assert result.cheapest(low) is None  # above the threshold, but not above FLOPs alone
    no_flops = measure(_data(list(good), list(refs), list(params), list(params)))
    assert no_flops.cheapest(no_flops.proxies[0].tau_ci[0] - 0.01).budget == "e1-f0.1"


# ---------------------------------------------------------------------------------------------
# explore --proxy and the CLI


def test_explore_takes_a_proxy_by_name_or_from_a_fidelity_run(tmp_path, monkeypatch):
    plan = plan_fidelity("pick", nets(6), [Budget(1, 0.125), Budget(1, 0.25)], Budget(1, 1.0), native=16)
    run_fidelity(plan, config(tmp_path), train_fn=reversed_when_cheap_train)
    assert resolve_proxy("e2-f0.5-r24")[0] == Budget(2, 0.5, resolution=24)
    monkeypatch.chdir(tmp_path)  # the fidelity run is found in studies/ by name
    (tmp_path / "studies").mkdir()
    (tmp_path / "fid.journal").rename(tmp_path / "studies" / "fidelity-pick.journal")
    budget, note = resolve_proxy("pick")
    assert budget == Budget(1, 0.25) and "cheapest whose Kendall tau interval lies above 0.7" in note
    assert resolve_proxy("pick:e1-f0.125")[0] == Budget(1, 0.125)
    with pytest.raises(FidelityError, match="no budget"):
        resolve_proxy("pick:e3-f1")
    with pytest.raises(FidelityError, match="no proxy .* has a Kendall tau interval above 1.5"):
        resolve_proxy("pick", min_tau=1.5)
    with pytest.raises(FidelityError, match="no fidelity run 'nothing'"):
        resolve_proxy("nothing")


def cli_app() -> typer.Typer:
    from nasx.cli.app import app

    return app


@pytest.mark.parametrize("args, message", [
    (["--proxy", "e1-f0.5", "--reference", "e1-f1"], "at least 4x"),
    (["--proxy", "bogus"], "write e<epochs>"),
    (["--from-study", "nothing"], "unknown study 'nothing'"),
    (["--report-only", "--name", "missing"], "no fidelity run 'missing'"),
])
def test_cli_errors_are_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli_app(), ["fidelity", "--dataset", "synthetic", "--device", "cpu", *args])
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert "Traceback" not in result.output


def test_explore_rejects_a_proxy_with_budget_fields(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli_app(), ["explore", "--dataset", "synthetic", "--proxy", "e1-f0.25", "--epochs", "2"])
    assert result.exit_code != 0 and "--proxy sets the budget; leave out --epochs" in result.output


@pytest.mark.slow
def test_the_real_trainer_runs_a_tiny_fidelity_study_with_a_resolution_proxy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli_app(), [
        "fidelity", "--dataset", "synthetic", "--device", "cpu", "--space", "resnet", "--corner", "none",
        "--samples", "4", "--flops", "1M:4M", "--proxy", "e1-f0.25-r8", "--reference", "e1-f1", "--name", "real",
        "--val-size", "400"])
    assert result.exit_code == 0, result.output
    assert "e1-f0.25-r8" in result.output and "report:" in result.output
    import pandas as pd

    nets_table = pd.read_csv(tmp_path / "reports" / "fidelity-real" / "nets.csv")
    assert len(nets_table) == 4 and nets_table["e1-f1"].notna().all()
    assert (nets_table["e1-f1"] > 0.1).any()  # synthetic data is learnable: above chance


def test_a_plain_proxy_budget_is_read_without_the_fidelity_experiment(tmp_path):
    """`--proxy e1-f0.25` is a Budget parsed where the flag is read; only a fidelity run's name needs the fidelity
    experiment (which measures the run to pick its budget)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    probe = ("import sys\nsys.argv = ['nasx', 'explore', '--proxy', 'e1-f0.25', '--dataset', "
             "'imagefolder:/nonexistent', '--no-report', '--device', 'cpu']\nfrom nasx.cli.app import main\ntry:\n"
             "    main()\nexcept SystemExit as e:\n    print(e.code, 'nasx.experiments.fidelity' in sys.modules)")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["2", "False"], out.stdout + out.stderr
    assert "nasx: note: proxy e1-f0.25" in out.stderr and "/nonexistent does not exist" in out.stderr
def test_the_committed_example_reads_no_evidence_either_way_against_flops_alone():
    """Issue 28: the best proxy's tau minus FLOPs alone's is -0.01 with a paired interval of about [-0.5, 0.4]: not
    "no proxy beats FLOPs", which point taus said, but no evidence either way (nothing retrained)."""
    from pathlib import Path

    from nasx.experiments.fidelity import load_fidelity
    from nasx.report.fidelity import verdict

    journal = Path(__file__).resolve().parents[2] / "reports/examples/fidelity-resnext-cpu/fidelity-resnext-cpu.journal"
    result = measure(load_fidelity("resnext-cpu", str(journal)), n_boot=1000)
    best = max(result.proxies, key=lambda p: p.tau)
    flops = next(v for v in best.versus if v.baseline == "FLOPs alone")
    assert best.budget == "e1-f0.125-r24" and flops.tau.value == pytest.approx(-0.0070, abs=0.0005)
    assert flops.tau.low < -0.3 and flops.tau.high > 0.3 and flops.verdict == "no evidence either way"
    assert flops.regret.value == pytest.approx(1.45 / 100 - 3.60 / 100, abs=1e-4)
    assert all(v.verdict == "no evidence either way" for p in result.proxies for v in p.versus)
    assert not any(result.beats_baselines(p) for p in result.proxies)
    text = verdict(result, 0.7)
    assert "Against FLOPs alone, no evidence either way for any proxy" in text and "not above" not in text
