"""Tables of stored studies: one row per trial record, the study's points (its complete trials at its top
budget: the top rung in a study with rungs), the Pareto front, the best trial, zoo references, and the
hypervolume of the front against the compute spent.

Read-only: studies are read through `nasx.study.record.TrialRecord`, never trained or written.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..stats import hv_reference, hypervolume_steps, pareto_mask
from ..errors import NasxError
from ..net.fit import InputShape, input_of
from ..study.config import redact
from ..study.record import StudyInfo, TrialRecord, read_config, read_info, storage_url
from ..train.proxy import Proxy, ProxyError
from ..units import human

__all__ = ["ReportError", "StudyData", "ZooRef", "load_study", "trials_table", "pareto_table", "zoo_references",
           "best_trial", "find_trial", "study_input", "study_points", "budget_name", "HvCurve", "hv_vs_compute",
           "COLUMNS"]

# record fields copied into the table, in this order
COLUMNS = ("spec_id", "description", "flops", "params", "acts", "val_acc", "test_acc", "epochs_run", "wall_time",
           "images_per_s", "seed", "dataset", "duplicate_of", "prune_reason", "fail_reason", "rejected", "rung",
           "promoted_from")


class ReportError(NasxError, ValueError):
    """A study that cannot be reported (unknown, empty, all failed), said in one line."""


@dataclass
class StudyData:
    """One stored study: its settings, its trials as a table, and the Optuna study (for importances)."""

    name: str
    storage: str  # redacted
    info: Optional[StudyInfo]
    trials: Any  # pandas.DataFrame, one row per trial
    records: list[TrialRecord] = field(repr=False, default_factory=list)
    study: Any = field(repr=False, default=None)
    opened: Any = field(repr=False, default=None)  # the Optuna storage it was read through (its companions share it)
    completed: dict[int, Any] = field(repr=False, default_factory=dict)  # trial number -> datetime_complete

    @property
    def complete(self):
        return self.trials[self.trials["state"] == "COMPLETE"]

    @property
    def points(self):
        """The study's points: its complete trials at its top budget (see `study_points`)."""
        return study_points(self.trials)


@dataclass(frozen=True)
class ZooRef:
    """A zoo net at the study's input: its counts there and its accuracy if nasx measured it on the same proxy."""

    name: str
    spec_id: str
    flops: int
    params: int
    val_acc: Optional[float] = None
    measured_in: str = ""  # "study #trial" where the accuracy comes from


def load_study(name: str, storage: Optional[str] = None, studies_dir: str | Path = "studies",
               opened: Any = None) -> StudyData:
    """Read a stored study into a StudyData (through `opened`, a storage already open on it, when given); ReportError
    if there is no such study."""
    from ..study.config import StudyError
    from ..study.storage import load_existing

    url = storage_url(name, storage, studies_dir)
    try:
        study = load_existing(name, url, opened)
    except StudyError as e:
        raise ReportError(str(e)) from None
    frozen = study.get_trials(deepcopy=False)
    records = [TrialRecord.from_trial(t) for t in frozen]
    info = read_info(study)
    return StudyData(name=name, storage=redact(url), info=info, trials=trials_table(records, name, info),
                     records=records, study=study,
                     opened=opened or study._storage,  # Optuna's Study has no public handle to its storage
                     completed={t.number: t.datetime_complete for t in frozen})


def budget_name(budget: Optional[Any]) -> Optional[str]:
    """A stored budget (Proxy.to_dict) by its name, e1-f0.25; None when there is none or it does not parse."""
    if not budget:
        return None
    try:
        return _proxy_name(tuple(sorted(dict(budget).items())))
    except TypeError:  # a value that is not hashable: no budget a Proxy could make
        return None


@functools.lru_cache(maxsize=256)
def _proxy_name(items: tuple) -> Optional[str]:
    """budget_name of a budget's sorted items (a study holds a few budgets, read once each)."""
    try:
        return Proxy(**dict(items)).name
    except (ProxyError, TypeError):
        return None


def top_rung(info: Optional[StudyInfo]) -> Optional[int]:
    """The top rung of a study with rungs (len(rungs) - 1), None for a study without."""
    return len(info.rungs) - 1 if info is not None and info.rungs else None


def trials_table(records: Sequence[TrialRecord], study: str = "", info: Optional[StudyInfo] = None):
    """One row per trial: study, number, state, the record's fields (rung and budget name included), the curve
    (JSON), `param_<name>`, `top_budget` (a result at the study's top budget: every trial of a study without
    rungs, the top rung's in one with) and `pareto` (on the front of the study's points)."""
    import pandas as pd

    head = ["study", "number", "state", *COLUMNS, "budget", "last_val_acc", "curve"]
    rows = []
    for r in records:
        curve = r.outcome.curve
        row: dict[str, Any] = {"study": study, "number": r.number, "state": r.state, **r.row(COLUMNS),
                               "budget": budget_name(r.budget), "last_val_acc": curve[-1] if curve else None,
                               "curve": json.dumps([round(float(c), 6) for c in curve])}
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else head)
    fixed = set(head)
    df = df[head + [c for c in df.columns if c not in fixed]]  # tag_* and param_* after the fixed columns
    for key in ("number", "flops", "params", "acts", "epochs_run", "seed", "duplicate_of", "rung", "promoted_from"):
        df[key] = df[key].astype("Int64")  # whole numbers stay whole beside the missing ones
    for key in ("val_acc", "test_acc", "wall_time", "images_per_s", "last_val_acc"):
        df[key] = df[key].astype("Float64")
    top = top_rung(info)
    df["top_budget"] = True if top is None else (df["rung"] == top).fillna(False).astype(bool)
    df["pareto"] = False
    points = study_points(df)
    if len(points):
        mask = pareto_mask(list(zip(points["val_acc"].astype(float), points["flops"].astype(float))), (True, False))
        df.loc[points.index, "pareto"] = mask
    return df


def study_points(trials) -> Any:
    """The rows that make a study's front, chart, summary and hypervolume: its complete trials at its top budget
    (in a study with rungs, a lower rung's result is at a smaller budget and never competes with the top's)."""
    done = trials["state"] == "COMPLETE"
    if "top_budget" in trials.columns:
        done &= trials["top_budget"].astype(bool)
    return trials[done]


def pareto_table(trials) -> Any:
    """The Pareto-optimal points of a study (accuracy up, FLOPs down), one row per architecture, by FLOPs."""
    done = study_points(trials)
    if done.empty:
        return done
    mask = pareto_mask(list(zip(done["val_acc"].astype(float), done["flops"].astype(float))), (True, False))
    front = done[mask].sort_values(["flops", "number"])
    return front.drop_duplicates(subset=["spec_id"], keep="first")  # duplicates of one net: its first trial


def study_input(data: StudyData) -> Optional[InputShape]:
    """The input of the study's nets (from the first record that holds a net), or None."""
    for r in data.records:
        net = r.net
        if net is not None:
            return input_of(net)
    return None


def zoo_references(shape: Optional[InputShape], measured: Sequence[Any] = ()) -> list[ZooRef]:
    """The zoo nets of the family that fits the input (CIFAR nets below 100 px, else ImageNet), counted at it;
    accuracy only from `measured` trial tables (mean val_acc of complete trials with the same spec id)."""
    from ..net.complexity import complexity
    from ..net.zoo import fitting

    if shape is None:
        return []
    refs = []
    for name, spec in fitting(shape):
        cx = complexity(spec)
        acc, where = None, ""
        for table in measured:
            points = study_points(table)
            hit = points[points["spec_id"] == spec.id]
            if len(hit):
                acc = float(hit["val_acc"].mean())
                where = ", ".join(f"{s} #{n}" for s, n in zip(hit["study"], hit["number"]))
                break
        refs.append(ZooRef(name, spec.id, cx.flops, cx.params, acc, where))
    return sorted(refs, key=lambda r: r.flops)


@dataclass(frozen=True)
class HvCurve:
    """The hypervolume of a study's front against the compute it spent: one row per trained trial in the order
    trials completed, and the reference point (chance error, 1.1 x the FLOPs band's top) with where each came from."""

    rows: Any  # pandas.DataFrame: study, trial, state, rung, completed, wall_time, compute, hypervolume
    band: tuple[float, float]
    band_from: str
    chance: float
    chance_from: str

    @property
    def reference(self) -> tuple[float, float]:
        return hv_reference(self.band, self.chance)

    def describe(self) -> str:
        """The reference point and the FLOPs scale in words, for the page."""
        err, flops = self.reference
        return (f"Reference point: error {err:.3f} ({self.chance_from}) and {human(flops)} FLOPs (1.1 x the top of the "
                f"FLOPs band {human(self.band[0])}-{human(self.band[1])}, {self.band_from}); FLOPs measured as "
                f"log(F / band low) / log(band high / band low), error as 1 - validation accuracy.")


def hv_vs_compute(data: StudyData) -> Optional[HvCurve]:
    """The hypervolume (moocore's, in error and normalized log FLOPs) of the front of the study's points after each
    trained trial (complete, pruned or failed; a duplicate costs nothing), by the time it completed; compute is the
    running sum of the trials' wall times (device-seconds). None when no trial is a point yet."""
    import pandas as pd

    t = data.trials
    points = study_points(t)
    if points.empty:
        return None
    trained = t[t["state"].isin(("COMPLETE", "PRUNED", "FAIL")) & t["rejected"].isna()].copy()
    trained["completed"] = [data.completed.get(int(n)) for n in trained["number"]]
    trained = trained.sort_values(["completed", "number"], na_position="last", kind="stable")
    cost = trained["wall_time"].astype(float).fillna(0.0).where(trained["duplicate_of"].isna(), 0.0)
    is_point = trained.index.isin(points.index)
    steps = [(1.0 - float(a), float(f)) if p else None
             for p, a, f in zip(is_point, trained["val_acc"].astype(float), trained["flops"].astype(float))]
    band, band_from = _band(data, points)
    chance, chance_from = _chance(data, points)
    rows = pd.DataFrame({"study": data.name, "trial": trained["number"].astype(int).to_numpy(),
                         "state": trained["state"].to_numpy(), "rung": trained["rung"].to_numpy(),
                         "completed": [c.isoformat() if c is not None else None for c in trained["completed"]],
                         "wall_time": trained["wall_time"].to_numpy(), "compute": cost.cumsum().to_numpy(),
                         "hypervolume": hypervolume_steps(steps, band, chance)})
    return HvCurve(rows, band, band_from, chance, chance_from)


def _band(data: StudyData, points) -> tuple[tuple[float, float], str]:
    """The FLOPs band of the hypervolume: the study's stored --flops band, else the points' min and max FLOPs."""
    stored = read_config(data.study).get("flops") if data.study is not None else None
    try:
        lo, hi = (float(v) for v in stored)
        if 0 < lo <= hi:
            return (lo, hi), "the study's --flops band"
    except (TypeError, ValueError):
        pass
    flops = points["flops"].astype(float)
    return (float(flops.min()), float(flops.max())), "the min and max FLOPs of the study's points"


def _chance(data: StudyData, points) -> tuple[float, str]:
    """Chance error 1 - 1/classes (the classes of the study's nets), else the highest error observed."""
    shape = study_input(data)
    if shape is not None and shape.num_classes > 1:
        return 1.0 - 1.0 / shape.num_classes, f"chance error, {shape.num_classes} classes"
    worst = float(1.0 - points["val_acc"].astype(float).min())
    return worst, "the highest error observed"


def best_trial(trials, max_flops: Optional[float] = None):
    """The most accurate of the study's points (under max_flops when given) as a table row, or None."""
    done = study_points(trials)
    if max_flops is not None:
        done = done[done["flops"].astype(float) <= max_flops]
    if done.empty:
        return None
    return done.sort_values(["val_acc", "flops", "number"], ascending=[False, True, True]).iloc[0]


def find_trial(data: StudyData, number: int) -> TrialRecord:
    """The record of trial `number`; ReportError naming the range if there is none."""
    for r in data.records:
        if r.number == number:
            return r
    last = max((r.number for r in data.records), default=-1)
    raise ReportError(f"study {data.name} has no trial {number} (it has 0..{last})")
