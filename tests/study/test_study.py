"""Studies: end to end, resume, interrupts, N workers on the journal file and on PostgreSQL, lost
workers, pruning, faults and bad inputs."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

import nasx
import nasx.space
from nasx import data as nasx_data
from nasx.stats import pareto_front
from nasx.net.spec import NetSpec, SpecError
from nasx.study import StudyConfig, StudyError, Worker, open_storage, redact, run_study
from nasx.train.budget import Budget
from study_fakes import curve_train, faulty_train, hang_once_train, sleepy_train, slow_train

TINY = dict(dataset="synthetic", space="resnet", flops=(1_000_000, 4_000_000), budget=Budget(2, 0.5),
            device="cpu", sampler="random", heartbeat=0.5)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("NASX_OFFLINE", "1")
    monkeypatch.setenv("NASX_CACHE", str(tmp_path / "cache"))


def config(tmp_path, **changes) -> StudyConfig:
    return StudyConfig(**{**TINY, "storage": str(tmp_path / "s.journal"), **changes})


def trials_of(cfg: StudyConfig):
    return optuna.load_study(study_name=cfg.name, storage=open_storage(cfg.storage_url)).get_trials()


@pytest.mark.slow
def test_two_objective_study_end_to_end_with_the_real_trainer(tmp_path):
    cfg = config(tmp_path, trials=3)
    summary = run_study(cfg)
    trials = trials_of(cfg)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 == summary.snapshot.complete
    dataset = nasx_data.load("synthetic", val_size=0.1, seed=0)
    for t in complete:
        spec = NetSpec.from_dict(t.user_attrs["spec"])
        cx = nasx.complexity(spec.replace(resolution=16))
        assert t.user_attrs["spec_id"] == spec.id
        assert t.values == [t.user_attrs["val_acc"], cx.flops]
        assert 1_000_000 <= t.user_attrs["flops"] <= 4_000_000 and t.user_attrs["params"] == cx.params
        assert len(t.user_attrs["curve"]) == 2 and t.user_attrs["curve"][-1] == t.values[0]
        assert t.user_attrs["split_hash"] == dataset.split_hash and t.user_attrs["dataset"] == "synthetic"
        assert {"wall_time", "images_per_s", "seed", "device", "versions", "acts", "description"} <= set(t.user_attrs)
        assert t.user_attrs["images_per_s"] > 0
    # the front is the non-dominated subset of (accuracy up, FLOPs down)
    points = [tuple(t.values) for t in complete]
    assert sorted(r[0] for r in summary.snapshot.front) == sorted(complete[i].number for i in pareto_front(points, (True, False)))


def test_resume_adds_trials_instead_of_starting_over(tmp_path):
    first = run_study(config(tmp_path, trials=2), train_fn=curve_train)
    before = {t.number: t.params for t in trials_of(first.config) if t.state == TrialState.COMPLETE}
    again = run_study(config(tmp_path, trials=5), train_fn=curve_train)
    after = {t.number: t.params for t in trials_of(again.config) if t.state == TrialState.COMPLETE}
    assert len(before) == 2 and len(after) == 5
    assert all(after[n] == p for n, p in before.items())


def test_resume_refuses_other_settings(tmp_path):
    run_study(config(tmp_path, trials=1), train_fn=curve_train)
    with pytest.raises(StudyError, match="budget=e2-f0.5, not e3-f0.5"):
        run_study(config(tmp_path, trials=1, budget=Budget(3, 0.5)), train_fn=curve_train)


def interrupting_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                       progress=None, continuation=None):
    raise KeyboardInterrupt


def test_interrupt_stops_cleanly_and_a_rerun_resumes(tmp_path):
    run_study(config(tmp_path, trials=1), train_fn=curve_train)
    summary = run_study(config(tmp_path, trials=3), train_fn=interrupting_train)
    assert summary.interrupted
    failed = [t for t in trials_of(summary.config) if t.state == TrialState.FAIL]
    assert [t.user_attrs["fail_reason"] for t in failed] == ["interrupted"]
    resumed = run_study(config(tmp_path, trials=3), train_fn=curve_train)
    assert not resumed.interrupted and resumed.snapshot.complete == 3
    assert not [t for t in trials_of(resumed.config) if t.state == TrialState.RUNNING]


def assert_exact_and_no_duplicates(cfg: StudyConfig, wanted: int) -> None:
    trials = trials_of(cfg)
    states = Counter(t.state for t in trials)
    assert states[TrialState.COMPLETE] == wanted, states
    assert states[TrialState.RUNNING] == 0 and states[TrialState.WAITING] == 0
    trained = [t.user_attrs["spec_id"] for t in trials if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs]
    assert len(trained) == len(set(trained)), "a spec was trained twice"
    assert len({t.number for t in trials}) == len(trials)


@pytest.mark.heavy  # CI time: tests/study/test_workers.py races 4 processes on the journal in the default tier
def test_four_local_workers_share_the_journal_exactly(tmp_path):
    cfg = config(tmp_path, trials=10, workers=4)
    summary = run_study(cfg, train_fn=slow_train)
    assert summary.snapshot.complete == 10
    assert_exact_and_no_duplicates(cfg, 10)
    assert len({t.user_attrs["worker"] for t in trials_of(cfg) if "worker" in t.user_attrs}) >= 2  # they shared the work


POSTGRES = os.environ.get("NASX_TEST_POSTGRES_URL")


@pytest.mark.slow
@pytest.mark.skipif(not POSTGRES, reason="set NASX_TEST_POSTGRES_URL (.ci/run starts a PostgreSQL server and sets it)")
def test_two_workers_on_postgresql_exactly_and_no_password_stored(tmp_path):
    name = f"pg-{os.getpid()}-{int(time.time())}"
    cfg = config(tmp_path, trials=4, workers=2, storage=POSTGRES, study=name)
    summary = run_study(cfg, train_fn=slow_train)
    assert summary.snapshot.complete == 4
    assert_exact_and_no_duplicates(cfg, 4)
    assert len({t.user_attrs["worker"] for t in trials_of(cfg) if "worker" in t.user_attrs}) >= 2
    stored = optuna.load_study(study_name=name, storage=open_storage(POSTGRES)).user_attrs["config"]
    password = POSTGRES.split("://", 1)[1].split("@")[0].partition(":")[2]
    assert password and password not in str(stored)


def _worker(cfg, index, train_fn):
    Worker(cfg, index, train_fn).run()


def _training(cfg):
    """Running trials past their (cheap) structure draw: in the trainer."""
    return [t for t in trials_of(cfg) if t.state == TrialState.RUNNING and "description" in t.user_attrs]


@pytest.mark.slow
def test_a_sigkilled_workers_trial_is_requeued_while_the_others_are_busy(tmp_path, monkeypatch):
    monkeypatch.setenv("NASX_TEST_HANG", str(tmp_path / "hung"))
    cfg = config(tmp_path, trials=3, grace=2.0, heartbeat=0.3, workers=2, val_size=0.1, max_trials=10)
    run_study(config(tmp_path, trials=1), train_fn=curve_train)  # create the study (and a first trial)
    spawn = mp.get_context("spawn")
    hung = spawn.Process(target=_worker, args=(cfg, 0, hang_once_train))
    hung.start()
    deadline = time.time() + 60
    while time.time() < deadline and not _training(cfg):
        time.sleep(0.2)
    lost = _training(cfg)
    assert len(lost) == 1, "the worker never started its trial"
    busy = spawn.Process(target=_worker, args=(cfg, 1, sleepy_train))  # one long trial: never asks for another
    busy.start()
    try:
        while time.time() < deadline and len(_training(cfg)) < 2:
            time.sleep(0.2)
        assert len(_training(cfg)) == 2, "the second worker never started its trial"
        os.kill(hung.pid, signal.SIGKILL)
        hung.join()
        killed_at = time.time()
        while time.time() < killed_at + 8:
            trials = {t.number: t for t in trials_of(cfg)}
            if trials[lost[0].number].state == TrialState.FAIL:
                break
            time.sleep(0.2)
        trials = {t.number: t for t in trials_of(cfg)}
        killed = trials[lost[0].number]
        assert killed.state == TrialState.FAIL and killed.user_attrs["fail_reason"].startswith("lost")
        retry = [t for t in trials.values() if t.user_attrs.get("retry_of") == killed.number]
        assert len(retry) == 1 and retry[0].state == TrialState.WAITING
        assert busy.is_alive() and len(_training(cfg)) == 1, "requeued while the other worker was still training"
    finally:
        for p in (hung, busy):
            if p.is_alive():
                p.kill()
                p.join()
    time.sleep(2.5)  # the busy worker's heartbeat goes stale too
    Worker(cfg, 2, curve_train).run()
    trials = {t.number: t for t in trials_of(cfg)}
    assert trials[retry[0].number].state == TrialState.COMPLETE and trials[retry[0].number].params == killed.params
    assert not [t for t in trials.values() if t.state == TrialState.RUNNING]


@pytest.mark.slow
def test_pruning_prunes_and_finds_the_same_front_at_lower_cost(tmp_path):
    n = 40
    full = config(tmp_path, trials=n, max_trials=n, budget=Budget(4, 0.5), prune=False, study="full")
    pruned = config(tmp_path, trials=n, max_trials=n, budget=Budget(4, 0.5), prune=True, study="pruned")
    run_study(full, train_fn=curve_train)
    run_study(pruned, train_fn=curve_train)
    a, b = trials_of(full), trials_of(pruned)
    assert [t.params for t in a] == [t.params for t in b]  # the same candidates, in the same order

    def front(trials):
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        return {done[i].user_attrs["spec_id"] for i in pareto_front([tuple(t.values) for t in done], (True, False))}

    def cost(trials):
        return sum(t.user_attrs.get("epochs_run", 0) for t in trials if "duplicate_of" not in t.user_attrs)

    stopped = [t for t in b if t.state == TrialState.PRUNED and "prune_reason" in t.user_attrs]
    assert len(stopped) >= 5
    assert all(len(t.user_attrs["curve"]) < 4 for t in stopped)  # partial curves are kept
    assert front(a) == front(b)
    assert cost(b) < 0.8 * cost(a)


def test_nan_and_oom_fail_the_trial_and_the_study_goes_on(tmp_path):
    cfg = config(tmp_path, trials=6)
    summary = run_study(cfg, train_fn=faulty_train)
    assert summary.snapshot.complete == 6
    reasons = Counter(t.user_attrs["fail_reason"].split(":")[0] for t in trials_of(cfg) if t.state == TrialState.FAIL)
    assert reasons["nan"] >= 1 and reasons["oom"] >= 1


def test_bad_inputs_are_clear_errors_before_any_work(tmp_path):
    with pytest.raises(nasx.NasxError, match="nospace"):
        run_study(config(tmp_path, space="nospace", trials=1))
    with pytest.raises(nasx_data.DataError, match="cifar10 not found"):
        run_study(config(tmp_path, dataset="cifar10", data_dir=str(tmp_path), trials=1))
    with pytest.raises(StudyError, match="no such folder"):
        run_study(config(tmp_path, dataset="cifar10", data_dir=str(tmp_path / "nowhere"), trials=1))
    bad_space = tmp_path / "bad.yaml"
    bad_space.write_text((nasx.space.SPACES_DIR / "resnet.yaml").read_text().replace("count: {int: [2, 4]}",
                                                                                     'count: "three"'))
    with pytest.raises(nasx.NasxError, match="stages.count: 'three' is not a whole number"):
        run_study(config(tmp_path, space=str(bad_space), trials=1))
    url = "postgresql://nasx:s3cret@127.0.0.1:9/nasx"
    with pytest.raises(StudyError) as e:
        run_study(config(tmp_path, storage=url, trials=1))
    assert "s3cret" not in str(e.value) and "nasx:***@127.0.0.1" in str(e.value)
    with pytest.raises(StudyError, match="sampler"):
        run_study(config(tmp_path, sampler="grid", trials=1))
    assert not (tmp_path / "s.journal").exists() or not trials_of(config(tmp_path))


def test_redact_hides_passwords_only():
    assert redact("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact("studies/x.journal") == "studies/x.journal"


def test_cli_explore_runs_from_a_study_file_and_reports_errors_in_one_line(tmp_path):
    study_file = tmp_path / "tiny.yaml"
    study_file.write_text("space: resnet\ndataset: synthetic\ntrials: 2\nepochs: 1\nfraction: 0.25\n"
                          "flops: 1M:4M\ndevice: cpu\nsampler: random\n")
    env = {**os.environ, "NASX_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "nasx", "explore", "--config", str(study_file), "--no-report",
                          "--storage", str(tmp_path / "cli.journal")], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "2 complete" in run.stdout and "Pareto front" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "nasx", "explore", "--space", "nospace"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_fixed_candidates_train_exactly_once_each_and_resume(tmp_path):
    from nasx.study import Candidate

    base = nasx.zoo.get("resnet20")
    specs = [base, base.replace(stages=base.stages[:2]), base.replace(stem=nasx.Stem("cifar", 8))]
    candidates = [Candidate(s, seed=seed, tags={"setting": i}) for i, s in enumerate(specs) for seed in (0, 1)]
    cfg = config(tmp_path, study="fixed", trials=99, workers=2)
    summary = run_study(cfg, train_fn=slow_train, candidates=candidates[:4])
    assert summary.snapshot.complete == 4
    summary = run_study(cfg, train_fn=slow_train, candidates=candidates)  # resumes: only the last two train
    trials = trials_of(summary.config)
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    keys = sorted((t.user_attrs["tag_setting"], t.user_attrs["seed"]) for t in trials)
    assert keys == [(i, seed) for i in range(3) for seed in (0, 1)]
    for t in trials:  # trained as given, adapted to the dataset's 16x16 input
        assert t.user_attrs["spec_id"] == specs[t.user_attrs["tag_setting"]].replace(resolution=16).id


def test_a_journal_cut_by_a_crash_is_read_to_its_last_whole_record(tmp_path):
    cfg = config(tmp_path, trials=2)
    run_study(cfg, train_fn=curve_train)
    path = tmp_path / "s.journal"
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"op_code": 5, "worker_id": "x", "trial_id": 1, "us')  # a half-written record
    notes = []
    summary = run_study(config(tmp_path, trials=3), train_fn=curve_train, on_note=notes.append)
    assert summary.snapshot.complete == 3
    assert any("cut off" in n and str(path) in n for n in notes)


def test_a_damaged_journal_is_one_error_naming_the_file(tmp_path):
    cfg = config(tmp_path, trials=1)
    run_study(cfg, train_fn=curve_train)
    path = tmp_path / "s.journal"
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"{not json"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(StudyError) as e:
        run_study(config(tmp_path, trials=2), train_fn=curve_train)
    assert str(path) in str(e.value) and "record 2" in str(e.value) and "\n" not in str(e.value)


def test_resuming_after_the_space_file_changed_is_a_clear_error(tmp_path):
    space = tmp_path / "mine.yaml"
    text = (nasx.space.SPACES_DIR / "resnet.yaml").read_text()
    space.write_text(text)
    run_study(config(tmp_path, space=str(space), trials=1), train_fn=curve_train)
    space.write_text(text.replace("depth: {int: [1, 30]}", "depth: {int: [1, 20]}"))
    with pytest.raises(StudyError, match="another version of the space file"):
        run_study(config(tmp_path, space=str(space), trials=2), train_fn=curve_train)
    space.write_text(text + "\n# a comment changes nothing\n")
    assert run_study(config(tmp_path, space=str(space), trials=2), train_fn=curve_train).snapshot.complete == 2


def _first_new_trial_pruned(tmp_path, name: str, duplicates: bool) -> bool:
    """A study with one real trial, then one cheap, accurate net completed three times (as two reused duplicates,
    or as three distinct nets), then one new trial under prune_min_peers=3: was that trial pruned?"""
    from optuna.distributions import FloatDistribution

    cfg = config(tmp_path, study=name, trials=1, prune_min_peers=3)
    run_study(cfg, train_fn=curve_train)
    study = optuna.load_study(study_name=name, storage=open_storage(cfg.storage_url))
    spec = nasx.zoo.get("resnet20")
    for k in range(3):
        attrs = {"spec": spec.to_dict(), "spec_id": spec.id if duplicates else f"net{k}", "flops": 1,
                 "curve": [0.99, 0.99], "val_acc": 0.99}
        if duplicates and k:
            attrs["duplicate_of"] = 1
        study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, values=[0.99, 1], user_attrs=attrs,
                                                  params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}))
    last = max(t.number for t in trials_of(cfg))
    run_study(config(tmp_path, study=name, trials=5, max_trials=5, prune_min_peers=3), train_fn=curve_train)
    new = [t for t in trials_of(cfg) if t.number > last and "rejected" not in t.user_attrs][0]
    return "prune_reason" in new.user_attrs


def test_pruning_peers_count_a_net_once(tmp_path):
    assert not _first_new_trial_pruned(tmp_path, "once", duplicates=True)
    assert _first_new_trial_pruned(tmp_path, "thrice", duplicates=False)  # the control: three nets are three peers


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_ctrl_c_or_sigterm_stops_explore_mid_epoch_and_the_same_command_resumes(tmp_path, sig):
    """The real trainer in a long epoch: the signal ends the process within seconds, marks the trial
    interrupted and queues its net again; the report is written all the same."""
    env = {**os.environ, "NASX_OFFLINE": "1", "NASX_CACHE": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "nasx", "explore", "--space", "resnet", "--dataset", "synthetic:32", "--flops",
            "20M:40M", "--trials", "2", "--epochs", "50", "--device", "cpu", "--no-references", "--study", "long",
            "--storage", str(tmp_path / "long.journal")]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cfg = StudyConfig(study="long", storage=str(tmp_path / "long.journal"))
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if _training(cfg):
                break
        except KeyError:  # the study is not created yet
            pass
        time.sleep(0.3)
    time.sleep(2)  # mid-epoch
    sent = time.time()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    # the trainer stops within a step; the rest is the report of what is there (its figures take most of it on a
    # loaded 2-core machine, with another test process beside this one)
    assert time.time() - sent < 20, "took too long to stop"
    assert proc.returncode == 130, err
    assert "interrupted: run the same command again to resume" in err and "Traceback" not in err
    trials = trials_of(cfg)
    interrupted = [t for t in trials if t.user_attrs.get("fail_reason") == "interrupted"]
    queued = [t for t in trials if t.state == TrialState.WAITING and t.user_attrs.get("retry_of") is not None]
    assert len(interrupted) == 1 and len(queued) == 1 and queued[0].user_attrs["retry_of"] == interrupted[0].number
    retry, lost = queued[0], interrupted[0]  # the net copied whole, what the interrupted run wrote left out
    assert retry.user_attrs["spec_id"] == lost.user_attrs["spec_id"]
    assert retry.user_attrs["retries"] == 1
    assert not {"owner", "heartbeat", "curve", "fail_reason"} & set(retry.user_attrs)
    assert (tmp_path / "reports" / "long" / "index.html").is_file()
