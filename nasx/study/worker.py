"""One process's share of a study: under the study lock take a trial, propose its net and claim it (a net
that another trial holds, complete, running or queued, is drawn again); then train → record.

Each worker samples from its own stream of the study seed. Each running trial has a heartbeat thread
that stores its progress every few seconds and a heartbeat timestamp; the same thread (and every idle
worker, each time it looks for work) fails and re-queues other workers' trials whose worker ended on
this machine (a live one keeps its trial, however old its heartbeat), or, for a worker elsewhere, whose
heartbeat went silent past the grace (longer for a worker whose heartbeats came late), so a lost trial
comes back even while every worker is busy in a long trial. A worker whose trial was failed under it
stops it and writes nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..net.complexity import complexity
from ..net.fit import InputShape, fit
from ..net.spec import NetSpec
from ..train.budget import Budget, Ladder
from . import checkpoints, record
from .config import StudyConfig, StudyError, study_space
from .record import COMPLETE, FAIL, PRUNED, RUNNING, WAITING, Outcome, TrialRecord
from .rungs import next_promotion_ranked
from .storage import make_sampler, open_study, open_storage, study_lock

if TYPE_CHECKING:  # what the set-up holds, for type checkers (torch, Optuna and the data load on first use)
    import optuna
    import torch
    from optuna.storages import BaseStorage

    from ..data.dataset import Dataset
    from ..space import Space
    from ..train.trainer import TrainConfig

__all__ = ["Worker", "Heartbeat", "reap_stale", "requeue", "owner_id", "process_id", "process_ended", "Proposal",
           "REDRAWS"]

REDRAWS = 10  # draws a worker makes past nets other trials hold, before it waits for one of their results


def owner_id(pid: Optional[int] = None) -> str:
    """host:pid of a process, stored with the trials it trains."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


@lru_cache(maxsize=1)
def _this_host() -> Optional[str]:
    """boot id/pid namespace of this process: where a pid means one process (None off Linux)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, str]:
    """(state, start time in clock ticks after boot) of a live pid, from /proc; OSError if there is none."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()  # the command name in parentheses may hold spaces
    return fields[0], fields[19]


def process_id(pid: Optional[int] = None) -> Optional[str]:
    """boot id/pid namespace/pid/start time: one process, across reboots, containers and reused pids (None off Linux)."""
    host, pid = _this_host(), pid or os.getpid()
    try:
        return None if host is None else f"{host}/{pid}/{_stat(pid)[1]}"
    except (OSError, IndexError):
        return None


def process_ended(process: str) -> bool:
    """Whether the process `process_id` named is known to have ended: it ran here (same boot, same pid namespace)
    and its pid is gone, a zombie, or another process now; False when it ran elsewhere."""
    return _local_process(process) is False


def _local_process(process: str) -> Optional[bool]:
    """Whether the process `process_id` named lives (True) or has ended (False), when it ran on this machine (same
    boot, same pid namespace); None when it ran elsewhere (only its heartbeat tells then)."""
    host, _, rest = process.rpartition("/")
    host, _, pid = host.rpartition("/")
    if host != _this_host() or not pid.isdigit():
        return None
    try:
        state, started = _stat(int(pid))
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and started == rest


def _trial_id(study: Any, storage: Any, number: int) -> int:
    """The storage's id of trial `number` (Optuna's public storage API)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


def requeue(study: Any, storage: Any, rec: TrialRecord, fail_reason: str, max_retries: int = 2) -> bool:
    """Fail a RUNNING trial with `fail_reason` and queue the same net again (same choices, its attributes copied
    whole but for what the lost run wrote, see `TrialRecord.retry_attrs`); False if it finished meanwhile. A trial
    retried `max_retries` times already is failed and not queued again."""
    from optuna.trial import TrialState

    try:
        record.write_by_id(storage, _trial_id(study, storage, rec.number), fail_reason=fail_reason)
        study.tell(rec.number, state=TrialState.FAIL)
    except Exception:  # noqa: BLE001 - it finished (or was failed by another worker) meanwhile
        return False
    if (rec.retries or 0) < max_retries and (rec.candidate is not None or rec.choices):
        study.enqueue_trial(dict(rec.choices), user_attrs=rec.retry_attrs(), skip_if_exists=False)
    return True


GAP_FACTOR = 3.0  # a remote owner is lost once its heartbeat is older than this many times its longest gap so far


def reap_stale(study: Any, storage: Any, grace: float, max_retries: int = 2,
               owners: Optional[set[str]] = None) -> list[int]:
    """Fail RUNNING trials whose worker is gone and re-queue their nets; return their numbers. A worker on this
    machine is gone only when its process has ended (however old its heartbeat: a stopped or starved process keeps
    its trial); one elsewhere when its heartbeat is older than `grace` s, or GAP_FACTOR times the longest gap
    between its heartbeats so far if that is longer. With `owners`: the trials of those ended processes."""
    from optuna.trial import TrialState

    now = time.time()
    reaped = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        rec = TrialRecord.from_trial(t)
        here = _local_process(rec.process) if rec.process is not None else None
        if owners is not None:
            if rec.owner not in owners:
                continue
            reason = "interrupted"
        elif here is False:
            reason = f"lost: its worker {rec.owner} ended"
        elif here is True:
            continue
        else:
            last = rec.heartbeat
            if last is None and t.datetime_start is not None:
                last = t.datetime_start.timestamp()
            if last is None or now - last <= max(grace, GAP_FACTOR * (rec.heartbeat_gap or 0.0)):
                continue
            reason = f"lost: no heartbeat for {now - last:.0f} s"
        if requeue(study, storage, rec, reason, max_retries):
            reaped.append(rec.number)
    return reaped


class Heartbeat:
    """A daemon thread: stores the running trial's progress and heartbeat, and reaps other workers' lost trials."""

    def __init__(self, study: Any, storage: Any, interval: float, grace: float, lock: Callable[[], Any],
                 progress_every: float = 3.0):
        self.study, self.storage, self.interval, self.grace, self.lock = study, storage, interval, grace, lock
        self.progress_every = min(progress_every, interval)
        self.trial_id: Optional[int] = None
        self.progress: Optional[dict] = None
        self._written: Optional[dict] = None
        self._gap = interval  # the longest gap between this trial's heartbeats so far (stored when 1.5 x longer)
        self._last_beat = 0.0
        self._last_reap = time.time()
        self._wake = threading.Event()
        self._mutex = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="nasx-heartbeat")
        self._thread.start()

    def watch(self, trial_id: Optional[int]) -> None:
        with self._mutex:
            self.trial_id, self.progress, self._written = trial_id, None, None
            self._gap, self._last_beat = self.interval, 0.0
        if trial_id is not None:
            self._beat(trial_id, None)

    def report(self, progress: dict) -> None:
        """The trial's latest progress; stored by the thread at most every `progress_every` s."""
        with self._mutex:
            self.progress = progress

    def _beat(self, trial_id: int, progress: Optional[dict]) -> None:
        with contextlib.suppress(Exception):  # a finished trial refuses attributes; that is fine
            fields: dict[str, Any] = {}
            now = time.time()
            if now - self._last_beat >= self.interval or progress is None:
                fields["heartbeat"] = now
                if self._last_beat and now - self._last_beat > 1.5 * self._gap:  # a late beat: a loaded machine
                    self._gap = fields["heartbeat_gap"] = round(now - self._last_beat, 1)
                self._last_beat = now
            if progress is not None and progress != self._written:
                fields["progress"] = progress
                self._written = progress
            if fields:
                record.write_by_id(self.storage, trial_id, **fields)

    def _run(self) -> None:
        while not self._wake.wait(self.progress_every):
            with self._mutex:
                trial_id, progress = self.trial_id, self.progress
            if trial_id is not None:
                self._beat(trial_id, progress)
            if time.time() - self._last_reap >= self.interval:
                self._last_reap = time.time()
                with contextlib.suppress(Exception):  # the next beat tries again
                    with self.lock():
                        reap_stale(self.study, self.storage, self.grace)

    def close(self) -> None:
        self._wake.set()


class _TakenOver(Exception):
    """This worker's trial was failed under it (another worker judged it lost): its result must not be written."""


@dataclass(frozen=True)
class Proposal:
    """The net a trial will train, fitted to the dataset, with its analytic counts."""

    spec: NetSpec
    flops: int
    params: int
    acts: int


@dataclass
class _Context:
    """What a worker sets up once: storage, study, data on the device, space, budgets, record context."""

    storage: "BaseStorage"
    study: "optuna.Study"
    shape: InputShape  # the dataset's input: nets are fitted, counted and stored at it (the deployed net)
    datasets: dict[Optional[int], "Dataset"]  # what the trainer sees, by budget side (None: the data's own)
    space: Optional["Space"]  # the space at the data's input (None: a fixed list of nets)
    device: "torch.device"
    budget: Budget  # the study's budget (a study with rungs: its top rung's)
    ladder: Optional[Ladder]  # the study's rungs (None: every trial trains on `budget`)
    train_config: "TrainConfig"
    context: dict[str, Any]  # the record fields every trial of this worker stores (dataset, device, versions ...)
    heartbeat: Heartbeat

    def budget_at(self, rung: Optional[int]) -> Budget:
        """The budget of a rung (the study's budget when it has no rungs)."""
        return self.ladder.budgets[rung or 0] if self.ladder else self.budget

    def dataset(self, rung: Optional[int]) -> "Dataset":
        """The data a trial of `rung` trains on (resized to its budget's side where it names one)."""
        return self.datasets[self.budget_at(rung).resolution]


@dataclass(frozen=True)
class _Claim:
    """A trial this worker holds: its record (read once, with the net as stored), the net to train, or
    (`original` set) the trial whose result it waits for."""

    trial: Any
    record: TrialRecord
    proposal: Proposal
    original: Optional[int] = None

    @property
    def rung(self) -> Optional[int]:
        return self.record.rung


@dataclass
class Worker:
    """One process's share of a study: asks for trials under the study lock, trains, tells."""

    cfg: StudyConfig
    index: int = 0
    train_fn: Optional[Callable] = None  # a nasx.train.Trainer; default nasx.train.trainer.train
    on_event: Optional[Callable[[str], None]] = None
    on_note: Optional[Callable[[str], None]] = None  # what a user must see at once (a promotion that retrains)

    def run(self, deadline: Optional[float] = None) -> int:
        """Run trials until the study has `trials` complete ones (or max_trials started, or the deadline);
        return how many this worker finished."""
        cfg = self.cfg
        if cfg.trials is None or cfg.budget is None or not cfg.budget.whole or cfg.val_size is None:
            raise StudyError("a worker needs trials, a whole budget and val_size set (see nasx.study.resolve)")
        ctx = self._setup()
        engines: dict = {}
        finished = 0
        try:
            while deadline is None or time.time() < deadline:
                with study_lock(cfg.storage_url, cfg.name, engines):
                    claim, done = self._claim(ctx)
                if done:
                    if cfg.continuation and cfg.rungs:
                        checkpoints.remove_all(cfg.checkpoint_dir)
                    break
                if claim is None:  # the others' running trials may still complete the study: wait for them
                    time.sleep(min(2.0, cfg.heartbeat))
                    continue
                ctx.heartbeat.watch(_trial_id(ctx.study, ctx.storage, claim.trial.number))
                try:
                    self._run_claim(ctx, claim)
                finally:
                    ctx.heartbeat.watch(None)
                finished += 1
        finally:
            ctx.heartbeat.close()
        return finished

    # -- set-up and scheduling --------------------------------------------------------------------
    def _setup(self) -> _Context:
        from .. import data as nasx_data
        from ..train.trainer import TrainConfig, resolve_device

        cfg = self.cfg
        storage = open_storage(cfg.storage_url)
        space = None if cfg.fixed else study_space(cfg)
        study = open_study(cfg, storage, space.content_hash if space else None)
        engines: dict = {}
        with study_lock(cfg.storage_url, cfg.name, engines):
            number = record.take_worker_number(study)
        study.sampler = make_sampler(cfg.sampler, cfg.seed, number)  # its own stream: never another's proposals
        dataset = nasx_data.load(cfg.dataset, data_dir=cfg.data_dir, val_size=cfg.val_size, seed=cfg.seed,
                                 download=cfg.download)
        shape = dataset.input
        if space is not None:
            space = space.at(shape)
        device = resolve_device(cfg.device)
        datasets = {side: (dataset.resized(side) if side is not None else dataset).to(device)  # once per worker
                    for side in {b.resolution for b in cfg.budgets}}
        context = {"dataset": dataset.name, "device": record.device_name(device),
                   "versions": record.versions(), "worker": self.index, "owner": owner_id(), "process": process_id()}
        heartbeat = Heartbeat(study, storage, cfg.heartbeat, cfg.grace,
                              lambda: study_lock(cfg.storage_url, cfg.name, engines))
        return _Context(storage, study, shape, datasets, space, device, cfg.budgets[-1], cfg.rungs, TrainConfig(),
                        context, heartbeat)

    def _next_trial(self, ctx: _Context) -> tuple[Any, bool]:
        """(a new or queued trial or None to wait, whether the study is done); call under the study lock."""
        cfg = self.cfg
        reap_stale(ctx.study, ctx.storage, cfg.grace)
        records = [TrialRecord.from_trial(t) for t in ctx.study.get_trials(deepcopy=False)]
        states = [r.state for r in records]
        complete, running, waiting = states.count(COMPLETE), states.count(RUNNING), states.count(WAITING)
        # structures the space rejected (or other trials held) cost no training: they have their own, larger cap
        rejected = sum(1 for r in records if r.rejected is not None)
        started = len(records) - waiting - rejected
        max_trials = cfg.max_trials or 3 * cfg.trials + 10
        if started >= max_trials or rejected >= 20 * max_trials:
            return None, True
        if ctx.ladder:
            return self._next_rung_trial(ctx, records)
        if complete >= cfg.trials:
            return None, True
        if cfg.fixed:
            if not waiting:
                return None, not running  # every candidate has run (or is running elsewhere)
            return ctx.study.ask(), False
        if complete + running + waiting < cfg.trials or waiting:
            return ctx.study.ask(), False
        return None, False

    def _next_rung_trial(self, ctx: _Context, records: list[TrialRecord]) -> tuple[Any, bool]:
        """Under the study lock: a queued trial (a lost one's retry), else the promotion due next (queued and taken
        at once, so no other worker promotes that net again), else a new net at the lowest rung while fewer than
        `trials` were started there; else wait while trials run (one may make a promotion due), or end."""
        if any(r.state == WAITING for r in records):
            return ctx.study.ask(), False
        found = next_promotion_ranked(records, ctx.ladder, self.cfg.predict_promotions)
        if found is not None:
            due, basis = found
            attrs = record.candidate_attrs(due.net, f"{due.spec_id}:{due.seed}", due.seed, due.tags,
                                           rung=due.rung + 1, promoted_from=due.number, ranked_by=basis)
            ctx.study.enqueue_trial({}, user_attrs=attrs, skip_if_exists=False)
            return ctx.study.ask(), False
        lowest = sum(1 for r in records if r.rung == 0 and r.state in (COMPLETE, RUNNING, WAITING))
        if lowest < self.cfg.trials:
            return ctx.study.ask(), False
        return None, not any(r.state == RUNNING for r in records)

    def _claim(self, ctx: _Context) -> tuple[Optional[_Claim], bool]:
        """(the trial this worker trains or waits for, or None; whether the study is done); call under the study lock.

        A sampled net that another trial holds (complete, running or queued) is not trained twice: the trial is
        set aside as `rejected` and the sampler draws again, up to REDRAWS times; a net the sampler still insists
        on (or a queued one) takes the holder's result (`duplicate_of`), at once or when the holder ends."""
        from optuna.trial import TrialState

        while True:  # past structures the space rejects and nets whose result is there to copy, at no cost
            trial, done = self._next_trial(ctx)
            if trial is None:
                return None, done
            try:
                rec = self._record(ctx, trial)
                for draw in range(REDRAWS + 1):
                    proposal = self._propose(ctx, trial, rec)
                    if proposal is None:  # rejected by the space
                        break
                    holder = None if self.cfg.fixed or rec.promoted_from is not None else \
                        self._holder(ctx, trial, proposal.spec.id, rec.rung)
                    fresh = rec.retry_of is None  # a queued retry cannot be drawn again
                    if holder is None or not fresh or draw == REDRAWS:
                        break
                    record.write(trial, rejected=f"taken: the net of trial {holder.number} ({holder.state.lower()})")
                    self._tell(ctx, trial, state=TrialState.PRUNED)
                    trial = ctx.study.ask()
                    rec = self._record(ctx, trial)
                if proposal is None:
                    continue
                rec = self._record_net(ctx, trial, rec, proposal)
                if holder is None:
                    return _Claim(trial, rec, proposal), False
                record.write(trial, duplicate_of=holder.number)
                if holder.state != COMPLETE:
                    self._say(f"trial {trial.number}: same net as trial {holder.number}, waiting for its result")
                    return _Claim(trial, rec, proposal, holder.number), False
                self._take_result(ctx, trial, holder)
            except Exception as e:  # noqa: BLE001 - one broken trial must not end a long study
                self._fail(ctx, trial, e)

    def _holder(self, ctx: _Context, trial: Any, spec_id: str, rung: Optional[int]) -> Optional[TrialRecord]:
        """The trial of the same rung that holds net `spec_id`, following `duplicate_of`: a complete one, else one
        running or queued (a queued retry holds the net of the trial it retries); None if no other trial holds it."""
        records = {r.number: r for r in map(TrialRecord.from_trial, ctx.study.get_trials(deepcopy=False))
                   if r.rung == rung}

        def net(r: TrialRecord) -> Optional[str]:
            if r.state == WAITING and r.retry_of is not None and r.retry_of in records:
                return records[r.retry_of].spec_id
            return r.spec_id if r.state in (COMPLETE, RUNNING) else None

        holders = [r for r in records.values() if r.number != trial.number and net(r) == spec_id]
        if not holders:
            return None
        best = min(holders, key=lambda r: (r.state != COMPLETE, r.duplicate_of is not None, r.number))
        seen = {trial.number}
        while best.duplicate_of is not None and best.duplicate_of in records and best.number not in seen:
            seen.add(best.number)
            best = records[best.duplicate_of]
        return best if best.state in (COMPLETE, RUNNING, WAITING) else None  # else its retry trains it

    # -- one trial: train (or wait for the holder of its net) -> record ---------------------------
    def _run_claim(self, ctx: _Context, claim: _Claim) -> None:
        trial = claim.trial
        try:
            if claim.original is not None:
                self._wait_for(ctx, trial, claim.original)
                return
            result, prune_reason = self._train(ctx, trial, claim.proposal, claim.record.seed, claim.rung, claim.record)
            self._check_held(ctx, trial)
            continued = self.cfg.continuation and ctx.ladder
            if continued:  # before the result is told: a promotion of this net finds its checkpoint
                self._keep_checkpoint(trial, result, claim.rung, ctx.ladder.top)
            self._record_result(ctx, trial, claim.proposal, result, prune_reason, claim.rung)
            if continued:
                records = [TrialRecord.from_trial(t) for t in ctx.study.get_trials(deepcopy=False)]
                checkpoints.prune(self.cfg.checkpoint_dir, records, ctx.ladder, self.cfg.trials,
                                  self.cfg.predict_promotions)
        except _TakenOver as e:
            self._say(f"trial {trial.number}: {e}; this worker stops it and writes nothing")
        except KeyboardInterrupt:
            with contextlib.suppress(Exception):
                requeue(ctx.study, ctx.storage, claim.record, "interrupted")
            raise
        except Exception as e:  # noqa: BLE001 - one broken trial must not end a long study
            self._fail(ctx, trial, e)

    @staticmethod
    def _check_held(ctx: _Context, trial: Any) -> None:
        """_TakenOver if the trial is no longer RUNNING in the storage (failed under this worker as lost)."""
        stored = TrialRecord.from_trial(ctx.storage.get_trial(_trial_id(ctx.study, ctx.storage, trial.number)))
        if stored.state != RUNNING:
            state = {FAIL: "failed", COMPLETE: "completed"}.get(stored.state, stored.state.lower())
            raise _TakenOver(f"{state} meanwhile ({stored.outcome.fail_reason or 'by another worker'})")

    def _fail(self, ctx: _Context, trial: Any, e: Exception) -> None:
        from optuna.trial import TrialState

        with contextlib.suppress(Exception):
            record.write(trial, fail_reason=f"error: {type(e).__name__}: {e}"[:500])
        self._tell(ctx, trial, state=TrialState.FAIL)
        self._say(f"trial {trial.number}: failed ({type(e).__name__}: {e})")

    def _wait_for(self, ctx: _Context, trial: Any, number: int) -> None:
        """Wait until trial `number` (the same net) ends, reaping lost trials meanwhile, then take its result."""
        cfg = self.cfg
        original_id = _trial_id(ctx.study, ctx.storage, number)
        while True:
            original = TrialRecord.from_trial(ctx.storage.get_trial(original_id))
            if original.state not in (RUNNING, WAITING):
                break
            time.sleep(min(2.0, cfg.heartbeat))
            with study_lock(cfg.storage_url, cfg.name, {}):
                reap_stale(ctx.study, ctx.storage, cfg.grace)
        self._take_result(ctx, trial, original)

    def _take_result(self, ctx: _Context, trial: Any, original: TrialRecord) -> None:
        """End `trial` as its net's trial `original` ended: its curve and values, or its state and reason
        (a lost original's retry trains the net again)."""
        from optuna.trial import TrialState

        outcome = original.outcome
        if outcome.fail_reason:
            outcome = replace(outcome, fail_reason=f"as trial {original.number}: {outcome.fail_reason}")
        record.write_outcome(trial, outcome, duplicate_of=original.number)
        if original.state == COMPLETE:
            self._tell(ctx, trial, values=list(original.values))
        else:
            self._tell(ctx, trial, state=TrialState.PRUNED if original.state == PRUNED else TrialState.FAIL)
        self._say(f"trial {trial.number}: same net as trial {original.number}, its result reused")

    def _propose(self, ctx: _Context, trial: Any, rec: TrialRecord) -> Optional[Proposal]:
        """The net to train: the queued candidate, or one the space suggests inside the band (None: rejected)."""
        from optuna.trial import TrialState

        from ..space.sampling import Rejected, suggest

        if rec.candidate is not None:
            spec = fit(NetSpec.from_dict(dict(rec.candidate)), ctx.shape)
        else:
            try:
                spec = fit(suggest(ctx.space, trial, flops=self.cfg.flops, params=self.cfg.params).spec, ctx.shape)
            except Rejected as e:
                record.write(trial, rejected=e.reason)
                self._tell(ctx, trial, state=TrialState.PRUNED)
                return None
        cx = complexity(spec)
        return Proposal(spec, cx.flops, cx.params, cx.acts)

    def _record_net(self, ctx: _Context, trial: Any, rec: TrialRecord, p: Proposal) -> TrialRecord:
        """Store the net, its seed (a candidate's own, else the study's) and the training context; return the record
        as now stored (with the choices the sampler made meanwhile)."""
        fields = dict(spec=p.spec.to_dict(), spec_id=p.spec.id, description=p.spec.describe(), flops=p.flops,
                      params=p.params, acts=p.acts, seed=rec.seed if rec.seed is not None else self.cfg.seed,
                      **ctx.context, budget=ctx.budget_at(rec.rung).to_dict(), rung=rec.rung,
                      split_hash=ctx.dataset(rec.rung).split_hash)  # the split as trained (@side at a proxy side)
        record.write(trial, **fields)
        return replace(rec, choices=dict(trial.params), **fields)

    def _continuation(self, ctx: _Context, trial: Any, rec: Optional[TrialRecord]) -> Any:
        """Continue mode: the trainer's Continuation, from the checkpoint of the trial this one was promoted from
        where it is reachable and checks out; else from scratch, and the record and the display say why."""
        from ..train.trainer import Continuation

        state, why = None, None
        if rec is not None and rec.promoted_from is not None:
            source = TrialRecord.from_trial(ctx.storage.get_trial(_trial_id(ctx.study, ctx.storage,
                                                                            rec.promoted_from)))
            state, why = checkpoints.load(self.cfg.checkpoint_dir, source.checkpoint)
            if state is not None:
                record.write(trial, continued_from=rec.promoted_from)
                self._say(f"trial {trial.number}: trains on from trial {rec.promoted_from}'s checkpoint "
                          f"(step {state['step']})")
            else:
                self._retrains(trial, why)
        return Continuation(ctx.ladder.budgets[-1], state=state)

    def _retrains(self, trial: Any, why: str) -> None:
        record.write(trial, retrain_reason=why, continued_from=None)
        self._note(f"trial {trial.number}: retrains from scratch: {why}")

    def _keep_checkpoint(self, trial: Any, result: Any, rung: Optional[int], top: int) -> None:
        """Continue mode, before the result is told: save a completed lower rung's pre-decay state (within the
        cap) and store where it is, or why none was kept."""
        cfg = self.cfg
        if result.reason != "completed" or rung is None or rung >= top or result.pre_decay is None:
            return
        try:
            ref, why = checkpoints.save(cfg.checkpoint_dir, trial.number, result.pre_decay, cfg.checkpoint_cap)
        except OSError as e:  # a full or read-only disk: the result stands, a promotion retrains
            ref, why = None, f"no checkpoint kept: {e.strerror or e}"
        record.write(trial, **({"checkpoint": ref} if ref else {}))
        if why:
            self._note(f"trial {trial.number}: {why}; a promotion of its net retrains")

    def _train(self, ctx: _Context, trial: Any, p: Proposal, seed: int, rung: Optional[int],
               rec: Optional[TrialRecord] = None):
        """Train the proposal on the budget, storing the curve each epoch and pruning by the rule (continue mode:
        from its rung's checkpoint, see `_continuation`); return the trainer's result and the rule's verdict (None
        if it did not prune)."""
        from optuna.trial import TrialState

        from ..train.trainer import CheckpointMismatch, train

        rule = None if self.cfg.fixed else self.cfg.prune_rule  # a pruned candidate would bias an EDF or ablation
        curve: list[float] = []
        verdict: list[str] = []
        started = time.time()
        budget = ctx.budget_at(rung)

        def on_epoch(report) -> bool:
            self._check_held(ctx, trial)  # a trial failed under this worker: stop training it now
            curve.append(report.val_acc)
            record.write(trial, curve=tuple(curve))
            if rule is None:
                return False
            peers = []
            for t in ctx.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                peer = TrialRecord.from_trial(t)
                if peer.duplicate_of is None:  # a net counts once, however often it was drawn
                    peers.append((peer.flops if peer.flops is not None else math.inf, list(peer.outcome.curve)))
            reason = rule.check(report.epoch, report.epochs, report.val_acc, p.flops, peers)
            if reason:
                verdict.append(reason)
            return bool(reason)

        def on_progress(what: str, step: int, steps: int) -> None:
            if what == "train" and steps:
                epochs = budget.epochs
                ctx.heartbeat.report({"epoch": min(epochs, 1 + (step - 1) * epochs // steps), "epochs": epochs,
                                      "step": step, "steps": steps, "started": started, "at": time.time()})

        train_fn = self.train_fn or train
        if not (self.cfg.continuation and ctx.ladder):
            result = train_fn(p.spec, ctx.dataset(rung), budget, ctx.device, seed, on_epoch, config=ctx.train_config,
                              test=self.cfg.test, progress=on_progress)
            return result, (verdict[-1] if verdict else None)
        cont = self._continuation(ctx, trial, rec)
        try:
            result = train_fn(p.spec, ctx.dataset(rung), budget, ctx.device, seed, on_epoch, config=ctx.train_config,
                              test=self.cfg.test, progress=on_progress, continuation=cont)
        except CheckpointMismatch as e:  # a checkpoint that is not this net's: retrain, and say so
            self._retrains(trial, f"checkpoint of trial {rec.promoted_from if rec else None}: {e}")
            curve.clear()
            result = train_fn(p.spec, ctx.dataset(rung), budget, ctx.device, seed, on_epoch, config=ctx.train_config,
                              test=self.cfg.test, progress=on_progress, continuation=replace(cont, state=None))
        return result, (verdict[-1] if verdict else None)

    def _record_result(self, ctx: _Context, trial: Any, p: Proposal, result: Any,
                       prune_reason: Optional[str], rung: Optional[int]) -> None:
        """Store what training gave (one Outcome) and tell the study: complete, pruned or failed."""
        from optuna.trial import TrialState

        trained = fit(p.spec, ctx.dataset(rung).input)  # the stored net, or its proxy at a lower resolution
        if result.spec_id != trained.id:
            raise StudyError(f"trial {trial.number}: the trainer built net {result.spec_id}, not the stored "
                             f"{trained.id}")
        failed = result.reason not in ("completed", "pruned")  # nan, oom: this net failed; the study goes on
        record.write_outcome(trial, Outcome(
            curve=tuple(result.val_acc), train_loss=tuple(result.train_loss), val_acc=result.final_val_acc,
            test_acc=result.test_acc, wall_time=result.wall_time, images_per_s=result.images_per_s,
            epochs_run=result.epochs_done, reason=result.reason, peak_memory_bytes=result.peak_memory_bytes,
            trained_spec_id=result.spec_id, prune_reason=prune_reason,
            fail_reason=result.reason + (f": {result.error}" if result.error else "") if failed else None))
        if result.reason == "completed":
            values = {"accuracy": result.final_val_acc, "flops": p.flops, "throughput": result.images_per_s}
            self._tell(ctx, trial, values=[values[o] for o in self.cfg.objectives])
        elif result.reason == "pruned":
            self._tell(ctx, trial, state=TrialState.PRUNED)
        else:
            self._tell(ctx, trial, state=TrialState.FAIL)
        self._say(f"trial {trial.number}: {result.reason}")

    @staticmethod
    def _record(ctx: _Context, trial: Any) -> TrialRecord:
        """The trial's record as stored now (in a study with rungs, a trial not promoted is at the lowest rung)."""
        rec = TrialRecord.from_trial(ctx.storage.get_trial(_trial_id(ctx.study, ctx.storage, trial.number)))
        return replace(rec, rung=0) if ctx.ladder and rec.rung is None else rec

    @staticmethod
    def _tell(ctx: _Context, trial: Any, state: Any = None, values: Any = None) -> None:
        try:
            ctx.study.tell(trial, values, state=state) if state is not None else ctx.study.tell(trial, values)
        except (ValueError, RuntimeError):  # failed meanwhile by another worker as stale: keep its verdict
            pass

    def _say(self, message: str) -> None:
        if self.on_event is not None:
            self.on_event(message)

    def _note(self, message: str) -> None:
        """Said, and also noted to the user (a stored record says it too, for workers in other processes)."""
        self._say(message)
        if self.on_note is not None:
            self.on_note(message)
