"""Reports of studies with rungs (successive halving) and the hypervolume against compute, on synthetic studies
written straight into an Optuna journal (no training)."""

from __future__ import annotations

import datetime

import optuna
import pandas as pd
import pytest

from nasx.train.budget import Budget
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState, create_trial

import nasx
from nasx.report import write_report
from nasx.study.record import Shelf
from nasx.study.store import open_study
from nasx.report.tables import hv_vs_compute, pareto_table, study_points
from nasx.stats import hypervolume
from nasx.study.record import StudyInfo, TrialRecord, write_info

RUNGS = ({"epochs": 1, "fraction": 0.125}, {"epochs": 1, "fraction": 0.5}, {"epochs": 3, "fraction": 1.0})
NAMES = ("e1-f0.125", "e1-f0.5", "e3-f1")
BAND = (1_000_000, 4_000_000)
SPEC = nasx.zoo.get("resnet20").replace(resolution=16, num_classes=10).to_dict()
T0 = datetime.datetime(2026, 12, 1, 12, 0, 0)

# (net, rung, state, val_acc, flops, wall seconds, promoted_from, duplicate_of), in the order they completed
PLAN = [
    ("a", 0, "COMPLETE", 0.50, 1.2e6, 10.0, None, None),
    ("b", 0, "COMPLETE", 0.55, 2.0e6, 12.0, None, None),
    ("x", 0, "COMPLETE", 0.95, 1.0e6, 9.0, None, None),  # the best point of all, but at the lowest budget
    ("c", 0, "COMPLETE", 0.40, 3.0e6, 15.0, None, None),
    ("d", 0, "FAIL", None, 3.5e6, 4.0, None, None),
    ("b", 1, "COMPLETE", 0.62, 2.0e6, 40.0, 1, None),
    ("a", 1, "COMPLETE", 0.58, 1.2e6, 35.0, 0, None),
    ("e", 0, "PRUNED", None, 2.5e6, 6.0, None, None),
    ("b", 2, "COMPLETE", 0.70, 2.0e6, 200.0, 5, None),
    ("a", 2, "COMPLETE", 0.66, 1.2e6, 180.0, 6, None),
    ("b", 2, "COMPLETE", 0.70, 2.0e6, 200.0, 5, 8),  # a duplicate of trial 8: costs nothing
    ("c", 1, "COMPLETE", 0.45, 3.0e6, 50.0, 3, None),
    ("c", 2, "COMPLETE", 0.74, 3.0e6, 250.0, 11, None),
]


def make_rung_study(path, name: str = "rungs") -> None:
    """The PLAN as a stored rung study (StudyInfo with three rungs, eta 3; --flops band in its config)."""
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize"])
    write_info(study, StudyInfo(space="resnet", dataset="synthetic", budget=Budget(3, 1.0),
                                objectives=("accuracy", "flops"), val_size=0.1, seed=0, rungs=RUNGS, eta=3),
               {"space": "resnet", "dataset": "synthetic", "flops": list(BAND)})
    for number, (net, rung, state, acc, flops, wall, source, dup) in enumerate(PLAN):
        record = TrialRecord.of(number, state, spec=SPEC, spec_id=f"net-{net}", description=net,
                             flops=int(flops), params=1000, dataset="synthetic", budget=RUNGS[rung], rung=rung,
                             promoted_from=source, duplicate_of=dup, val_acc=acc, wall_time=wall,
                             curve=(acc,) if acc is not None else (), fail_reason="nan" if state == "FAIL" else None)
        trial = create_trial(state=TrialState[state], values=[acc, flops] if state == "COMPLETE" else None,
                             user_attrs=record.to_attrs())
        trial.datetime_start = T0 + datetime.timedelta(minutes=number)
        trial.datetime_complete = T0 + datetime.timedelta(minutes=number, seconds=30)
        study.add_trial(trial)


@pytest.fixture(scope="module")
def rung_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("rungs")
    make_rung_study(root / "rungs.journal")
    return root, write_report(["rungs"], Shelf(folder=root), out=root / "out")


def test_a_rung_studys_front_holds_only_top_rung_trials(rung_report):
    root, index = rung_report
    data = open_study("rungs", studies_dir=root)
    top = {n for n, p in enumerate(PLAN) if p[1] == 2 and p[2] == "COMPLETE"}
    assert set(study_points(data.trials)["number"]) == top
    front = set(pareto_table(data.trials)["number"])
    assert front == {9, 8, 12}  # a 66% at 1.2M, b 70% at 2M, c 74% at 3M; trial 10 repeats net b
    assert 2 not in front  # net x: 95% at 1M at the lowest rung, better than every top-rung result
    assert not data.trials.loc[data.trials["rung"] < 2, "pareto"].any()
    assert set(pd.read_csv(index.parent / "pareto.csv")["trial"]) == front


def test_a_rung_studys_trials_csv_has_rung_and_budget_columns(rung_report):
    root, index = rung_report
    df = pd.read_csv(index.parent / "trials.csv").set_index("number")
    assert [int(df.loc[n, "rung"]) for n in range(len(PLAN))] == [p[1] for p in PLAN]
    assert [df.loc[n, "budget"] for n in range(len(PLAN))] == [NAMES[p[1]] for p in PLAN]
    assert int(df.loc[12, "promoted_from"]) == 11 and pd.isna(df.loc[0, "promoted_from"])
    page = index.read_text()
    assert ("rung 0 (e1-f0.125): 6 nets; rung 1 (e1-f0.5): 3 nets; rung 2 (e3-f1): 4 nets" in page
            and "eta 3" in page)
    svg = (index.parent / "accuracy_vs_flops.svg").read_text()
    assert "rung 0: e1-f0.125" in svg and "rung 1: e1-f0.5" in svg  # lower rungs named in the legend


def test_hypervolume_against_compute_grows_to_the_final_fronts(rung_report):
    root, index = rung_report
    data = open_study("rungs", studies_dir=root)
    curve = hv_vs_compute(data)
    rows = curve.rows
    assert list(rows["trial"]) == list(range(len(PLAN)))  # every trained trial, in completion order
    hv = rows["hypervolume"].tolist()
    assert all(b >= a for a, b in zip(hv, hv[1:])) and hv[7] == 0.0 and hv[8] > 0  # nothing before the top rung
    spent = sum(p[5] for p in PLAN if p[7] is None)
    assert rows["compute"].iloc[-1] == pytest.approx(spent) and rows["compute"].iloc[10] == rows["compute"].iloc[9]
    assert curve.band == BAND and curve.chance == pytest.approx(0.9) and curve.reference[1] == pytest.approx(4.4e6)
    final = [(1 - PLAN[n][3], PLAN[n][4]) for n in (8, 9, 12)]
    assert hv[-1] == pytest.approx(hypervolume(final, BAND, 0.9)) and hv[-1] > hv[9]
    csv = pd.read_csv(index.parent / "hv_vs_compute.csv")
    assert csv["hypervolume"].iloc[-1] == pytest.approx(hv[-1]) and len(csv) == len(PLAN)
    page = index.read_text()
    assert "src='hv_vs_compute-rungs.svg'" in page and "Reference point: error 0.900" in page
    assert "4.4M FLOPs" in page and "the study&#x27;s --flops band" in page


def test_figures_drawn_in_forked_processes_come_back_in_order_and_a_dead_child_is_redrawn():
    import os
    import threading

    from nasx.report.figures import Figure, _run

    parent = os.getpid()

    def job(k: int):
        return lambda: [Figure(f"f{k}", str(os.getpid()), "")]

    def dies_in_a_child():
        if os.getpid() != parent:
            os._exit(3)
        return [Figure("dies", str(os.getpid()), "")]

    jobs = [(1.0, job(0)), (1.0, job(1)), (0.5, dies_in_a_child), (0.5, job(3))]
    figs = [f for fs in _run(jobs, 2) for f in fs]
    assert [f.stem for f in figs] == ["f0", "f1", "dies", "f3"]
    pids = {f.stem: int(f.title) for f in figs}
    assert pids["dies"] == parent  # its child died: drawn here
    if threading.active_count() == 1:  # a forked child drew the other share
        assert len(set(pids.values())) == 2
    assert [f.stem for fs in _run(jobs, 1) for f in fs] == ["f0", "f1", "dies", "f3"]


def test_importances_of_a_rung_study_use_its_lowest_rung_only(rung_report):
    from optuna.distributions import FloatDistribution

    from nasx.report.figures import importance_rows, param_importances

    root, index = rung_report
    rows, scope = importance_rows(open_study("rungs", studies_dir=root))
    assert sorted(rows["number"]) == [n for n, p in enumerate(PLAN) if p[1] == 0 and p[2] == "COMPLETE"]
    assert scope == "of rung 0 (e1-f0.125), where every net trained"
    # two budgets whose accuracy follows different parameters: the importances of the chosen trials follow theirs
    study = optuna.create_study(directions=["maximize", "minimize"])
    dist = {"x": FloatDistribution(0, 1), "y": FloatDistribution(0, 1)}
    rng = __import__("numpy").random.default_rng(0)
    for i in range(60):
        x, y = float(rng.uniform()), float(rng.uniform())
        acc = 0.3 + 0.5 * x if i < 30 else 0.3 + 0.5 * y
        study.add_trial(create_trial(values=[acc, 1e6], params={"x": x, "y": y}, distributions=dist))
    low = param_importances(study, set(range(30)), scope)
    assert low.trials == 30 and low.values["x"] > 0.8 and scope in low.describe()
    top = param_importances(study, set(range(30, 60)), "of the top")
    assert top.values["y"] > 0.8
    assert param_importances(study).trials == 60 and param_importances(study).scope == ""
