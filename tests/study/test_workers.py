"""Workers that share one study: processes started at the same instant (journal and PostgreSQL) train
distinct nets, each trial once; a net another trial holds is drawn again or waited for; a first start
on an empty PostgreSQL database never fails; a dead worker's trial comes back at once on its machine,
or once its heartbeat is stale by the grace, and an idle worker takes it."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import time
import uuid
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from nasx.study import record
from nasx.study import StudyConfig, Worker, open_storage, open_study, reap_stale, run_study, study_lock
from nasx.study.worker import REDRAWS, owner_id, process_ended, process_id
from nasx.train.budget import Budget
from study_fakes import curve_train, hang_once_train

TINY = dict(dataset="synthetic", space="resnet", flops=(1_000_000, 4_000_000), budget=Budget(1, 0.5),
            device="cpu", heartbeat=0.3, val_size=0.1, workers=1)
POSTGRES = os.environ.get("NASX_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(not POSTGRES, reason="set NASX_TEST_POSTGRES_URL (.ci/run sets it)")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("NASX_OFFLINE", "1")
    monkeypatch.setenv("NASX_CACHE", str(tmp_path / "cache"))


def config(tmp_path, **changes) -> StudyConfig:
    return StudyConfig(**{**TINY, "storage": str(tmp_path / "s.journal"), "study": "s", **changes})


def trials_of(cfg: StudyConfig):
    return optuna.load_study(study_name=cfg.name, storage=open_storage(cfg.storage_url)).get_trials()


class FreshDatabase:
    """An empty PostgreSQL database next to NASX_TEST_POSTGRES_URL's, dropped on exit."""

    def __enter__(self) -> str:
        import sqlalchemy

        base, _, _ = POSTGRES.rpartition("/")
        self.name = f"nasx_fresh_{uuid.uuid4().hex[:10]}"
        self.admin = sqlalchemy.create_engine(POSTGRES, isolation_level="AUTOCOMMIT",
                                              poolclass=sqlalchemy.pool.NullPool)
        with self.admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"CREATE DATABASE {self.name}"))
        return f"{base}/{self.name}"

    def __exit__(self, *exc) -> None:
        import sqlalchemy

        with self.admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
        self.admin.dispose()


# -- processes started at the same instant -----------------------------------------------------------

def second_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                 progress=None):
    """The curve trainer, 1 s an epoch: the processes' trials overlap."""
    return curve_train(spec, dataset, budget, device, seed, callback, config=config, sleep=1.0)


def _explore(cfg: StudyConfig, barrier, results, train_fn=second_train) -> None:
    """One `nasx explore` process: run_study with one worker, started when every process is ready."""
    barrier.wait()
    try:
        run_study(cfg, train_fn=train_fn)
        results.put("ok")
    except BaseException as e:  # noqa: BLE001 - reported to the test
        results.put(f"{type(e).__name__}: {e}")


def _race(cfg: StudyConfig, processes: int) -> list[str]:
    spawn = mp.get_context("spawn")
    barrier, results = spawn.Barrier(processes), spawn.Queue()
    procs = [spawn.Process(target=_explore, args=(cfg, barrier, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    return [results.get(timeout=5) for _ in procs]


def assert_distinct_nets_each_once(cfg: StudyConfig, wanted: int, outcomes: list[str]) -> None:
    assert outcomes == ["ok"] * len(outcomes), outcomes  # no dead worker
    trials = trials_of(cfg)
    states = Counter(t.state for t in trials)
    assert states[TrialState.COMPLETE] == wanted and not states[TrialState.RUNNING] and not states[TrialState.WAITING]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    nets = [t.user_attrs["spec_id"] for t in complete]
    assert len(set(nets)) == wanted, Counter(nets)  # the space has many nets: each trial trains another
    assert not [t for t in complete if "duplicate_of" in t.user_attrs]
    assert len({t.user_attrs["owner"] for t in complete}) >= 2  # they shared the work


@pytest.mark.slow
def test_four_processes_started_at_once_train_distinct_nets_on_the_journal(tmp_path):
    cfg = config(tmp_path, trials=8)
    assert_distinct_nets_each_once(cfg, 8, _race(cfg, 4))


@pytest.mark.slow
@needs_postgres
def test_four_processes_started_at_once_on_an_empty_postgresql_database(tmp_path):
    with FreshDatabase() as url:
        cfg = config(tmp_path, trials=8, storage=url)
        assert_distinct_nets_each_once(cfg, 8, _race(cfg, 4))


def _first_starts(cfgs: list[StudyConfig], barrier, results) -> None:
    """Open each study at the same instant as the other processes (one round per fresh database)."""
    for cfg in cfgs:
        barrier.wait()
        try:
            open_study(cfg, open_storage(cfg.storage_url))
            results.put("ok")
        except BaseException as e:  # noqa: BLE001 - reported to the test
            results.put(f"{type(e).__name__}: {e}")


@pytest.mark.slow
@needs_postgres
def test_a_first_start_on_an_empty_postgresql_database_never_fails(tmp_path):
    """Optuna creates its tables under an advisory lock: 4 simultaneous starts, on each of 3 fresh databases."""
    spawn = mp.get_context("spawn")
    with FreshDatabase() as one, FreshDatabase() as two, FreshDatabase() as three:
        cfgs = [config(tmp_path, storage=url) for url in (one, two, three)]
        barrier, results = spawn.Barrier(4), spawn.Queue()
        procs = [spawn.Process(target=_first_starts, args=(cfgs, barrier, results)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
        assert [results.get(timeout=5) for _ in range(12)] == ["ok"] * 12
        for url in (one, two, three):
            assert optuna.get_all_study_names(open_storage(url)) == ["s"]


# -- a net another trial holds ----------------------------------------------------------------------

def _claim(worker: Worker, ctx):
    cfg = worker.cfg
    with study_lock(cfg.storage_url, cfg.name, {}):
        return worker._claim(ctx)


def test_a_sampled_net_another_trial_holds_is_drawn_again(tmp_path):
    cfg = config(tmp_path, trials=4, sampler="random")
    first, second = Worker(cfg, 0, curve_train), Worker(cfg, 1, curve_train)
    a, b = first._setup(), second._setup()
    try:
        # the bug's condition: two workers on one stream propose the same nets in the same order
        a.study.sampler = optuna.samplers.RandomSampler(seed=7)
        b.study.sampler = optuna.samplers.RandomSampler(seed=7)
        held, _ = _claim(first, a)  # past the structures the space rejects
        other, _ = _claim(second, b)  # the same structures rejected, in the same order, then the held net
        assert other.original is None and other.proposal.spec.id != held.proposal.spec.id
        taken = [t for t in trials_of(cfg) if str(t.user_attrs.get("rejected", "")).startswith("taken")]
        assert [t.user_attrs["rejected"] for t in taken] == [f"taken: the net of trial {held.trial.number} (running)"]
        assert taken[0].state == TrialState.PRUNED and held.trial.number < taken[0].number < other.trial.number
    finally:
        a.heartbeat.close()
        b.heartbeat.close()


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # PartialFixedSampler
def test_a_net_the_sampler_insists_on_waits_for_the_running_trials_result(tmp_path):
    cfg = config(tmp_path, trials=4, sampler="random")
    first, second = Worker(cfg, 0, curve_train), Worker(cfg, 1, curve_train)
    a, b = first._setup(), second._setup()
    try:
        held, _ = _claim(first, a)
        b.study.sampler = optuna.samplers.PartialFixedSampler(held.trial.params, optuna.samplers.RandomSampler(seed=1))
        waiting, _ = _claim(second, b)
        assert waiting.original == held.trial.number and waiting.proposal.spec.id == held.proposal.spec.id
        trials = {t.number: t for t in trials_of(cfg)}
        redrawn = [t for t in trials.values() if str(t.user_attrs.get("rejected", "")).startswith("taken")]
        assert len(redrawn) == REDRAWS
        assert trials[waiting.trial.number].state == TrialState.RUNNING
        assert trials[waiting.trial.number].user_attrs["duplicate_of"] == held.trial.number
        first._run_claim(a, held)  # the holder trains ...
        second._run_claim(b, waiting)  # ... the other takes its result
        trials = {t.number: t for t in trials_of(cfg)}
        original, copy = trials[held.trial.number], trials[waiting.trial.number]
        assert original.state == copy.state == TrialState.COMPLETE and "duplicate_of" not in original.user_attrs
        assert copy.values == original.values and copy.user_attrs["curve"] == original.user_attrs["curve"]
        assert copy.user_attrs["duplicate_of"] == original.number
        assert record.TrialRecord.from_trial(copy).outcome == record.TrialRecord.from_trial(original).outcome
    finally:
        a.heartbeat.close()
        b.heartbeat.close()


def test_each_worker_takes_its_own_number_and_stream(tmp_path):
    cfg = config(tmp_path, trials=2, sampler="random")
    storage = open_storage(cfg.storage_url)
    study = open_study(cfg, storage)
    with study_lock(cfg.storage_url, cfg.name, {}):
        numbers = [record.take_worker_number(study) for _ in range(3)]
    assert numbers == [0, 1, 2]
    from nasx.study.storage import make_sampler

    draws = []
    for number in (0, 1, 0):
        sampler = make_sampler("random", 0, number)
        draws.append(sampler._rng.rng.random())
    assert draws[0] == draws[2] != draws[1]  # a worker's stream depends on its number, not on when it opened


# -- lost workers -------------------------------------------------------------------------------------

def test_process_ids_tell_a_local_dead_process_from_a_live_or_remote_one():
    child = subprocess.Popen(["sleep", "30"])
    identity = process_id(child.pid)
    if identity is None:
        pytest.skip("no /proc on this system: only heartbeats tell a lost worker")
    assert not process_ended(identity) and not process_ended(process_id())
    child.kill()
    deadline = time.time() + 5
    while not process_ended(identity) and time.time() < deadline:  # the signal lands in its own time
        time.sleep(0.05)
    assert process_ended(identity)  # a zombie: killed, not yet waited for
    child.wait()
    assert process_ended(identity)
    boot, ns, pid, started = identity.split("/")
    assert process_ended(f"{boot}/{ns}/{os.getpid()}/{int(started) + 1}")  # the pid reused by another process
    assert not process_ended(f"another-boot/{ns}/{child.pid}/{started}")  # another machine: only heartbeats tell


def test_reaping_local_dead_workers_at_once_and_silent_remote_ones_after_the_grace(tmp_path):
    cfg = config(tmp_path, trials=2)
    storage = open_storage(cfg.storage_url)
    study = open_study(cfg, storage)
    child = subprocess.Popen(["sleep", "30"])
    dead = process_id(child.pid)
    child.kill()
    child.wait()
    now = time.time()
    setups = {"alive here": (process_id(), now), "dead here": (dead, now),
              "remote, beating": ("elsewhere/1/7/7", now - 2), "remote, silent": ("elsewhere/1/8/8", now - 8)}
    numbers = {}
    for what, (process, heartbeat) in setups.items():
        trial = study.ask()
        record.write(trial, owner=f"{what}:1", process=process, heartbeat=heartbeat)
        numbers[what] = trial.number
    reaped = reap_stale(study, storage, grace=5.0)
    assert sorted(reaped) == sorted([numbers["dead here"], numbers["remote, silent"]])
    trials = {t.number: t for t in study.get_trials()}
    assert trials[numbers["dead here"]].user_attrs["fail_reason"] == "lost: its worker dead here:1 ended"
    assert trials[numbers["remote, silent"]].user_attrs["fail_reason"].startswith("lost: no heartbeat for ")
    assert trials[numbers["alive here"]].state == trials[numbers["remote, beating"]].state == TrialState.RUNNING


def _worker(cfg: StudyConfig, train_fn) -> None:
    Worker(cfg, 0, train_fn).run()


def _remote_worker(cfg: StudyConfig, train_fn) -> None:
    """A worker whose trials look as if trained on another machine: only its heartbeat tells it is alive."""
    import nasx.study.worker as worker

    worker.process_id = lambda pid=None: f"another-machine/1/{os.getpid()}/1"
    Worker(cfg, 0, train_fn).run()


def _state(cfg: StudyConfig, number: int):
    return {t.number: t for t in trials_of(cfg)}[number].state


@pytest.mark.slow
@pytest.mark.parametrize("where, grace", [("here", 60.0), ("remote", 4.0)])
def test_an_idle_worker_takes_a_sigkilled_workers_trial(tmp_path, monkeypatch, where, grace):
    """Here the death is seen at once (the grace is a minute); from another machine, once the heartbeat is
    `grace` s old. The idle worker, waiting for the study to end, trains the lost net itself."""
    monkeypatch.setenv("NASX_TEST_HANG", str(tmp_path / "hung"))
    cfg = config(tmp_path, trials=2, grace=grace, max_trials=10)
    spawn = mp.get_context("spawn")
    hung = spawn.Process(target=_worker if where == "here" else _remote_worker, args=(cfg, hang_once_train))
    hung.start()
    deadline = time.time() + 120
    lost = None
    while time.time() < deadline and lost is None:
        time.sleep(0.2)
        try:
            lost = next((t for t in trials_of(cfg) if t.state == TrialState.RUNNING and "spec_id" in t.user_attrs), None)
        except KeyError:  # the study is not created yet
            pass
    assert lost is not None, "the worker never started its trial"
    idle = spawn.Process(target=_worker, args=(cfg, curve_train))
    idle.start()
    try:
        while time.time() < deadline and Counter(t.state for t in trials_of(cfg))[TrialState.COMPLETE] < 1:
            time.sleep(0.2)
        time.sleep(1.0)  # the idle worker waits for the study: 1 complete, 1 running, 2 wanted
        assert idle.is_alive() and _state(cfg, lost.number) == TrialState.RUNNING
        os.kill(hung.pid, signal.SIGKILL)
        killed = time.time()
        hung.join()
        while time.time() < killed + 30 and _state(cfg, lost.number) == TrialState.RUNNING:
            time.sleep(0.1)
        requeued = time.time() - killed
        idle.join(timeout=30)
        assert idle.exitcode == 0, "the idle worker did not end the study"
    finally:
        for p in (hung, idle):
            if p.is_alive():
                p.kill()
                p.join()
    trials = {t.number: t for t in trials_of(cfg)}
    reason = trials[lost.number].user_attrs["fail_reason"]
    if where == "here":
        assert requeued < 5.0 and reason == f"lost: its worker {owner_id(hung.pid)} ended"
    else:
        assert grace - 1.0 <= requeued <= grace + 5.0 and reason.startswith("lost: no heartbeat")
    retry = [t for t in trials.values() if t.user_attrs.get("retry_of") == lost.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and retry[0].params == lost.params
    assert Counter(t.state for t in trials.values())[TrialState.COMPLETE] == 2
    print(f"{where}: re-queued {requeued:.1f} s after SIGKILL (grace {grace:.0f} s)")
