"""What a study looks like now, read from its storage (so it covers every worker and machine)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

from ..stats import pareto_front
from .record import COMPLETE, FAIL, PRUNED, RUNNING, WAITING, TrialRecord, read_info

__all__ = ["Snapshot", "FrontPoint", "RunningTrial", "snapshot"]


class FrontPoint(NamedTuple):
    """A Pareto-optimal complete trial: accuracy up, FLOPs down."""

    number: int
    val_acc: float
    flops: int
    description: str


@dataclass(frozen=True)
class RunningTrial:
    """A trial being trained: where it is and, once it has run a while, when it should end."""

    number: int
    description: str
    epoch: int
    epochs: int
    step: int
    steps: int
    seconds: float  # since the trial's training started

    @property
    def eta(self) -> Optional[float]:
        """Seconds left, extrapolated from the steps done (None before the first steps)."""
        if self.step <= 0 or self.steps <= 0:
            return None
        return self.seconds * (self.steps - self.step) / self.step


@dataclass
class Snapshot:
    """Counts by state, the running trials and the current front."""

    complete: int = 0
    running: int = 0
    pruned: int = 0
    failed: int = 0
    waiting: int = 0
    rejected: int = 0  # structures the space could not fit in the band (pruned before training)
    front: list[FrontPoint] = field(default_factory=list)
    running_trials: list[RunningTrial] = field(default_factory=list)
    elapsed: float = 0.0
    study: str = ""
    rungs: tuple[int, ...] = ()  # a study with rungs: complete trials at each rung, lowest first (the front: the top's)
    continued: int = 0  # continue mode: promotions that trained on from their rung's checkpoint
    retrained: int = 0  # continue mode: promotions that retrained from scratch (no usable checkpoint; the record says why)
    lock_wait: float = 0.0  # seconds the journal's lock has been held by one holder (LockWatch); 0 when free

    @property
    def started(self) -> int:
        return self.complete + self.running + self.pruned + self.failed


def snapshot(study: Any, elapsed: float = 0.0) -> Snapshot:
    """Count the study's trials by state, read the running ones' progress, compute the accuracy-vs-FLOPs front
    (of the top rung's results in a study with rungs)."""
    snap = Snapshot(elapsed=elapsed, study=study.study_name)
    info = read_info(study)
    top = info.top_rung if info is not None else None
    done: list[TrialRecord] = []
    now = time.time()
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        snap.continued += rec.continued_from is not None
        snap.retrained += rec.retrain_reason is not None and rec.promoted_from is not None
        if rec.state == COMPLETE:
            snap.complete += 1
            done.append(rec)
        elif rec.state == RUNNING:
            snap.running += 1
            p = rec.progress or {}
            started = p.get("started")
            snap.running_trials.append(RunningTrial(
                rec.number, rec.description or "", int(p.get("epoch", 0)), int(p.get("epochs", 0)),
                int(p.get("step", 0)), int(p.get("steps", 0)),
                float(p.get("at", now) - started) if started is not None else 0.0))
        elif rec.state == PRUNED:
            if rec.rejected is not None:
                snap.rejected += 1
            else:
                snap.pruned += 1
        elif rec.state == FAIL:
            snap.failed += 1
        elif rec.state == WAITING:
            snap.waiting += 1
    if top is not None:
        snap.rungs = tuple(sum(1 for r in done if r.rung == k) for k in range(top + 1))
        done = [r for r in done if r.rung == top]
    points = [(r.values[0], r.values[1]) for r in done]
    for i in pareto_front(points, (True, False)) if points else []:
        r = done[i]
        snap.front.append(FrontPoint(r.number, float(r.values[0]), int(r.values[1]), r.description or ""))
    snap.front.sort(key=lambda p: p.flops)
    return snap
