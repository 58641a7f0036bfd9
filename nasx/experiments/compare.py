"""Compare the fronts two or more stored studies found: retrain every front net under new seeds in one fixed companion
study at the first study's top budget (test split evaluated), score each front by the hypervolume of its nets' test
errors under each seed and of their seed means, and give each later study's difference from the first, paired by
seed, with its Student t interval and a verdict that says whether the difference is beyond the seed spread.

The fronts are what each study reports (a study with rungs: its top rung's, `StoredStudy.front`). The companion is
resumable and keyed by (net, seed): a net on two fronts trains once a seed, and a second call with every (net, seed)
finished trains nothing and writes nothing to it (the page re-renders from the journals). Hypervolume:
`nasx.stats.pareto.hypervolume` of (test error, FLOPs) against (chance error, 1.1 x the band's top), FLOPs normalized
in log over the first study's band (else the fronts' extremes). docs/rungs.md shows a run and the interval's
measured coverage.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..errors import NasxError
from ..net.spec import NetSpec
from ..stats.intervals import PairedComparison, paired_comparison
from ..stats.pareto import hypervolume
from ..study.config import StudyConfig, StudyError
from ..study.record import COMPLETE, FAIL, PRUNED, Shelf, TrialRecord
from ..study.run import Candidate
from ..study.store import StoredStudy, open_study

__all__ = ["CompareError", "FrontNet", "Front", "Difference", "Comparison", "LEVEL", "TAG", "hv_difference",
           "retrain_name", "retrain_config", "compare"]

LEVEL = 0.95  # the difference's interval
TAG = "compare"  # the tag of a retraining in the companion study
_FINAL = (COMPLETE, PRUNED, FAIL)


class CompareError(NasxError, ValueError):
    """A comparison that cannot be made (fewer than two studies, a study with no front, a failed retraining)."""


@dataclass(frozen=True)
class FrontNet:
    """A net of a front: the trial that found it, its FLOPs, its search accuracy and its retrained test accuracy
    under each seed (in the comparison's seed order)."""

    trial: int
    spec_id: str
    description: str
    flops: int
    search_val_acc: Optional[float]
    test_acc: tuple[float, ...]


@dataclass(frozen=True)
class Front:
    """One study's front, retrained: its nets and what the search spent (top-budget results, device-seconds)."""

    study: str
    nets: tuple[FrontNet, ...]
    top_results: int = 0
    compute_s: float = 0.0
    rungs: tuple[str, ...] = ()
    eta: Optional[int] = None

    def hv_per_seed(self, band: tuple[float, float], chance: float) -> tuple[float, ...]:
        """The hypervolume of the front's test errors under each retraining seed."""
        seeds = len(self.nets[0].test_acc) if self.nets else 0
        return tuple(hypervolume([(1 - n.test_acc[k], n.flops) for n in self.nets], band, chance) for k in range(seeds))

    def hv_of_mean(self, band: tuple[float, float], chance: float) -> float:
        """The hypervolume of the front's seed-mean test errors."""
        return hypervolume([(1 - statistics.fmean(n.test_acc), n.flops) for n in self.nets], band, chance)


@dataclass(frozen=True)
class Difference:
    """second minus first: the hypervolume difference under each retraining seed and its paired t interval."""

    first: str
    second: str
    per_seed: tuple[float, ...]
    test: PairedComparison

    @property
    def verdict(self) -> str:
        """'higher' or 'lower beyond the seed spread' when the interval excludes 0, else 'no difference shown'."""
        t = self.test
        if not t.significant:
            why = "one seed: no interval" if t.n < 2 else f"the {t.level:.0%} interval holds 0" if t.low == t.low \
                else "the same difference under every seed: no spread to judge it by"
            return f"no difference shown ({why})"
        return f"{'higher' if t.mean_diff > 0 else 'lower'} beyond the seed spread"

    def text(self) -> str:
        """One line: the per-seed differences, their mean with its interval, and the verdict."""
        t = self.test
        interval = f", {t.level:.0%} interval {t.low:+.4f} .. {t.high:+.4f} (t, {t.n - 1} df)" if t.low == t.low \
            else ""
        return (f"HV difference ({self.second} - {self.first}) per retraining seed: "
                f"{', '.join(f'{d:+.4f}' for d in self.per_seed)}; mean {t.mean_diff:+.4f}{interval}: {self.verdict}")


def hv_difference(first: Front, second: Front, band: tuple[float, float], chance: float,
                  level: float = LEVEL) -> Difference:
    """second's hypervolume minus first's under each seed, and their mean's paired Student t interval
    (`nasx.stats.paired_comparison`, n - 1 degrees of freedom)."""
    a, b = second.hv_per_seed(band, chance), first.hv_per_seed(band, chance)
    return Difference(first.study, second.study, tuple(x - y for x, y in zip(a, b)), paired_comparison(a, b, level))


@dataclass(frozen=True)
class Comparison:
    """The retrained fronts of the studies (the first is the baseline), scored on one band and chance error."""

    seeds: tuple[int, ...]
    band: tuple[int, int]
    chance: float
    fronts: tuple[Front, ...]
    retrain: str  # the companion study that holds the retrainings
    trained: int = 0  # retrainings this call ran (0: every one was stored already)
    level: float = LEVEL

    def differences(self) -> list[Difference]:
        """Each later study's difference from the first."""
        return [hv_difference(self.fronts[0], f, self.band, self.chance, self.level) for f in self.fronts[1:]]

    def to_dict(self) -> dict[str, Any]:
        """compare.json: the settings, each front with its nets and hypervolumes, and the differences."""
        return dict(
            seeds=list(self.seeds), band=list(self.band), reference_point=[self.chance, 1.1], retrain=self.retrain,
            studies=[dict(study=f.study, rungs=list(f.rungs), eta=f.eta, top_results=f.top_results,
                          compute_s=f.compute_s, hv_per_seed=list(f.hv_per_seed(self.band, self.chance)),
                          hv_of_mean=f.hv_of_mean(self.band, self.chance),
                          front=[dict(trial=n.trial, spec_id=n.spec_id, description=n.description, flops=n.flops,
                                      search_val_acc=n.search_val_acc,
                                      test_acc={str(s): a for s, a in zip(self.seeds, n.test_acc)}) for n in f.nets])
                     for f in self.fronts],
            differences=[dict(first=d.first, second=d.second, per_seed=list(d.per_seed), mean=d.test.mean_diff,
                              low=_finite(d.test.low), high=_finite(d.test.high), level=d.test.level,
                              verdict=d.verdict) for d in self.differences()])

    def markdown(self) -> str:
        """compare.md: a row per study (hypervolume of the seed means and per seed), the differences with their
        intervals, then each front's nets."""
        lines = ["| study | top-budget results | compute spent (device-s) | front nets | HV of mean test acc | "
                 "HV per retraining seed |", "|---|---:|---:|---:|---:|---|"]
        for f in self.fronts:
            lines.append(f"| {f.study} | {f.top_results} | {f.compute_s:,.0f} | {len(f.nets)} | "
                         f"{f.hv_of_mean(self.band, self.chance):.4f} | "
                         + ", ".join(f"{h:.4f}" for h in f.hv_per_seed(self.band, self.chance)) + " |")
        lines.append("")
        lines += [d.text() for d in self.differences()]
        for f in self.fronts:
            lines += ["", f"Front of {f.study} (retrained test accuracy per seed {', '.join(map(str, self.seeds))}):",
                      "", "| trial | FLOPs | search val acc | test acc per seed | net |", "|---:|---:|---:|---|---|"]
            for n in f.nets:
                search = f"{n.search_val_acc:.2%}" if n.search_val_acc is not None else "-"
                lines.append(f"| {n.trial} | {n.flops:,} | {search} | "
                             + ", ".join(f"{a:.2%}" for a in n.test_acc) + f" | {n.description} |")
        return "\n".join(lines) + "\n"

    def write(self, out: str | Path) -> Path:
        """Write compare.md and compare.json into the folder `out`; returns compare.md."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        page = out / "compare.md"
        page.write_text(self.markdown())
        return page


def _finite(x: float) -> Optional[float]:
    return x if math.isfinite(x) else None


def retrain_name(studies: Sequence[str]) -> str:
    """The default companion study of a comparison: `<first study>-retrain`."""
    return f"{studies[0]}-retrain"


def retrain_config(first: StoredStudy, name: str, url: str, *, device: Optional[str] = None,
                   workers: Optional[int] = None, threads: Optional[int] = None) -> StudyConfig:
    """The companion study `name` at `url`: the first study's space, corner, data, split and seed, trained at its top
    budget with the test split evaluated."""
    info = first.info
    return StudyConfig(space=info.space, dataset=info.dataset, corner=info.corner, val_size=info.val_size,
                       seed=info.seed, device=device or "auto", workers=workers, threads=threads, test=True,
                       study=name, storage=url, data_dir=first.config.get("data_dir")).with_budget(info.top_budget)


def _companion(name: str, url: str) -> list[TrialRecord]:
    """The companion's records (none before its first run)."""
    try:
        return list(open_study(name, url).records)
    except StudyError:
        return []


def _finished(keys: set[str], records: Sequence[TrialRecord]) -> set[str]:
    return keys & {r.candidate_key for r in records if r.state in _FINAL}


def _front(study: StoredStudy, seeds: Sequence[int], test: dict[str, float]) -> Front:
    """The study's front with each net's test accuracy per seed (`test`: by candidate key)."""
    nets = tuple(FrontNet(r.number, r.spec_id, r.description or "", int(r.flops), r.outcome.val_acc,
                          tuple(test[f"{r.spec_id}:{s}"] for s in seeds)) for r in study.front())
    info = study.info
    return Front(study.name, nets, top_results=len(study.results(top=True)),
                 compute_s=sum(r.outcome.wall_time or 0.0 for r in study.records if r.duplicate_of is None),
                 rungs=tuple(b.name for b in info.ladder.budgets) if info.ladder else (), eta=info.eta)


def _read(names: Sequence[str], shelf: Shelf, seeds: Sequence[int]) -> list[StoredStudy]:
    """The studies, checked: two or more, made by nasx on one dataset, each with a front; the seeds distinct."""
    if len(names) < 2 or len(set(names)) < len(names):
        raise CompareError(f"give two or more distinct studies to compare (got {', '.join(names) or 'none'})")
    if not seeds or len(set(seeds)) < len(seeds):
        raise CompareError(f"--seeds {','.join(map(str, seeds))}: give one or more distinct seeds")
    studies = [open_study(n, shelf.url(n)) for n in names]
    for s in studies:
        if s.info is None or s.info.top_budget is None:
            raise CompareError(f"study {s.name!r} was not made by nasx (it stores no budget): cannot retrain it")
        if s.info.dataset != studies[0].info.dataset:
            raise CompareError(f"study {s.name!r} searched {s.info.dataset}, {studies[0].name!r} "
                               f"{studies[0].info.dataset}: compare studies of one dataset")
        if not s.front():
            raise CompareError(f"study {s.name!r} has no complete trial at its top budget: no front to compare")
    return studies


# long (~45 lines): read, plan the retrainings, run what is missing, gather the test accuracies
def compare(studies: Sequence[str], *, shelf: Shelf = Shelf(), seeds: Sequence[int] = (1, 2, 3),
            retrain: Optional[str] = None, device: Optional[str] = None, workers: Optional[int] = None,
            threads: Optional[int] = None, progress: Optional[Callable] = None,
            on_note: Optional[Callable[[str], None]] = None, train_fn: Optional[Callable] = None) -> Optional[Comparison]:
    """Retrain the fronts of `studies` (on `shelf`) under `seeds` in the companion study `retrain` (default
    `retrain_name`, on the same shelf) and score them; None if the run was interrupted (the same call resumes).

    Args:
        studies: two or more stored studies; the first is the baseline and sets the budget, split and band.
        seeds: the retraining seeds (>= 3 for an interval worth reading; the searches used the study seed).
        device, workers, threads: how the companion runs (`StudyConfig`).
        progress, on_note, train_fn: passed to `nasx.study.run_study`.
    """
    from ..study.run import run_study

    seeds = tuple(int(s) for s in seeds)
    read = _read(list(studies), shelf, seeds)
    name = retrain or retrain_name(studies)
    url = shelf.url(name)
    cfg = retrain_config(read[0], name, url, device=device, workers=workers, threads=threads)
    nets = {r.spec_id: r for s in read for r in s.front()}
    candidates = [Candidate(NetSpec.from_dict(dict(r.spec)), seed=s, tags={TAG: "front"})
                  for r in nets.values() for s in seeds]
    keys = {c.key for c in candidates}
    before = _finished(keys, _companion(name, url))
    if before != keys:
        if on_note is not None:
            on_note(f"retraining {len(nets)} front nets x {len(seeds)} seeds ({len(keys - before)} of "
                    f"{len(keys)} trainings to go, {cfg.budget.name}) in {name!r}")
        if run_study(cfg, progress=progress, candidates=candidates, on_note=on_note, train_fn=train_fn).interrupted:
            return None
    records = _companion(name, url)
    test = {r.candidate_key: float(r.outcome.test_acc) for r in records
            if r.state == COMPLETE and r.candidate_key in keys and r.outcome.test_acc is not None}
    missing = sorted(keys - set(test))
    if missing:
        raise CompareError(f"{len(missing)} of {len(keys)} retrainings in study {name!r} hold no test accuracy "
                           f"(first: net:seed {missing[0]}; failed or pruned); retrain under another --retrain name")
    band = read[0].band or (min(r.flops for r in nets.values()), max(r.flops for r in nets.values()))
    chance = 1.0 - 1.0 / NetSpec.from_dict(dict(next(iter(nets.values())).spec)).num_classes
    return Comparison(seeds, band, chance, tuple(_front(s, seeds, test) for s in read), name,
                      trained=len(_finished(keys, records) - before))
