"""A synthetic study: N trials of a shipped space with made-up results, written straight into an Optuna journal.

No net is trained: each trial is a member of the space drawn as a study draws it (`suggest` through a random
trial, so the params and distributions are those a real study stores), with its analytic counts and a made-up
learning curve, stored under the user attributes nasx writes (`nasx.study.record`). About 5% of the trials are
pruned, 1% failed, 1% structures the space rejected; repeated nets are marked `duplicate_of`. For tests, examples
and runs at scale (`nasx report` of 10,000 trials); `scripts/synthetic_study.py` is its command.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from optuna.storages.journal import BaseJournalBackend
from optuna.storages.journal._base import BaseJournalSnapshot

__all__ = ["make_study"]


class _Logs(BaseJournalBackend, BaseJournalSnapshot):
    """An in-memory journal backend: the whole study is appended to the file in one write (one fsync, not one a trial);
    it keeps the last snapshot Optuna hands it (every 100 trials), saved beside the journal as a study's workers save it."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []
        self.snapshot: bytes | None = None
        self.records = 0

    def save_snapshot(self, snapshot: bytes) -> None:
        self.snapshot, self.records = snapshot, len(self.logs)

    def load_snapshot(self) -> bytes | None:
        return None

    def read_logs(self, log_number_from: int):
        return self.logs[log_number_from:]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self.logs.extend(logs)


class _DrawnTrial:
    """An Optuna-trial stand-in that draws each suggestion at random and keeps params and distributions."""

    def __init__(self, rng: np.random.Generator):
        from optuna import distributions as d

        self._d, self.rng = d, rng
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, Any] = {}

    def _keep(self, name: str, value: Any, dist: Any) -> Any:
        self.params[name], self.distributions[name] = value, dist
        return value

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        if log:
            value = min(high, int(math.exp(self.rng.uniform(math.log(low), math.log(high + 1)))))
        else:
            value = int(self.rng.integers(low, high + 1))
        return self._keep(name, value, self._d.IntDistribution(low, high, log=log))

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        value = math.exp(self.rng.uniform(math.log(low), math.log(high))) if log else self.rng.uniform(low, high)
        return self._keep(name, float(value), self._d.FloatDistribution(low, high, log=log))

    def suggest_categorical(self, name: str, choices: list) -> Any:
        value = choices[int(self.rng.integers(len(choices)))]
        return self._keep(name, value, self._d.CategoricalDistribution(choices))


def _luck(spec_id: str) -> float:
    return int(hashlib.sha256(spec_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def make_study(path: str | Path, name: str, n: int, space: str = "resnet", seed: int = 0, epochs: int = 5,
               as_workers: bool = False) -> float:
    """Write study `name` of n trials (all finished) into the journal file at path; return the seconds it took.

    By default each trial is one journal record (Optuna's add_trials); `as_workers` writes it as a worker does,
    one record per parameter and per user attribute, the curve once per epoch, then the state (~45 records a
    trial, so Optuna's load replays what it would for a real study)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState, create_trial

    from ..space import load_space
    from ..space.sampling import Rejected, suggest
    from .journal import SnapshotJournal
    from ..train.budget import Budget
    from .record import StudyInfo, TrialRecord, write_by_id, write_info

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    sp = load_space(space)
    context = {"dataset": "synthetic", "split_hash": "0" * 16, "device": "cpu:synthetic", "worker": 0,
               "versions": {"nasx": "synthetic", "torch": "-", "optuna": optuna.__version__, "python": "-"},
               "owner": "synthetic:0", "budget": {"epochs": epochs, "fraction": 1.0}, "seed": seed}
    first: dict[str, tuple[int, list[float]]] = {}  # spec id -> (first complete trial, its curve)
    trials, stored = [], []  # the frozen trials, and the user attributes each holds (a record's, no tags)
    for number in range(n):
        drawn = _DrawnTrial(rng)
        attrs: dict[str, Any]
        try:
            sample = suggest(sp, drawn)
        except Rejected as e:
            attrs = TrialRecord(number=number, state=TrialState.PRUNED.name, rejected=e.reason).to_attrs()
            stored.append(attrs)
            trials.append(create_trial(state=TrialState.PRUNED, params=drawn.params,
                                       distributions=drawn.distributions, user_attrs=attrs))
            continue
        spec, cx = sample.spec, sample.complexity
        final = min(0.97, 0.3 + 0.06 * math.log10(cx.flops) + 0.2 * _luck(spec.id) + rng.normal(0, 0.01))
        curve = [final * (1 - 0.5 ** e) / (1 - 0.5 ** epochs) for e in range(1, epochs + 1)]
        net = dict(spec=spec.to_dict(), spec_id=spec.id, description=spec.describe(), flops=cx.flops,
                   params=cx.params, acts=cx.acts, trained_spec_id=spec.id, **context)
        roll = rng.uniform()
        state, values = TrialState.COMPLETE, None
        if roll < 0.01:
            state, out = TrialState.FAIL, dict(curve=curve[:1], reason="nan", fail_reason="nan: synthetic")
        elif roll < 0.06:
            state, out = TrialState.PRUNED, dict(curve=curve[:2], epochs_run=2, reason="pruned",
                                                 prune_reason="synthetic: below the median at epoch 2")
        elif spec.id in first:
            source, curve = first[spec.id]
            out = dict(curve=curve, val_acc=curve[-1], epochs_run=epochs, reason="completed", duplicate_of=source)
            values = [curve[-1], float(cx.flops)]
        else:
            first[spec.id] = (number, curve)
            out = dict(curve=curve, val_acc=curve[-1], epochs_run=epochs, reason="completed")
            values = [curve[-1], float(cx.flops)]
        out.update(train_loss=[2.3 * (1 - c) for c in out["curve"]], wall_time=float(1e-7 * cx.flops),
                   images_per_s=float(1e11 / cx.flops))
        attrs = TrialRecord.of(number, state.name, **net, **out).to_attrs()
        stored.append(attrs)
        trials.append(create_trial(state=state, values=values, params=drawn.params,
                                   distributions=drawn.distributions, user_attrs=attrs))
    logs = _Logs()
    study = optuna.create_study(study_name=name, storage=JournalStorage(logs), directions=["maximize", "minimize"])
    budget = Budget(epochs, 1.0)
    info = StudyInfo(space=space, dataset="synthetic", budget=budget, objectives=("accuracy", "flops"), val_size=0.1,
                     seed=seed)
    write_info(study, info, {"space": space, "dataset": "synthetic", "budget": budget.to_dict(), "trials": n,
                             "seed": seed})
    if as_workers:
        storage, study_id = study._storage, study._study_id
        for t, attrs in zip(trials, stored):
            tid = storage.create_new_trial(study_id)
            for key, value in t.params.items():
                dist = t.distributions[key]
                storage.set_trial_param(tid, key, dist.to_internal_repr(value), dist)
            curve = attrs.get("curve", [])
            for epoch in range(1, len(curve)):
                write_by_id(storage, tid, curve=curve[:epoch])
            write_by_id(storage, tid, **attrs)
            storage.set_trial_state_values(tid, t.state, t.values)
    else:
        study.add_trials(trials)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    JournalFileBackend(str(path)).append_logs(logs.logs)
    if logs.snapshot is not None:  # saved as the worker that took it saves it: having read the records it holds
        backend = SnapshotJournal(str(path))
        for _ in zip(range(logs.records), backend.read_logs(0)):
            pass
        backend.save_snapshot(logs.snapshot)
    return time.perf_counter() - started
