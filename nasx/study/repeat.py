"""A noise-aware front: the nets on a study's front at its top budget, and those within seed noise of it, trained
again under K more seeds in a companion study `<study>-repeats` (fixed candidates, same storage, split and budget).

Which nets (the rule): phase 1, the study's front, non-dominated in (validation accuracy up, FLOPs down) among its
complete nets at the top budget (the top rung's records in a study with rungs). Phase 2, once phase 1 has run:
sigma is the pooled seed standard deviation of the nets repeated in phase 1 (each net's sample variance, ddof 1,
pooled over nets), and every other net whose accuracy is at least the front's accuracy at its FLOPs (the best
seed-mean accuracy among front nets with at most its FLOPs) minus 2 sigma is repeated too. A net first trained with
seed s is repeated with seeds s+1 ... s+K, one trial per (net, seed), tagged with the trial it repeats; a second
call trains only what is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

from ..errors import NasxError
from ..net.spec import NetSpec
from ..stats.noise import front_accuracy_at, pooled_std
from ..stats.pareto import pareto_mask
from ..train.budget import Budget
from .config import StudyConfig
from .progress import Snapshot
from .record import COMPLETE, FAIL, PRUNED, Shelf, StudyInfo, TrialRecord
from .run import Candidate, RunSummary
from .store import StoredStudy, open_study

__all__ = ["RepeatError", "StudyNet", "RepeatRun", "SUFFIX", "MARGIN", "repeats_name", "study_nets", "top_budget",
           "front_nets", "seed_values", "near_front", "repeat_candidates", "repeats_config", "repeat"]

SUFFIX = "-repeats"
MARGIN = 2.0  # phase 2 repeats the nets within MARGIN pooled seed standard deviations of the front
TAG = "repeat_of"  # the trial of the study a repeat trains again
PHASE = "repeat_phase"  # 1: on the front; 2: within seed noise of it
_FINAL = (COMPLETE, PRUNED, FAIL)
# settings the companion takes from the study: the data, its split (the study seed), the space and objectives, and
# how to run; not the search's (sampler, trials, band, pruning, rungs), which a fixed study of candidates has not
_KEEP = ("space", "dataset", "data_dir", "download", "val_size", "seed", "objectives", "corner", "test", "per_gpu",
         "heartbeat", "grace")


class RepeatError(NasxError, ValueError):
    """A repeat that cannot run (bad K, a study with nothing to repeat), said in one line."""


@dataclass(frozen=True)
class StudyNet:
    """A net of the study at its top budget: the trial that trained it, its seed, FLOPs and accuracy."""

    number: int
    spec_id: str
    description: str
    flops: int
    seed: int
    val_acc: float
    spec: Mapping[str, Any] = field(repr=False, default_factory=dict)


def repeats_name(study: str) -> str:
    """The companion study that holds a study's repeats."""
    return f"{study}{SUFFIX}"


def top_budget(info: StudyInfo) -> Budget:
    """The study's top budget: its top rung's proxy, or (no rungs) the proxy it trained on."""
    budget = info.top_budget
    if budget is None:
        raise RepeatError("the study stores no proxy budget (made by an early nasx?): cannot repeat it")
    return budget


def study_nets(study: StoredStudy) -> list[StudyNet]:
    """The complete, non-duplicate nets of the study at its top budget (top-rung records only where it has rungs),
    in trial order."""
    return [StudyNet(r.number, r.spec_id, r.description or "", int(r.flops), int(r.seed or 0),
                     float(r.outcome.val_acc), r.spec)
            for r in study.results(top=True) if r.outcome.val_acc is not None]


def front_nets(nets: Sequence[StudyNet]) -> list[StudyNet]:
    """Phase 1: the nets non-dominated in (validation accuracy up, FLOPs down) (ties all kept)."""
    mask = pareto_mask([(n.val_acc, float(n.flops)) for n in nets], (True, False))
    return [n for n, m in zip(nets, mask) if m]


def seed_values(nets: Sequence[StudyNet], repeats: Sequence[TrialRecord]) -> dict[int, list[tuple[int, float]]]:
    """Each net's (seed, validation accuracy) pairs: its own run, then its complete repeats, by seed."""
    out = {n.number: [(n.seed, n.val_acc)] for n in nets}
    ids = {n.number: n.spec_id for n in nets}
    for r in repeats:
        of = r.tags.get(TAG)
        if r.state == COMPLETE and r.outcome.val_acc is not None and of in out and r.spec_id == ids[of]:
            out[of].append((int(r.seed), float(r.outcome.val_acc)))
    return {k: sorted(v) for k, v in out.items()}


def near_front(nets: Sequence[StudyNet], front: Sequence[StudyNet], values: Mapping[int, Sequence[tuple[int, float]]],
               margin: float = MARGIN) -> tuple[float, list[StudyNet]]:
    """Phase 2: (sigma, nets): sigma the pooled seed std of the front's repeated nets, and the nets off the front
    whose accuracy is at least the front's at their FLOPs (best seed-mean accuracy among front nets with at most
    their FLOPs) minus margin x sigma. No net when no front net has two results yet (sigma NaN)."""
    groups = [[acc for _, acc in values[n.number]] for n in front]
    sigma = pooled_std(groups)
    if math.isnan(sigma):
        return sigma, []
    on_front = {n.number for n in front}
    front_flops = [float(n.flops) for n in front]
    front_mean = [sum(g) / len(g) for g in groups]
    near = [n for n in nets if n.number not in on_front
            and n.val_acc >= front_accuracy_at(float(n.flops), front_flops, front_mean) - margin * sigma]
    return sigma, near


def repeat_candidates(nets: Sequence[StudyNet], k: int, phase: int) -> list[Candidate]:
    """Seeds s+1 ... s+k of each net (s: the seed it was trained with), tagged with its trial and the phase."""
    return [Candidate(NetSpec.from_dict(dict(n.spec)), seed=n.seed + i, tags={TAG: n.number, PHASE: phase})
            for n in nets for i in range(1, k + 1)]


def repeats_config(study: str, settings: Mapping[str, Any], info: StudyInfo, url: str, **run: Any) -> StudyConfig:
    """The companion of `study`, stored at `url` with these settings (its own or its stored ones): same
    storage, data, split and seed, trained at the study's top budget; fixed candidates, no pruning. `run` sets how
    to run it (device, workers, threads)."""
    kept = {k: settings[k] for k in _KEEP if settings.get(k) is not None}
    if "objectives" in kept:
        kept["objectives"] = tuple(kept["objectives"])
    # its batch: the stored budget's (settings stored before the budget was one key hold batch_size beside it)
    batch = (settings.get("budget") or {}).get("batch_size", settings.get("batch_size"))
    cfg = StudyConfig(**kept, **{k: v for k, v in run.items() if v is not None}, study=repeats_name(study),
                      storage=url, fixed=True, prune=False, sampler="random",
                      budget=top_budget(info).filled(batch_size=batch))
    return cfg.check()


@dataclass
class RepeatRun:
    """What `repeat` did: the nets of each phase, sigma, the companion's runs and whether it was interrupted."""

    study: str
    companion: str
    k: int
    front: list[StudyNet]
    near: list[StudyNet]
    sigma: float
    runs: list[RunSummary]
    interrupted: bool


def _finished(candidates: Sequence[Candidate], records: Sequence[TrialRecord]) -> bool:
    done = {r.candidate_key for r in records if r.state in _FINAL}
    return all(c.key in done for c in candidates)


def _companion_records(url: str, name: str) -> list[TrialRecord]:
    """The records of the companion study `name` at `url` (none before its first run)."""
    from .config import StudyError

    try:
        return list(open_study(name, url).records)
    except StudyError:
        return []


def repeat(study: str, k: int, *, shelf: Shelf = Shelf(), settings: Optional[Mapping[str, Any]] = None,
           device: Optional[str] = None, workers: Optional[int] = None,
           threads: Optional[int] = None, progress: Optional[Callable[[Snapshot], None]] = None,
           on_note: Optional[Callable[[str], None]] = None, train_fn: Optional[Callable] = None) -> RepeatRun:
    """Train the study's front (phase 1), then the nets within seed noise of it (phase 2), under k more seeds each in
    the companion study; resumable. `settings`: the study's (default: those stored with it)."""
    from .run import run_study

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise RepeatError(f"--repeats {k!r}: must be a whole number >= 1")
    url = shelf.url(study)
    main = open_study(study, url)
    info = main.info
    if info is None:
        raise RepeatError(f"study {study!r} was not made by nasx: nothing to repeat")
    nets = study_nets(main)
    if not nets:
        raise RepeatError(f"study {study!r} has no complete trial{' at its top rung' if info.rungs else ''} to repeat")
    cfg = repeats_config(study, settings or main.config, info, url, device=device,
                         workers=workers, threads=threads)
    front = front_nets(nets)
    first = repeat_candidates(front, k, 1)
    runs: list[RunSummary] = []
    if not _finished(first, _companion_records(url, cfg.name)):
        if on_note is not None:
            on_note(f"repeating the {len(front)} net(s) of the front of {study!r} under {k} more seed(s) "
                    f"({cfg.budget.name}) in {cfg.name!r}")
        runs.append(run_study(cfg, progress=progress, candidates=first, on_note=on_note, train_fn=train_fn))
        if runs[-1].interrupted:
            return RepeatRun(study, cfg.name, k, front, [], math.nan, runs, True)
    sigma, near = near_front(nets, front, seed_values(nets, _companion_records(url, cfg.name)))
    second = first + repeat_candidates(near, k, 2)
    if near and not _finished(second, _companion_records(url, cfg.name)):
        if on_note is not None:
            on_note(f"pooled seed std of the front: {100 * sigma:.2f} points; repeating the {len(near)} net(s) "
                    f"within {MARGIN:g} sigma of it too")
        runs.append(run_study(cfg, progress=progress, candidates=second, on_note=on_note, train_fn=train_fn))
    return RepeatRun(study, cfg.name, k, front, near, sigma, runs, any(r.interrupted for r in runs))
