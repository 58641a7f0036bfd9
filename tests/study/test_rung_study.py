"""Studies with rungs (successive halving in `nasx explore`): every net starts at the lowest rung, a rung promotes
the top 1/eta of its complete results by the stated ranking (nasx.study.rungs.promotion_order), each net at most
once per rung, also with 3 workers racing on the journal and on PostgreSQL, and across an interrupt and a resume."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections import Counter

import optuna
import pytest
from typer.testing import CliRunner

from nasx.cli.app import app
from nasx.study import StudyConfig, StudyError, open_storage, resolve, run_study
from nasx.study.record import TrialRecord, read_info
from nasx.study.rungs import RungResult, next_promotion, promotion_order
from nasx.train.budget import Budget, BudgetError, Ladder
from study_fakes import rung_train, slow_rung_train

RUNGS = ("e1-f0.1", "e1-f0.3", "e1-f0.9")
TINY = dict(dataset="synthetic", space="resnet", flops=(1_000_000, 4_000_000), device="cpu", heartbeat=0.5,
            val_size=0.1, rungs=Ladder.parse(",".join(RUNGS), eta=3), workers=1)
POSTGRES = os.environ.get("NASX_TEST_POSTGRES_URL")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("NASX_OFFLINE", "1")
    monkeypatch.setenv("NASX_CACHE", str(tmp_path / "cache"))


def config(tmp_path, **changes) -> StudyConfig:
    return StudyConfig(**{**TINY, "storage": str(tmp_path / "s.journal"), "study": "s", **changes})


def records_of(cfg: StudyConfig) -> list[TrialRecord]:
    study = optuna.load_study(study_name=cfg.name, storage=open_storage(cfg.storage_url))
    return [TrialRecord.from_trial(t) for t in study.get_trials()]


def assert_promotions_as_specified(records: list[TrialRecord], nets: int, sequential: bool) -> None:
    """Each (net, rung) trained once; rung 0 holds `nets` nets; every promotion came from the rung below and no
    promotion is due at the end; run one at a time, each promoted net was among the top floor(n / 3) of the n
    results its rung had when it was promoted."""
    trained = [r for r in records if r.state in ("COMPLETE", "FAIL") and r.rung is not None and r.outcome.fail_reason is None]
    assert Counter((r.spec_id, r.rung) for r in trained).most_common(1)[0][1] == 1  # each net once per rung
    by_rung = Counter(r.rung for r in trained if r.state == "COMPLETE")
    assert by_rung[0] == nets and by_rung[1] >= nets // 3 and by_rung[2] >= by_rung[1] // 3 >= 1
    assert not [r for r in records if r.state in ("RUNNING", "WAITING")]
    number = {r.number: r for r in records}
    for r in trained:
        assert r.budget == Budget.parse(RUNGS[r.rung]).to_dict()  # every rung's result is a record of its budget
        if r.rung == 0:
            assert r.promoted_from is None
            continue
        source = number[r.promoted_from]
        assert (source.rung, source.spec_id, source.state) == (r.rung - 1, r.spec_id, "COMPLETE")
        if sequential:  # the rung below as it stood when this promotion was queued
            peers = [p for p in records if p.rung == r.rung - 1 and p.state == "COMPLETE" and p.number < r.number
                     and p.duplicate_of is None]
            order = promotion_order([RungResult(p.spec_id, 1 - p.values[0], p.flops) for p in peers])
            assert r.spec_id in {peers[i].spec_id for i in order[:len(peers) // 3]}
    assert next_promotion(records, Ladder.parse(",".join(RUNGS), 3)) is None


def test_a_rung_study_promotes_the_top_third_of_each_rung_once(tmp_path):
    cfg = config(tmp_path, trials=9)
    summary = run_study(cfg, train_fn=rung_train)
    records = records_of(cfg)
    assert_promotions_as_specified(records, 9, sequential=True)
    top = {r.number for r in records if r.rung == 2 and r.state == "COMPLETE"}
    assert summary.snapshot.front and {p.number for p in summary.snapshot.front} <= top  # the front: the top rung's
    assert summary.snapshot.rungs[0] == 9
    study = optuna.load_study(study_name=cfg.name, storage=open_storage(cfg.storage_url))
    info = read_info(study)
    assert [Budget(**r).name for r in info.rungs] == list(RUNGS) and info.eta == 3
    assert summary.config.sampler == "random" and summary.config.prune_rule is None


def test_a_resumed_rung_study_neither_loses_nor_repeats_a_promotion(tmp_path):
    calls = []

    def interrupting(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                     progress=None):
        calls.append(budget.fraction)
        if len(calls) == 7:  # mid-study, after promotions were queued
            raise KeyboardInterrupt
        return rung_train(spec, dataset, budget, device, seed, callback, config=config)

    cfg = config(tmp_path, trials=9)
    assert run_study(cfg, train_fn=interrupting).interrupted
    before = records_of(cfg)
    assert [r.outcome.fail_reason for r in before if r.state == "FAIL"] == ["interrupted"]
    resumed = run_study(cfg, train_fn=rung_train)
    assert not resumed.interrupted
    records = records_of(cfg)
    lost = next(r for r in before if r.state == "FAIL")
    retry = next(r for r in records if r.retry_of == lost.number)
    assert (retry.rung, retry.spec_id, retry.state) == (lost.rung, lost.spec_id, "COMPLETE")
    assert_promotions_as_specified(records, 9, sequential=False)


@pytest.mark.slow
def test_three_workers_racing_on_the_journal_promote_each_net_at_most_once(tmp_path):
    cfg = config(tmp_path, trials=12, workers=3)
    run_study(cfg, train_fn=slow_rung_train)
    records = records_of(cfg)
    assert_promotions_as_specified(records, 12, sequential=False)
    assert len({r.owner for r in records if r.state == "COMPLETE"}) >= 2  # they shared the work


@pytest.mark.slow
@pytest.mark.skipif(not POSTGRES, reason="set NASX_TEST_POSTGRES_URL (.ci/run sets it)")
def test_three_workers_racing_on_postgresql_promote_each_net_at_most_once(tmp_path):
    with postgres_database("nasx_rungs") as url:
        cfg = config(tmp_path, trials=12, workers=3, storage=url)
        run_study(cfg, train_fn=slow_rung_train)
        assert_promotions_as_specified(records_of(cfg), 12, sequential=False)


@contextlib.contextmanager
def postgres_database(prefix: str):
    """A fresh database on the test server (its URL), dropped afterwards."""
    import sqlalchemy

    base, _, _ = POSTGRES.rpartition("/")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(POSTGRES, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_asha_derives_three_rungs_and_equal_compute_trials():
    assert Ladder.geometric(Budget(1, 0.5), 3, digits=3).names == "e1-f0.0556,e1-f0.167,e1-f0.5"
    assert Ladder.geometric(Budget(5, 1.0, batch_size=512), 4, digits=3).names == \
        "e5-f0.0625-b512,e5-f0.25-b512,e5-f1-b512"
    cfg, notes = resolve(StudyConfig(schedule="asha", device="cpu"), cuda=False, gpus=0)
    assert cfg.rungs.names == "e1-f0.0556-b128,e1-f0.167-b128,e1-f0.5-b128" and cfg.schedule is None
    assert cfg.rungs.eta == 3 and cfg.eta is None
    # the CPU default's 10 trials per worker, as the same compute at the rungs: 10 x workers x 3^2 / 3 new nets
    assert cfg.trials == round(10 * cfg.workers * 9 / 3) and cfg.timeout == 660.0
    assert any("successive halving over 3 rungs" in n for n in notes)
    given, _ = resolve(StudyConfig(rungs=Ladder.parse("e1-f0.1,e2-f0.5"), trials=7, device="cpu"), cuda=False, gpus=0)
    assert (given.trials, given.budget) == (7, Budget(2, 0.5))
    batched, _ = resolve(StudyConfig(rungs=Ladder.parse("e1-f0.1,e2-f0.5"), budget=Budget.given(batch_size=64),
                                     device="cpu"), cuda=False, gpus=0)
    assert batched.rungs.names == "e1-f0.1-b64,e2-f0.5-b64"  # the study's batch on every rung that names none


@pytest.mark.parametrize("changes, message", [
    (dict(schedule="asha", eta=1), "eta"),
    (dict(rungs=Ladder.parse("e1-f0.1,e1-f0.5"), schedule="asha"), "not both"),
    (dict(rungs=Ladder.parse("e1-f0.1,e1-f0.5"), eta=4), "holds its own eta"),
    (dict(schedule="sha"), "schedule"),
    (dict(rungs=Ladder.parse("e1-f0.1,e1-f0.5"), fixed=True), "fixed list"),
    (dict(rungs=("e1-f0.1", "e1-f0.5")), "not a Ladder"),
])
def test_bad_rungs_are_refused_before_any_work(changes, message):
    with pytest.raises(StudyError, match=message):
        StudyConfig(**changes).check()


@pytest.mark.parametrize("names, eta, message", [
    ("e1-f0.5", 3, "names one budget"),
    ("e1-f0.5,e1-f0.1", 3, "must cost more"),
    ("e1-f0.1,e1-f0.5", 1, "eta"),
    ("e1-f0.1,e1-x", 3, "budget 'e1-x'"),
])
def test_a_bad_ladder_is_refused_where_it_is_parsed(names, eta, message):
    with pytest.raises(BudgetError, match=message):
        Ladder.parse(names, eta)


@pytest.mark.parametrize("args, message", [
    (["--rungs", "e1-f0.1,e1-f0.5", "--epochs", "2"], "leave out --epochs"),
    (["--eta", "4"], "--eta needs --rungs"),
    (["--rungs", "e1-f0.5,e1-f0.1"], "must cost more"),
])
def test_explore_refuses_bad_rung_options_in_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["explore", "--dataset", "synthetic", "--no-report", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_study_file_s_rungs_are_read_into_a_ladder_once(tmp_path):
    from nasx.study import load_config

    path = tmp_path / "s.yaml"
    path.write_text("dataset: synthetic\nrungs: e1-f0.125,e1-f0.5\neta: 4\n")
    cfg = load_config(path)
    assert cfg.rungs == Ladder((Budget(1, 0.125), Budget(1, 0.5)), 4) and cfg.eta is None
    assert cfg.to_dict()["rungs"] == "e1-f0.125,e1-f0.5" and cfg.to_dict()["eta"] == 4  # its stored settings
    path.write_text("dataset: synthetic\nrungs: [e1-f0.5, e1-f0.125]\n")
    with pytest.raises(StudyError, match=r"s\.yaml: rungs: rungs: e1-f0.5,e1-f0.125: each budget must cost more"):
        load_config(path)
