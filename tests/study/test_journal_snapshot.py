"""Journal snapshots (nasx.study.journal): a study opens from Optuna's saved replay state and the records after
it, reads exactly what a full replay reads, and a snapshot that does not belong to the journal is ignored."""

from __future__ import annotations

import json
import os

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState, create_trial

from nasx.study.journal import SnapshotJournal, snapshot_path
from nasx.study.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _write(path, n: int, name: str = "s") -> None:
    """A study of n complete trials written through nasx's storage (a snapshot every 100 trials, as Optuna saves it)."""
    study = optuna.create_study(study_name=name, storage=open_storage(str(path)), directions=["maximize", "minimize"])
    for i in range(n):
        study.add_trial(create_trial(state=TrialState.COMPLETE, values=[i / n, float(i)], params={"depth": i % 7},
                                     distributions={"depth": IntDistribution(0, 6)}, user_attrs={"flops": i}))


def _replayed(path, name: str = "s"):
    """The trials as a full replay of the journal reads them (Optuna's plain file backend)."""
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(path)))).get_trials()


@pytest.fixture
def reads(monkeypatch):
    """The log numbers each read of a journal started from (0: the whole journal was replayed)."""
    starts: list[int] = []
    real = JournalFileBackend.read_logs

    def read_logs(self, log_number_from):
        starts.append(log_number_from)
        return real(self, log_number_from)

    monkeypatch.setattr(JournalFileBackend, "read_logs", read_logs)
    return starts


def _opened(path, reads, name: str = "s"):
    reads.clear()
    trials = optuna.load_study(study_name=name, storage=open_storage(str(path), read_only=True)).get_trials()
    return trials, reads[0]


def test_a_study_opens_from_its_snapshot_and_reads_what_a_replay_reads(tmp_path, reads):
    path = tmp_path / "s.journal"
    _write(path, 250)
    assert snapshot_path(path).is_file()
    trials, start = _opened(path, reads)
    header = json.loads(snapshot_path(path).read_bytes().split(b"\n", 1)[0])
    assert start == header["records"] > 200  # the snapshot's records were not read again
    assert path.read_bytes()[header["offset"] - 1:header["offset"]] == b"\n"  # where the next records start
    full = _replayed(path)
    assert len(trials) == 250
    assert [(t.number, t.state, t.values, t.params, t.user_attrs, t.datetime_start) for t in trials] == \
        [(t.number, t.state, t.values, t.params, t.user_attrs, t.datetime_start) for t in full]


def test_a_snapshot_of_another_journal_is_ignored(tmp_path, reads):
    path = tmp_path / "s.journal"
    _write(path, 150)
    kept = snapshot_path(path).read_bytes()
    path.unlink()
    snapshot_path(path).unlink()
    _write(path, 20)  # the study written anew under the same name: no snapshot of its own yet
    snapshot_path(path).write_bytes(kept)
    os.chmod(snapshot_path(path), 0o600)
    trials, start = _opened(path, reads)
    assert start == 0 and len(trials) == 20


@pytest.mark.parametrize("spoil", ["writable by others", "other optuna", "cut body", "journal cut shorter"])
def test_a_snapshot_that_cannot_be_trusted_is_ignored(tmp_path, reads, spoil):
    path = tmp_path / "s.journal"
    _write(path, 120)
    snap = snapshot_path(path)
    header, body = snap.read_bytes().split(b"\n", 1)
    if spoil == "writable by others":
        os.chmod(snap, 0o666)
    elif spoil == "other optuna":
        snap.write_bytes(json.dumps({**json.loads(header), "optuna": "0.1"}).encode() + b"\n" + body)
    elif spoil == "cut body":
        snap.write_bytes(header + b"\n" + body[: len(body) // 2])
    else:
        size = json.loads(header)["journal_size"]
        with open(path, "rb+") as f:
            f.truncate(size - 1)
    trials, start = _opened(path, reads)
    assert start == 0
    assert len(trials) == (120 if spoil != "journal cut shorter" else len(_replayed(path)))


def test_a_snapshot_that_cannot_be_written_costs_nothing(tmp_path, monkeypatch):
    path = tmp_path / "s.journal"
    _write(path, 5)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.mkstemp", full_disk)
    SnapshotJournal(str(path)).save_snapshot(b"state")  # no exception
    SnapshotJournal(str(path), writable=False).save_snapshot(b"state")
    assert not [p.name for p in tmp_path.iterdir() if ".snapshot" in p.name]


def _add_trials(path: str, n: int, barrier) -> None:
    """One writer process: wait for the others, then add n trials to the shared study (snapshots on the way)."""
    study = optuna.load_study(study_name="s", storage=open_storage(path))
    barrier.wait()
    for i in range(n):
        study.add_trial(create_trial(state=TrialState.COMPLETE, values=[i / n, float(i)], params={"depth": i % 7},
                                     distributions={"depth": IntDistribution(0, 6)}, user_attrs={"flops": i}))


def test_writers_racing_on_one_journal_leave_a_snapshot_that_reads_as_the_replay(tmp_path, reads):
    """Three processes add 80 trials each at the same instant; snapshots are saved by whichever creates each hundredth
    trial, renamed into place whole; the study read from the last one equals the full replay."""
    import multiprocessing as mp

    path = tmp_path / "s.journal"
    _write(path, 1)
    spawn = mp.get_context("spawn")
    barrier = spawn.Barrier(3)
    procs = [spawn.Process(target=_add_trials, args=(str(path), 80, barrier)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert snapshot_path(path).is_file() and not list(tmp_path.glob("*.tmp"))
    trials, start = _opened(path, reads)
    full = _replayed(path)
    assert len(trials) == 241 and start > 0
    assert [(t.number, t.values, t.params, t.user_attrs) for t in trials] == \
        [(t.number, t.values, t.params, t.user_attrs) for t in full]
