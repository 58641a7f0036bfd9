"""Tables of stored studies: the study's points, the best trial, zoo references, and the hypervolume of the front
against the compute spent. A study is read once, by `nasx.study.store` (its trials table, points and front live
there); this module reports on what it read.

Read-only: nothing here trains or writes a study.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..errors import NasxError
from ..net.fit import InputShape, input_of
from ..stats import hv_reference, hypervolume_steps
from ..study.record import COMPLETE, FAIL, PRUNED
from ..study.store import (COLUMNS, StoredStudy, budget_name, pareto_table, study_points,  # noqa: F401 re-exported
                           trials_table)
from ..units import human

__all__ = ["ReportError", "StudyData", "ZooRef", "trials_table", "pareto_table", "zoo_references",
           "best_trial", "study_input", "study_points", "budget_name", "HvCurve", "hv_vs_compute",
           "COLUMNS"]

StudyData = StoredStudy  # what a page reports on: a study as the reader gives it


class ReportError(NasxError, ValueError):
    """A study that cannot be reported (unknown, empty, all failed), said in one line."""


@dataclass(frozen=True)
class ZooRef:
    """A zoo net at the study's input: its counts there and its accuracy if nasx measured it on the same proxy."""

    name: str
    spec_id: str
    flops: int
    params: int
    val_acc: Optional[float] = None
    measured_in: str = ""  # "study #trial" where the accuracy comes from


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
    trained = t[t["state"].isin((COMPLETE, PRUNED, FAIL)) & t["rejected"].isna()].copy()
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
    stored = data.config.get("flops")
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


