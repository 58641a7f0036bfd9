"""Continue mode of a study with rungs (`--continue`): a promotion trains on from its rung's pre-decay checkpoint
(written beside the study, checked against its record's hash), retrains and says so when the checkpoint is
unreachable or fails its check, survives an interrupted promotion, promotes each net at most once with 3 workers
racing, and leaves no checkpoint once no promotion can use it."""

from __future__ import annotations

import os
from collections import Counter

import pytest
import torch

from nasx.study import StudyConfig, StudyError, run_study
from nasx.study import checkpoints
from nasx.study.record import TrialRecord
from nasx.train.budget import Ladder
from study_fakes import continue_train, slow_continue_train
from test_rung_study import config as rung_config, offline, postgres_database, records_of  # noqa: F401 - offline: an autouse fixture

RUNGS = "e1-f0.1,e1-f0.3,e1-f0.9"
TINY = dict(dataset="synthetic", space="resnet", flops=(1_000_000, 4_000_000), device="cpu", heartbeat=0.5,
            val_size=0.1, rungs=Ladder.parse(RUNGS, eta=2), workers=1, continuation=True)
POSTGRES = os.environ.get("NASX_TEST_POSTGRES_URL")


def config(tmp_path, **changes) -> StudyConfig:
    return rung_config(tmp_path, **{**TINY, **changes})


def promoted(records):
    return [r for r in records if r.rung and r.state == "COMPLETE"]


def assert_each_net_once_per_rung(records, nets):
    trained = [r for r in records if r.state == "COMPLETE" and r.rung is not None]
    assert Counter((r.spec_id, r.rung) for r in trained).most_common(1)[0][1] == 1
    by_rung = Counter(r.rung for r in trained)
    assert by_rung[0] == nets and by_rung[1] >= nets // 2 and by_rung[2] >= 1


def test_promotions_train_on_from_their_checkpoints_which_are_gone_at_the_end(tmp_path):
    cfg = config(tmp_path, trials=6)
    events = []
    run_study(cfg, train_fn=continue_train, on_note=events.append)
    records = records_of(cfg)
    assert_each_net_once_per_rung(records, 6)
    ups = promoted(records)
    assert ups and all(r.continued_from == r.promoted_from and r.retrain_reason is None for r in ups)
    kept = [r for r in records if r.checkpoint]
    assert {r.rung for r in kept} == {0, 1}  # the top rung keeps none
    assert all(len(r.checkpoint["sha256"]) == 64 and r.checkpoint["step"] > 0 for r in kept)
    assert not cfg.checkpoint_dir.exists()  # the study ended: every checkpoint removed
    assert cfg.checkpoint_dir == tmp_path / "s.ckpt"
    assert not [e for e in events if "retrains" in e] and "trained on from its checkpoint to the next" in events[0]


def test_a_promotion_whose_checkpoint_is_gone_retrains_and_says_so(tmp_path):
    cfg = config(tmp_path, trials=4)

    def losing(spec, dataset, budget, *args, continuation=None, **kwargs):
        for path in cfg.checkpoint_dir.glob("*.pt"):  # another machine's disk: nothing reachable
            path.unlink()
        return continue_train(spec, dataset, budget, *args, continuation=continuation, **kwargs)

    events = []
    run_study(cfg, train_fn=losing, on_note=events.append)
    records = records_of(cfg)
    assert_each_net_once_per_rung(records, 4)
    ups = promoted(records)  # each trained on, or (its checkpoint gone before it was claimed) retrained, and said so
    assert all((r.continued_from, r.retrain_reason) == (r.promoted_from, None) or
               (r.continued_from is None and "not reachable from this worker" in r.retrain_reason) for r in ups)
    lost = [r for r in ups if r.retrain_reason]
    assert lost and any(f"trial {r.number}: retrains from scratch: checkpoint" in e for e in events for r in lost)


def test_a_full_checkpoint_folder_keeps_none_and_promotions_retrain(tmp_path):
    cfg = config(tmp_path, trials=4, checkpoint_cap=10)
    events = []
    run_study(cfg, train_fn=continue_train, on_note=events.append)
    ups = promoted(records_of(cfg))
    assert ups and all("kept no checkpoint" in r.retrain_reason for r in ups)
    assert any("would pass the cap of" in e for e in events)


def test_an_interrupted_promotion_is_retried_from_the_same_checkpoint(tmp_path):
    calls = []

    def interrupting(spec, dataset, budget, *args, continuation=None, **kwargs):
        calls.append(continuation.state is not None)
        if continuation.state is not None and calls.count(True) == 1:  # the first promotion, mid-training
            raise KeyboardInterrupt
        return continue_train(spec, dataset, budget, *args, continuation=continuation, **kwargs)

    cfg = config(tmp_path, trials=6)
    assert run_study(cfg, train_fn=interrupting).interrupted
    lost = next(r for r in records_of(cfg) if r.state == "FAIL")
    assert lost.rung == 1 and lost.outcome.fail_reason == "interrupted"
    assert (cfg.checkpoint_dir / f"{lost.promoted_from}.pt").exists()  # kept for the retry
    run_study(cfg, train_fn=continue_train)
    records = records_of(cfg)
    retry = next(r for r in records if r.retry_of == lost.number)
    assert (retry.state, retry.spec_id, retry.continued_from) == ("COMPLETE", lost.spec_id, lost.promoted_from)
    assert_each_net_once_per_rung(records, 6)


def test_a_checkpoint_is_read_only_when_its_hash_and_step_match(tmp_path):
    state = {"model": {"w": torch.ones(3)}, "step": 7, "spec_id": "abc", "seed": 0, "top": "e1-f0.9"}
    ref, why = checkpoints.save(tmp_path, 4, state, cap=10**6)
    assert why is None and ref["file"] == "4.pt" and ref["step"] == 7
    loaded, why = checkpoints.load(tmp_path, ref)
    assert why is None and torch.equal(loaded["model"]["w"], torch.ones(3))
    (tmp_path / "4.pt").write_bytes((tmp_path / "4.pt").read_bytes()[:-1] + b"x")
    assert checkpoints.load(tmp_path, ref) == (None, f"checkpoint {tmp_path / '4.pt'} fails its check (its sha256 "
                                                     f"is not the one its trial stored)")
    assert "kept no checkpoint" in checkpoints.load(tmp_path, {"file": "../x.pt", "sha256": "0"})[1]
    assert not list(tmp_path.glob(".*.tmp"))


def test_checkpoints_go_once_their_net_cannot_be_promoted():
    ladder = Ladder.parse(RUNGS, eta=3)

    def rec(number, rung, acc, state="COMPLETE", **kw):
        return TrialRecord.of(number, state, values=(acc, 1e6), spec_id=f"n{number % 100}", flops=1_000_000,
                              rung=rung, checkpoint={"file": f"{number}.pt"} if rung < 2 else None, **kw)

    low = [rec(i, 0, 0.5 + 0.01 * i) for i in range(6)]  # nets 4 and 5 are the rung's top third
    # rung 0 still open (trials 9): nothing is removable yet; net 5 promoted but not trained on yet
    records = low + [rec(105, 1, 0.7, state="RUNNING", promoted_from=5)]
    assert checkpoints.removable(records, ladder, trials=9) == set()
    # rung 0 closed (trials 6): the passed-over nets 0-3 go; net 4 is due, net 5 is being trained on
    assert checkpoints.removable(records, ladder, trials=6) == {0, 1, 2, 3}
    # net 5 trained on at rung 1: its rung-0 checkpoint goes too
    records = low + [rec(105, 1, 0.7, promoted_from=5)]
    assert 5 in checkpoints.removable(records, ladder, trials=9)


def test_continue_needs_rungs_at_one_side():
    from nasx.train.budget import Budget
    from nasx.train.trainer import continued_steps

    assert continued_steps(Budget(1, 0.0556, 16), Budget(1, 0.5, 16), 900, 0.2) == (80, 100)  # 1/9 of the steps
    with pytest.raises(ValueError, match="must train at the top rung e1-f0.5's side and batch"):
        continued_steps(Budget(1, 0.0556, 16), Budget(1, 0.5), 900, 0.2)
    with pytest.raises(StudyError, match="needs --rungs"):
        StudyConfig(space="resnet", continuation=True).check()
    with pytest.raises(StudyError, match="top rung's side"):
        StudyConfig(space="resnet", continuation=True, rungs=Ladder.parse("e1-f0.5-r16,e1-f0.5")).check()


@pytest.mark.slow  # 3 spawned workers: 5 s on 2 cores (30 s under load)
def test_three_workers_racing_on_the_journal_continue_each_net_at_most_once(tmp_path):
    cfg = config(tmp_path, trials=12, workers=3)
    run_study(cfg, train_fn=slow_continue_train)
    records = records_of(cfg)
    assert_each_net_once_per_rung(records, 12)
    ups = promoted(records)
    assert Counter(r.promoted_from for r in ups).most_common(1)[0][1] == 1  # each promotion queued once
    assert all(r.continued_from == r.promoted_from for r in ups)
    assert len({r.owner for r in records if r.state == "COMPLETE"}) >= 2
    assert not cfg.checkpoint_dir.exists()


@pytest.mark.slow
@pytest.mark.skipif(not POSTGRES, reason="set NASX_TEST_POSTGRES_URL (.ci/run sets it)")
def test_three_workers_racing_on_postgresql_continue_each_net_at_most_once(tmp_path):
    with postgres_database("nasx_continue") as url:
        cfg = config(tmp_path, trials=12, workers=3, storage=url, studies_dir=str(tmp_path / "studies"))
        run_study(cfg, train_fn=slow_continue_train)
        records = records_of(cfg)
        assert_each_net_once_per_rung(records, 12)
        ups = promoted(records)
        assert Counter(r.promoted_from for r in ups).most_common(1)[0][1] == 1
        assert all(r.continued_from == r.promoted_from for r in ups)
        assert cfg.checkpoint_dir == tmp_path / "studies" / "s.ckpt" and not cfg.checkpoint_dir.exists()


def _worker(cfg, train_fn):
    from nasx.study.worker import Worker

    Worker(cfg, 0, train_fn).run()


@pytest.mark.slow  # a spawned worker process: 2 s on 2 cores
def test_a_sigkilled_promotion_is_retried_from_the_same_checkpoint(tmp_path, monkeypatch):
    import multiprocessing as mp
    import signal
    import time

    from nasx.study import prepare
    from study_fakes import hang_on_promotion_train

    monkeypatch.setenv("NASX_TEST_HANG", str(tmp_path / "hung"))
    cfg = config(tmp_path, trials=6, grace=2.0, heartbeat=0.3)
    run_study(config(tmp_path, trials=1), train_fn=continue_train)  # create the study
    ready, _ = prepare(cfg)
    hung = mp.get_context("spawn").Process(target=_worker, args=(ready, hang_on_promotion_train))
    hung.start()
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not (tmp_path / "hung").exists():
            time.sleep(0.2)
        assert (tmp_path / "hung").exists(), "the worker never reached a promotion"
        os.kill(hung.pid, signal.SIGKILL)
        hung.join()
    finally:
        if hung.is_alive():
            hung.kill()
            hung.join()
    lost = next(r for r in records_of(cfg) if r.state == "RUNNING" and r.rung == 1)
    assert (cfg.checkpoint_dir / f"{lost.promoted_from}.pt").exists()
    run_study(cfg, train_fn=continue_train)  # reaps the dead worker's trial (its process ended here) and retries it
    records = records_of(cfg)
    killed = next(r for r in records if r.number == lost.number)
    assert killed.state == "FAIL" and killed.outcome.fail_reason.startswith("lost")
    retry = next(r for r in records if r.retry_of == lost.number)
    assert (retry.state, retry.spec_id, retry.continued_from) == ("COMPLETE", lost.spec_id, lost.promoted_from)
    assert_each_net_once_per_rung(records, 6)


def test_a_study_resumed_in_the_other_mode_is_refused(tmp_path):
    """Continuation is part of what a study is made with: resuming with or without --continue would mix two
    schedules in one study, so it is refused like any other changed setting."""
    import dataclasses

    cfg = config(tmp_path, trials=2)
    run_study(cfg, train_fn=continue_train)
    with pytest.raises(StudyError, match=r"continuation=True, not False"):
        run_study(dataclasses.replace(cfg, continuation=False, trials=3), train_fn=continue_train)
