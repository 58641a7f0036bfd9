"""The stored-study reader (nasx.study.store) on every committed example journal: each study opens, upgraded to
the current schema, with every trial Optuna stores, and its points and front as the page counts them."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nasx.train.budget import Budget

from nasx.study.record import SCHEMA, Shelf, StudyInfo, TrialRecord
from nasx.study.store import StoredStudy, open_studies, open_study

ROOT = Path(__file__).resolve().parents[2]
JOURNALS = sorted((ROOT / "reports" / "examples").glob("**/*.journal"))


def test_there_are_example_journals():
    assert len(JOURNALS) >= 8


@pytest.mark.parametrize("journal", JOURNALS, ids=lambda p: str(p.relative_to(ROOT / "reports" / "examples")))
def test_every_committed_journal_opens_through_the_reader(journal):
    from nasx.study.storage import open_storage

    studies = open_studies(str(journal))
    summaries = optuna.get_all_study_summaries(open_storage(str(journal), read_only=True), include_best_trial=False)
    assert [s.name for s in studies] == [s.study_name for s in summaries]
    for study, summary in zip(studies, summaries):
        assert len(study.records) == summary.n_trials > 0
        assert study.info is not None and study.info.schema == SCHEMA and study.info.top_budget is not None
        complete = [r for r in study.records if r.state == "COMPLETE"]
        assert len(study.points) == sum(1 for r in complete if study.top_rung is None or r.rung == study.top_rung)
        front = study.front()
        assert front and {r.number for r in front} <= set(study.points["number"])
        assert [r.flops for r in front] == sorted(r.flops for r in front)


def test_top_rung_points_front_and_the_two_net_rules():
    """The top rung is the info's; results and the front are the top rung's; nets() is every rung's distinct nets
    (the fidelity rule), results(top=True) the top rung's non-duplicate records (the repeat rule)."""
    info = StudyInfo("resnet", "synthetic", Budget(1, 0.5), ("accuracy", "flops"), 0.1, 0,
                     rungs=({"epochs": 1, "fraction": 0.25}, {"epochs": 1, "fraction": 0.5}), eta=2)
    spec = {"stem": {"kind": "cifar", "width": 8}, "stages": [], "head": {"kind": "linear"}}

    def rec(n, spec_id, rung, acc, flops, **kw):
        return TrialRecord.of(n, "COMPLETE", spec=spec, spec_id=spec_id, rung=rung, val_acc=acc, flops=flops,
                              values=(acc, flops), **kw)

    records = (rec(0, "a", 0, 0.5, 10), rec(1, "b", 0, 0.6, 20), rec(2, "c", 0, 0.4, 5),
               rec(3, "b", 1, 0.7, 20, promoted_from=1), rec(4, "a", 1, 0.65, 10, promoted_from=0),
               rec(5, "a", 1, 0.65, 10, duplicate_of=4), TrialRecord.of(6, "FAIL", rung=0))
    study = StoredStudy("s", records, info)
    assert study.top_rung == 1 and study.top_budget.name == "e1-f0.5"
    assert [r.number for r in study.results()] == [3, 4]
    assert [r.number for r in study.results(top=False)] == [0, 1, 2, 3, 4]
    assert len(study.nets()) == 3 and len(study.nets(top=True)) == 2
    assert [r.number for r in study.front()] == [4, 3]
    frame = study.trials_frame()
    assert list(frame.loc[frame["pareto"], "number"]) == [3, 4, 5]  # a duplicate is on the table's front too
    assert list(frame["top_budget"]) == [False, False, False, True, True, True, False]


def test_a_shelf_names_each_study_s_journal_or_one_storage_for_all(tmp_path):
    assert Shelf(folder=tmp_path).url("x") == str(tmp_path / "x.journal")
    assert Shelf("sqlite:///a.db", tmp_path).url("x") == "sqlite:///a.db"
    example = ROOT / "reports" / "examples" / "resnext-cifar10-cpu" / "resnext.journal"
    study = open_study("resnext", str(example))
    zoo = study.companion("resnext-zoo")
    assert zoo is not None and zoo.opened is study.opened and study.companion("nothing") is None
