"""Trust and storage (issue 26): a snapshot runs no foreign code (swapped symlinks, crafted files) and never lies (a
diverged copy of the journal reads as its full replay); `explore --storage` leaves a file that is not a journal
untouched; a damaged journal or a full disk is one line; a dead lock holder costs nothing; a live worker's trial is
never reaped, however old its heartbeat."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner

from nasx.cli.app import app
from nasx.study import StudyConfig, open_storage, open_study, reap_stale, record
from nasx.study.journal import JournalError, SnapshotJournal, key_path, snapshot_path
from nasx.study.worker import process_id
from nasx.train.budget import Budget

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _add(study, n: int, start: int = 0, shift: float = 0.0) -> None:
    for i in range(start, start + n):
        study.add_trial(create_trial(state=TrialState.COMPLETE, values=[i / 1000 + shift, float(i)],
                                     params={"depth": i % 7}, distributions={"depth": IntDistribution(0, 6)},
                                     user_attrs={"flops": i}))


def _write(path: Path, n: int) -> None:
    """A study 's' of n complete trials written through nasx's storage (a snapshot at trial id 100, the 101st)."""
    study = optuna.create_study(study_name="s", storage=open_storage(str(path)), directions=["maximize", "minimize"])
    _add(study, n)


def _view(trials):
    return [(t.number, t.state, t.values, t.params, t.user_attrs) for t in trials]


def _replayed(path: Path):
    """The trials as a full replay reads them (Optuna's plain file backend, no snapshot)."""
    return optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(path)))).get_trials()


def _opened(path: Path):
    return optuna.load_study(study_name="s", storage=open_storage(str(path), read_only=True)).get_trials()


class _Boom:
    """Unpickled, it creates the marker file: what a hostile snapshot does."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


# -- snapshots --------------------------------------------------------------------------------------------------------

def test_a_swapped_symlink_or_a_crafted_snapshot_never_runs(tmp_path):
    """A thread swaps the snapshot's name among a symlink to the genuine one, a symlink to a crafted pickle, and a
    crafted regular file of this user (its header copied from the genuine one) while the main thread opens the
    snapshot as Optuna does, 1,000 times: the marker the crafted pickle would create never appears."""
    path = tmp_path / "s.journal"
    _write(path, 101)
    snap = snapshot_path(path)
    genuine = tmp_path / "genuine"
    shutil.copyfile(snap, genuine)
    good = SnapshotJournal(str(path), writable=False).load_snapshot()
    marker = tmp_path / "pwned"
    header = snap.read_bytes().split(b"\n", 1)[0]
    crafted = header + b"\n" + zlib.compress(pickle.dumps(_Boom(str(marker))))
    (tmp_path / "crafted").write_bytes(crafted)
    os.chmod(tmp_path / "crafted", 0o600)
    swaps = [0]
    stop = threading.Event()

    def swap() -> None:
        nxt = tmp_path / "next"
        while not stop.is_set():
            for make in (lambda: os.symlink(genuine, nxt), lambda: os.symlink(tmp_path / "crafted", nxt),
                         lambda: os.link(tmp_path / "crafted", nxt)):
                make()
                os.replace(nxt, snap)
                swaps[0] += 1

    swapper = threading.Thread(target=swap)
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # the threads interleave often: swaps fall between the opener's steps
    swapper.start()
    foreign = opens = 0
    try:
        deadline = time.time() + 30
        while (opens < 1000 or swaps[0] < 1000) and time.time() < deadline:
            state = SnapshotJournal(str(path), writable=False).load_snapshot()
            opens += 1
            if state is not None:
                pickle.loads(state)  # what Optuna's JournalStorage does with it
                foreign += state != good
    finally:
        stop.set()
        swapper.join()
        sys.setswitchinterval(switching)
    assert not marker.exists()
    assert swaps[0] >= 1000 and opens >= 1000
    assert foreign == 0  # whatever was read was the genuine state
    os.replace(genuine, snap)
    assert SnapshotJournal(str(path), writable=False).load_snapshot() is not None  # read when in place itself


def test_a_snapshot_not_signed_with_this_users_key_is_ignored(tmp_path, monkeypatch):
    path = tmp_path / "s.journal"
    _write(path, 101)
    assert SnapshotJournal(str(path), writable=False).load_snapshot() is not None
    monkeypatch.setenv("NASX_SNAPSHOT_KEY", str(tmp_path / "another.key"))  # another user's key: another HMAC
    assert SnapshotJournal(str(path), writable=False).load_snapshot() is None
    assert not (tmp_path / "another.key").exists()  # a reader never makes a key


def test_the_snapshot_key_is_private_and_a_loose_one_is_not_used(tmp_path, monkeypatch):
    path = tmp_path / "s.journal"
    _write(path, 101)
    key = key_path()
    assert (key.stat().st_mode & 0o777) == 0o600 and len(key.read_bytes()) == 64
    os.chmod(key, 0o644)
    assert SnapshotJournal(str(path), writable=False).load_snapshot() is None
    os.chmod(key, 0o600)
    assert SnapshotJournal(str(path), writable=False).load_snapshot() is not None


@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_a_snapshot_in_a_folder_others_can_write_is_ignored_unless_sticky(tmp_path, mode):
    path = tmp_path / "studies" / "s.journal"
    path.parent.mkdir()
    _write(path, 101)
    os.chmod(path.parent, mode)
    assert SnapshotJournal(str(path), writable=False).load_snapshot() is None
    os.chmod(path.parent, mode | 0o1000)
    assert SnapshotJournal(str(path), writable=False).load_snapshot() is not None


def test_a_diverged_copy_of_the_journal_reads_as_its_full_replay(tmp_path):
    """Copy a journal; one copy goes on with snapshots, the other without; the second copied over the first, keeping
    the first's snapshot: the study reads exactly as a full replay of the journal it now is."""
    path = tmp_path / "s.journal"
    _write(path, 60)
    other = tmp_path / "other.journal"
    shutil.copyfile(path, other)
    _add(optuna.load_study(study_name="s", storage=open_storage(str(path))), 60, start=60)  # snapshot at 100
    assert snapshot_path(path).is_file()
    plain = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(other))))
    _add(plain, 70, start=60, shift=0.5)
    shutil.copyfile(other, path)  # the first's snapshot stays
    trials = _opened(path)
    assert len(trials) == 130
    assert _view(trials) == _view(_replayed(path))


def test_an_empty_snapshot_is_ignored_and_the_report_goes_on(tmp_path):
    """A snapshot whose body is an empty pickle (its header a real one's) is ignored: `report` reads the journal."""
    path = tmp_path / "s.journal"
    _write(path, 101)
    snap = snapshot_path(path)
    header = snap.read_bytes().split(b"\n", 1)[0]
    snap.write_bytes(header + b"\n" + zlib.compress(b""))
    assert SnapshotJournal(str(path), writable=False).load_snapshot() is None
    result = runner.invoke(app, ["export", "s", "--storage", str(path), "--trial", "3", "--out",
                                 str(tmp_path / "t.yaml")])
    assert "Aborted" not in result.output
    assert "trial 3" in result.output and "holds no spec" in result.output  # the journal was read: trial 3 is there


def test_temporary_snapshot_files_left_by_a_killed_writer_are_removed(tmp_path):
    """Ours and old: removed at the next save; a young one (a writer still at work), a symlink, or a file of another
    name: left alone."""
    path = tmp_path / "s.journal"
    _write(path, 5)
    base = snapshot_path(path).name
    old, young, link, outside = (tmp_path / f"{base}.old1.tmp", tmp_path / f"{base}.young.tmp",
                                 tmp_path / f"{base}.link.tmp", tmp_path / "keep.tmp")
    for p in (old, young, outside):
        p.write_bytes(b"x")
    os.symlink(outside, link)
    hour_ago = time.time() - 3600
    for p in (old, outside):
        os.utime(p, (hour_ago, hour_ago))
    os.utime(link, (hour_ago, hour_ago), follow_symlinks=False)
    _add(optuna.load_study(study_name="s", storage=open_storage(str(path))), 96, start=5)  # saves a snapshot
    assert snapshot_path(path).is_file()
    assert not old.exists()
    assert young.exists() and link.is_symlink() and outside.read_bytes() == b"x"


# -- what is not a journal, a damaged one, a full disk --------------------------------------------------------------

NOT_JOURNALS = {  # without a newline, today's repair took the whole file for a cut record and dropped it
    "text": b"meeting notes: call back Monday at 10am",
    "text-lines": b"my notes: buy milk\nand eggs, then call back\n",
    "binary": bytes(b for b in range(256) if b != 10) * 8,
    "json-lines": b'{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n{"id": 3',
}


@pytest.mark.parametrize("kind", sorted(NOT_JOURNALS))
def test_explore_refuses_a_storage_file_that_is_not_a_journal_and_leaves_it_as_it_was(tmp_path, kind):
    path = tmp_path / f"notes.{kind}"
    path.write_bytes(NOT_JOURNALS[kind])
    result = runner.invoke(app, ["explore", "--space", "resnext", "--dataset", "synthetic", "--epochs", "1",
                                 "--device", "cpu", "--trials", "1", "--storage", str(path), "--no-report",
                                 "--no-references"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and "not an Optuna journal" in lines[0], result.output
    assert path.read_bytes() == NOT_JOURNALS[kind]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("command", ["report", "export"])
def test_a_journal_damaged_mid_file_is_one_line_in_report_and_export(tmp_path, command):
    path = tmp_path / "s.journal"
    _write(path, 20)
    lines = path.read_bytes().split(b"\n")
    lines[5] = lines[5][: len(lines[5]) // 2]
    path.write_bytes(b"\n".join(lines))
    args = (["report", "s", "--out", str(tmp_path / "r")] if command == "report" else
            ["export", "s", "--trial", "1", "--out", str(tmp_path / "t.yaml")])
    result = runner.invoke(app, [*args, "--storage", str(path)])
    assert result.exit_code == 2 and not isinstance(result.exception, json.JSONDecodeError), result.output
    out = [line for line in result.output.splitlines() if line.strip()]
    assert len(out) == 1 and "damaged" in out[0] and str(path) in out[0], result.output


def test_a_full_disk_under_a_worker_process_is_one_line_naming_the_journal(tmp_path, monkeypatch, capsys):
    """A spawned worker (`explore --workers N`) whose journal write fails ends with one line and exit 1, not
    multiprocessing's traceback of Optuna's OSError."""
    from nasx.study.run import _worker_process
    from study_fakes import curve_train

    cfg = StudyConfig(**{**TINY, "storage": str(tmp_path / "s.journal"), "study": "s", "trials": 2})
    real = JournalFileBackend.append_logs
    full = []

    def append_logs(self, logs):  # the disk is full by the time the first trial ends, and stays full
        if full or any(log.get("state") == TrialState.COMPLETE.value for log in logs):
            full.append(logs)
            raise OSError(28, "No space left on device")
        return real(self, logs)

    monkeypatch.setattr(JournalFileBackend, "append_logs", append_logs)
    with pytest.raises(SystemExit) as e:
        _worker_process(cfg, 3, {}, None, curve_train)
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == f"nasx: error: worker 3: cannot write {tmp_path / 's.journal'} (No space left on device)"


# -- locks ------------------------------------------------------------------------------------------------------------

_HOLDER = """
import os, sys, time
import optuna
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial
from nasx.study import open_storage
path, held = sys.argv[1], sys.argv[2]
study = optuna.load_study(study_name="s", storage=open_storage(path))
def hang(fd):  # inside the journal's lock: Optuna's append_logs fsyncs before releasing it
    open(held, "w").close()
    time.sleep(600)
os.fsync = hang
study.add_trial(create_trial(state=TrialState.COMPLETE, values=[0.5, 1.0], params={"depth": 1},
                             distributions={"depth": IntDistribution(0, 6)}))
"""


def test_a_sigkilled_lock_holder_costs_the_next_writer_under_two_seconds(tmp_path):
    path = tmp_path / "s.journal"
    _write(path, 2)
    held = tmp_path / "held"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), str(held)], env=env)
    try:
        deadline = time.time() + 60
        while not held.exists() and holder.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert held.exists(), "the holder never took the lock"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    study = optuna.load_study(study_name="s", storage=open_storage(str(path)))
    started = time.perf_counter()
    _add(study, 1, start=2)
    waited = time.perf_counter() - started
    print(f"the next writer waited {waited:.3f} s after the SIGKILL")
    assert waited < 2.0
    assert len(_replayed(path)) == 4  # the holder's record was written before its fsync


# -- reaping ----------------------------------------------------------------------------------------------------------

TINY = dict(dataset="synthetic", space="resnet", flops=(1_000_000, 4_000_000), budget=Budget(1, 0.5),
            device="cpu", heartbeat=0.3, val_size=0.1, workers=1)


def _study(tmp_path, **changes):
    cfg = StudyConfig(**{**TINY, "storage": str(tmp_path / "s.journal"), "study": "s", "trials": 2, **changes})
    storage = open_storage(cfg.storage_url)
    return open_study(cfg, storage), storage


def test_a_stopped_local_worker_keeps_its_trial_however_old_its_heartbeat(tmp_path):
    """Its process lives on this machine (SIGSTOPped: starved, paused): an hour-old heartbeat does not make its trial
    lost; once the process has ended, the trial is reaped."""
    study, storage = _study(tmp_path)
    stopped = subprocess.Popen(["sleep", "30"])
    try:
        os.kill(stopped.pid, signal.SIGSTOP)
        trial = study.ask()
        record.write(trial, owner="stopped:1", process=process_id(stopped.pid), heartbeat=time.time() - 3600)
        assert reap_stale(study, storage, grace=5.0) == []
    finally:
        stopped.kill()
        stopped.wait()
    assert reap_stale(study, storage, grace=5.0) == [trial.number]
    assert study.get_trials()[trial.number].user_attrs["fail_reason"] == "lost: its worker stopped:1 ended"


def test_a_remote_worker_whose_heartbeats_came_late_gets_a_longer_grace(tmp_path):
    """A remote owner whose heartbeats came 4 s apart keeps its trial 8 s after its last one (3 x 4 s > 8 s, though the
    grace is 5 s), and loses it past 12 s."""
    study, storage = _study(tmp_path, trials=3)
    now = time.time()
    numbers = {}
    for what, process, heartbeat, gap in (("slow", "elsewhere/1/7/7", now - 8, 4.0),
                                          ("silent", "elsewhere/1/8/8", now - 13, 4.0),
                                          ("steady", "elsewhere/1/9/9", now - 6, None)):
        trial = study.ask()
        record.write(trial, owner=f"{what}:1", process=process, heartbeat=heartbeat, heartbeat_gap=gap)
        numbers[what] = trial.number
    assert sorted(reap_stale(study, storage, grace=5.0)) == [numbers["silent"], numbers["steady"]]


class _SlowStorage:
    """Records the attributes a heartbeat writes; its third write takes 0.8 s (a loaded machine or database)."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, object]] = []

    def set_trial_user_attr(self, trial_id: int, key: str, value: object) -> None:
        self.writes.append((key, value))
        if sum(k == "heartbeat" for k, _ in self.writes) == 3 and key == "heartbeat":
            time.sleep(0.8)


def test_a_heartbeat_stores_its_longest_gap_when_a_beat_comes_late():
    from nasx.study.worker import Heartbeat

    storage = _SlowStorage()
    beat = Heartbeat(None, storage, interval=0.1, grace=1.0, lock=contextlib.nullcontext)
    try:
        beat.watch(7)
        time.sleep(1.4)
    finally:
        beat.close()
    gaps = [v for k, v in storage.writes if k == "heartbeat_gap"]
    assert len(gaps) == 1 and 0.8 <= gaps[0] <= 1.3, storage.writes  # the late beat's gap; on time: none written


def _sleepy_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                  progress=None):
    """The curve trainer, 1.5 s an epoch, counting its runs in $NASX_TEST_TRAINED."""
    from study_fakes import curve_train

    with open(os.environ["NASX_TEST_TRAINED"], "a") as f:
        f.write(f"{spec.id}\n")
    return curve_train(spec, dataset, budget, device, seed, callback, config=config, sleep=1.5)


def _run_worker(cfg: StudyConfig) -> None:
    from nasx.study import Worker

    Worker(cfg, 0, _sleepy_train).run()


@pytest.mark.heavy
def test_a_sigstopped_worker_keeps_its_trial_and_completes_it_once(tmp_path, monkeypatch):
    """SIGSTOP a worker in its trial (heartbeat every 0.3 s, grace 1 s); 3 s later its trial is still its own, however
    a reaper looks; SIGCONT: it completes the trial, trained once, nothing failed."""
    import multiprocessing as mp

    monkeypatch.setenv("NASX_OFFLINE", "1")
    monkeypatch.setenv("NASX_TEST_TRAINED", str(tmp_path / "trained"))
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    cfg = StudyConfig(**{**TINY, "storage": str(tmp_path / "s.journal"), "study": "s", "trials": 1, "grace": 1.0,
                         "budget": Budget(2, 0.5)})
    worker = mp.get_context("spawn").Process(target=_run_worker, args=(cfg,))
    worker.start()
    try:
        deadline = time.time() + 120
        running = None
        while running is None and time.time() < deadline:
            time.sleep(0.1)
            with_trials = (tmp_path / "trained").exists()
            if with_trials:
                study = optuna.load_study(study_name="s", storage=open_storage(cfg.storage_url))
                running = next((t for t in study.get_trials() if t.state == TrialState.RUNNING), None)
        assert running is not None, "the worker never started its trial"
        os.kill(worker.pid, signal.SIGSTOP)
        time.sleep(3.0)
        storage = open_storage(cfg.storage_url)
        study = optuna.load_study(study_name="s", storage=storage)
        beat = study.get_trials()[running.number].user_attrs["heartbeat"]
        assert time.time() - beat > 2.5  # past the grace and 3 x the heartbeat gaps
        assert reap_stale(study, storage, grace=1.0) == []
        os.kill(worker.pid, signal.SIGCONT)
        worker.join(timeout=60)
        assert worker.exitcode == 0
    finally:
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGCONT)
            worker.kill()
            worker.join()
    trials = _replayed(tmp_path / "s.journal")
    states = Counter(t.state for t in trials)  # pruned ones: structures the space rejected, never trained
    assert states[TrialState.COMPLETE] == 1 and states[TrialState.FAIL] == states[TrialState.RUNNING] == 0
    assert len((tmp_path / "trained").read_text().split()) == 1


def test_a_worker_whose_trial_was_failed_under_it_stops_and_writes_nothing(tmp_path):
    """Another worker judges the trial lost while it trains (fails and re-queues it): this worker stops at the next
    epoch and writes no result into the failed trial; the retry trains the net and completes."""
    from nasx.study import Worker
    from nasx.study.record import TrialRecord
    from nasx.study.worker import requeue
    from study_fakes import curve_train

    cfg = StudyConfig(**{**TINY, "storage": str(tmp_path / "s.journal"), "study": "s", "trials": 1,
                         "budget": Budget(2, 0.5)})
    trained = []

    def train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False, progress=None):
        trained.append(spec.id)
        if len(trained) == 1:
            storage = open_storage(cfg.storage_url)
            study = optuna.load_study(study_name="s", storage=storage)
            running = [TrialRecord.from_trial(t) for t in study.get_trials(states=(TrialState.RUNNING,))]
            assert requeue(study, storage, running[0], "lost: judged so by another worker")
        return curve_train(spec, dataset, budget, device, seed, callback, config=config)

    events: list[str] = []
    Worker(cfg, 0, train, on_event=events.append).run()
    trials = {t.number: t for t in _replayed(tmp_path / "s.journal")}
    lost = next(t for t in trials.values() if t.state == TrialState.FAIL)
    assert f"trial {lost.number}: failed meanwhile (lost: judged so by another worker); this worker stops it and " \
           f"writes nothing" in events
    assert lost.user_attrs["fail_reason"] == "lost: judged so by another worker"
    assert "curve" not in lost.user_attrs and "val_acc" not in lost.user_attrs
    retry = [t for t in trials.values() if t.user_attrs.get("retry_of") == lost.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and len(trained) == 2
    assert trained[0] == trained[1]


# -- races under CPU load ---------------------------------------------------------------------------------------------

def _counted_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                   progress=None):
    """The curve trainer, 1 s an epoch, writing each net it trains to $NASX_TEST_TRAINED."""
    from study_fakes import curve_train

    with open(os.environ["NASX_TEST_TRAINED"], "a") as f:
        f.write(f"{spec.id}\n")
    return curve_train(spec, dataset, budget, device, seed, callback, config=config, sleep=1.0)


def _busy() -> None:
    while True:
        pass


@pytest.mark.heavy
@pytest.mark.parametrize("where", ["journal", "postgresql"])
def test_four_processes_race_under_cpu_load_with_exact_counts_none_lost_none_trained_twice(tmp_path, monkeypatch,
                                                                                        where):
    """3 reps: 4 processes start one study of 8 trials at the same instant, beside 2 busy loops per core; heartbeat
    0.3 s and grace 1 s, so a starved worker's heartbeat falls silent far past the grace: every trial completes once,
    none is failed as lost, no net is trained twice."""
    import multiprocessing as mp

    from test_workers import POSTGRES, FreshDatabase, _explore

    if where == "postgresql" and not POSTGRES:
        pytest.skip("set NASX_TEST_POSTGRES_URL (.ci/run sets it)")
    spawn = mp.get_context("spawn")
    busy = [spawn.Process(target=_busy, daemon=True) for _ in range(2 * (os.cpu_count() or 1))]
    for p in busy:
        p.start()
    figures = []
    try:
        for rep in range(3):
            trained = tmp_path / f"trained{rep}"
            monkeypatch.setenv("NASX_TEST_TRAINED", str(trained))
            with contextlib.ExitStack() as stack:
                storage = (stack.enter_context(FreshDatabase()) if where == "postgresql"
                           else str(tmp_path / f"s{rep}.journal"))
                cfg = StudyConfig(**{**TINY, "storage": storage, "study": "s", "trials": 8, "grace": 1.0})
                barrier, results = spawn.Barrier(4), spawn.Queue()
                procs = [spawn.Process(target=_explore, args=(cfg, barrier, results, _counted_train)) for _ in range(4)]
                started = time.time()
                for p in procs:
                    p.start()
                for p in procs:
                    p.join(timeout=600)
                outcomes = [results.get(timeout=5) for _ in procs]
                trials = optuna.load_study(study_name="s", storage=open_storage(storage)).get_trials()
            states = Counter(t.state for t in trials)
            complete = [t.user_attrs["spec_id"] for t in trials if t.state == TrialState.COMPLETE]
            lost = [t.number for t in trials if str(t.user_attrs.get("fail_reason", "")).startswith("lost")]
            runs = Counter(trained.read_text().split())
            figures.append((rep, round(time.time() - started, 1), states[TrialState.COMPLETE], len(lost),
                            sum(n - 1 for n in runs.values())))
            assert outcomes == ["ok"] * 4, outcomes
            assert states[TrialState.COMPLETE] == 8 and not states[TrialState.FAIL] and not states[TrialState.RUNNING]
            assert not lost and len(set(complete)) == 8
            assert sorted(runs) == sorted(complete) and set(runs.values()) == {1}  # each net trained exactly once
    finally:
        for p in busy:
            p.kill()
            p.join()
        print(f"{where}: (rep, seconds, complete, lost, trained twice) {figures}")


def test_a_lock_held_for_seconds_is_seen_by_the_monitor_and_shown_by_the_display(tmp_path, capsys):
    """A journal lock whose holder is alive but stuck (stopped, say) keeps every writer waiting: the monitor's
    non-blocking probes see it busy since the first probe, the live line says so past LOCK_SLOW, and a free lock
    reads 0 again."""
    import threading
    import time

    from nasx.cli.explore import LOCK_SLOW, Display
    from nasx.study.journal import LockWatch, flock, lock_path
    from nasx.study.progress import Snapshot

    journal = tmp_path / "s.journal"
    watch = LockWatch(journal)
    assert watch.probe() == 0.0  # no lock file: nobody holds it
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with flock(lock_path(journal)):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    try:
        assert watch.probe() == 0.0  # first seen busy now
        time.sleep(0.3)
        assert 0.3 <= watch.probe() < 5
    finally:
        release.set()
        thread.join()
    assert watch.probe() == 0.0
    display = Display("s")  # not a terminal here: one line per change on stderr
    display.update(Snapshot(lock_wait=LOCK_SLOW + 7))
    display.update(Snapshot(lock_wait=0.0, complete=1))
    lines = capsys.readouterr().err.splitlines()
    assert "the journal's lock has been held for 12 s" in lines[0] and "lock" not in lines[1]
