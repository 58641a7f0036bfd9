"""Run (or resume) a study: check everything first, then one worker in this process or N worker processes;
fixed candidates (nasx edf, nasx ablate, zoo references) are queued trials of the same study."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..errors import NasxError
from ..net.spec import NetSpec
from . import record
from .journal import LockWatch
from .config import StudyConfig, check_memory, check_resolution, resolve, study_space
from .progress import Snapshot, snapshot
from .record import WAITING, TrialRecord
from .storage import is_rdb, open_storage, open_study, study_lock
from .worker import Worker, owner_id, reap_stale

__all__ = ["Candidate", "RunSummary", "enqueue", "prepare", "run_study"]


@dataclass(frozen=True)
class Candidate:
    """A net to train in a fixed study (nasx edf, nasx ablate): spec, seed and labels kept in its record."""

    spec: NetSpec
    seed: int = 0
    tags: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.spec.id}:{self.seed}"


def enqueue(study: Any, candidates: Sequence[Candidate]) -> int:
    """Queue the candidates the study has not seen yet (by spec id and seed); return how many were added."""
    seen = {TrialRecord.from_trial(t).candidate_key for t in study.get_trials(deepcopy=False)}
    added = 0
    for c in candidates:
        if c.key in seen:
            continue
        study.enqueue_trial({}, user_attrs=record.candidate_attrs(c.spec, c.key, c.seed, c.tags), skip_if_exists=False)
        seen.add(c.key)
        added += 1
    return added


@dataclass
class RunSummary:
    """What `run_study` did."""

    config: StudyConfig
    snapshot: Snapshot
    interrupted: bool
    notes: list[str]
    wall_time: float


def _uses_cuda(cfg: StudyConfig) -> tuple[bool, int]:
    import torch

    cuda = (torch.cuda.is_available() and cfg.device in ("auto", "cuda")) or cfg.device.startswith("cuda")
    return cuda, torch.cuda.device_count() if cuda else 0


def _memory(cfg: StudyConfig) -> int:
    """Bytes a study's trials can use at most: the machine's RAM, and its GPUs' memory where it trains on them."""
    from ..train.memory import machine_memory

    cuda, gpus = _uses_cuda(cfg)
    return machine_memory(tuple(range(gpus)) if cuda else ())


def prepare(cfg: StudyConfig, warn: Optional[Callable[[str], None]] = None) -> tuple[StudyConfig, list[str]]:
    """Check everything before any work (settings, space and band, data location, storage), then decode the data.

    Returns the resolved config and notes for the user."""
    import numpy as np

    from .. import data as nasx_data
    from ..space.sampling import sample

    cfg.check()
    cfg, notes = resolve(cfg, *_uses_cuda(cfg))
    space = None if cfg.fixed else study_space(cfg)
    nasx_data.locate(cfg.dataset, data_dir=cfg.data_dir, download=cfg.download)  # found (or downloadable)?
    storage = open_storage(cfg.storage_url, warn=warn)  # a bad URL or a damaged journal: before any decoding
    dataset = nasx_data.load(cfg.dataset, data_dir=cfg.data_dir, val_size=cfg.val_size, seed=cfg.seed,
                             download=cfg.download)  # also fills the decoded cache the workers read
    drawn = [] if space is None else [s.spec for s in sample(space.at(dataset.input), np.random.default_rng(cfg.seed),
                                                             1, flops=cfg.flops, params=cfg.params)]
    images = sum(len(x) for x in (dataset.train_x, dataset.val_x, dataset.test_x) if x is not None)
    for budget in {b.resolution: b for b in cfg.budgets}.values():  # a proxy side the space's nets collapse at
        check_resolution(dataclasses.replace(cfg, budget=budget), space, dataset.input)  # before any trial
        check_memory(dataclasses.replace(cfg, budget=budget), images, dataset.input, drawn, _memory(cfg))
    open_study(cfg, storage, space_hash=space.content_hash if space else None)
    return cfg, notes


def _check_queue(study: Any, name: str, keys: set[str]) -> None:
    """A fixed study resumed with other candidates than it queued (another template, another sample) would
    train both; that is another experiment: StudyError before any work."""
    from .config import StudyError

    foreign = {r.candidate_key for r in map(TrialRecord.from_trial, study.get_trials(deepcopy=False))
               if r.state == WAITING and r.candidate_key is not None} - keys
    if foreign:
        raise StudyError(f"study {name!r} holds {len(foreign)} queued net(s) that are not among these candidates "
                         f"(another plan?); use another name, or the same plan to resume it")


def _worker_process(cfg: StudyConfig, index: int, env: dict[str, str], deadline: Optional[float],
                    train_fn: Optional[Callable], optuna_verbosity: Optional[int] = None) -> None:
    """Entry point of a spawned worker process: Ctrl-C (SIGINT) marks its trial and ends it."""
    os.environ.update(env)
    if optuna_verbosity is not None:  # the starting process's choice (the CLI quiets Optuna's INFO lines)
        import optuna

        optuna.logging.set_verbosity(optuna_verbosity)
    if cfg.threads is not None:  # this process is nasx's own: its trials get the share of the cores chosen for them
        import torch

        torch.set_num_threads(cfg.threads)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        Worker(cfg, index, train_fn).run(deadline)
    except KeyboardInterrupt:
        pass
    except (NasxError, OSError) as e:  # this process's top level: one line as the CLI writes it, not a traceback
        reason = f"cannot write {e.filename} ({e.strerror})" if isinstance(e, OSError) and e.filename else str(e)
        sys.stderr.write(f"nasx: error: worker {index}: {reason}\n")
        sys.exit(1 if isinstance(e, OSError) else 2)


def run_study(cfg: StudyConfig, progress: Callable[[Snapshot], None] | None = None,
              train_fn: Optional[Callable] = None, poll: float = 1.0,
              candidates: Optional[Sequence[Candidate]] = None,
              on_note: Optional[Callable[[str], None]] = None, stop_grace: float = 8.0) -> RunSummary:
    """Run (or resume) a study: one worker in this process, or `workers` spawned processes.

    With `candidates`, the study trains exactly those (spec, seed) pairs it has not trained yet and
    samples nothing (resumable like any study; no pruning). A KeyboardInterrupt (Ctrl-C, or SIGTERM where
    the caller maps it so) stops the run: running trials are failed as `interrupted` and queued again, so
    the same call resumes them; worker processes get `stop_grace` seconds before they are killed."""
    start = time.time()
    if candidates is not None:
        cfg = dataclasses.replace(cfg, fixed=True, trials=max(1, len({c.key for c in candidates})), prune=False)
    cfg, notes = prepare(cfg, warn=on_note)
    for note in notes if on_note is not None else ():
        on_note(note)
    storage = open_storage(cfg.storage_url)
    study = open_study(cfg, storage)
    if candidates is not None:
        with study_lock(cfg.storage_url, cfg.name, {}):
            _check_queue(study, cfg.name, {c.key for c in candidates})
            enqueue(study, candidates)
    deadline = start + cfg.timeout if cfg.timeout else None
    interrupted = False

    watch = None if is_rdb(cfg.storage_url) else LockWatch(Path(cfg.storage_url))

    def show() -> Snapshot:
        snap = snapshot(study, time.time() - start)
        if watch is not None:
            snap.lock_wait = watch.probe()
        if progress is not None:
            progress(snap)
        return snap

    if cfg.workers == 1:
        stop = threading.Event()

        def monitor() -> None:
            while not stop.wait(poll):
                with contextlib.suppress(Exception):
                    show()

        watcher = threading.Thread(target=monitor, daemon=True, name="nasx-monitor")
        watcher.start()
        try:
            Worker(cfg, 0, train_fn, on_note=on_note).run(deadline)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            stop.set()
    else:
        interrupted = _run_processes(cfg, study, storage, deadline, train_fn, show, poll, stop_grace)
    snap = show()
    return RunSummary(config=cfg, snapshot=snap, interrupted=interrupted, notes=notes, wall_time=time.time() - start)


def _run_processes(cfg: StudyConfig, study: Any, storage: Any, deadline: Optional[float],
                   train_fn: Optional[Callable], show: Callable[[], Snapshot], poll: float, stop_grace: float) -> bool:
    """Start the worker processes and watch them; on KeyboardInterrupt end them (killing after `stop_grace`
    seconds, or at once on a second interrupt) and queue their running trials again. Returns interrupted?"""
    import multiprocessing as mp

    import optuna
    import torch

    gpus = list(range(torch.cuda.device_count())) if cfg.device in ("auto", "cuda") else []
    ctx = mp.get_context("spawn")
    procs = []
    for i in range(cfg.workers or 1):
        env = {"CUDA_VISIBLE_DEVICES": str(gpus[(i // cfg.per_gpu) % len(gpus)])} if gpus else {}
        p = ctx.Process(target=_worker_process, args=(cfg, i, env, deadline, train_fn, optuna.logging.get_verbosity()),
                        daemon=False)
        p.start()
        procs.append(p)
    try:
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(timeout=poll / len(procs))
            with contextlib.suppress(Exception):
                show()
        return False
    except KeyboardInterrupt:
        _stop(procs, stop_grace)
        owners = {owner_id(p.pid) for p in procs}
        with study_lock(cfg.storage_url, cfg.name, {}):
            reap_stale(study, storage, cfg.grace, owners=owners)  # trials of workers that could not mark them
        return True


def _stop(procs: list, grace: float) -> None:
    """SIGINT to each live worker, then SIGKILL after `grace` s (or at a second Ctrl-C)."""
    for p in procs:
        if p.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGINT)
    try:
        end = time.time() + grace
        for p in procs:
            p.join(timeout=max(0.0, end - time.time()))
    except KeyboardInterrupt:
        pass
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(timeout=5)
