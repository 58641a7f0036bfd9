"""Tables of stored studies: one row per trial record, the Pareto front, the best trial, zoo references.

Read-only: studies are read through `nasx.study.record.TrialRecord`, never trained or written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..stats import pareto_mask
from ..errors import NasxError
from ..net.fit import InputShape, input_of
from ..study.config import redact
from ..study.record import StudyInfo, TrialRecord, read_info, storage_url

__all__ = ["ReportError", "StudyData", "ZooRef", "load_study", "trials_table", "pareto_table", "zoo_references",
           "best_trial", "find_trial", "study_input", "COLUMNS"]

# record fields copied into the table, in this order
COLUMNS = ("spec_id", "description", "flops", "params", "acts", "val_acc", "test_acc", "epochs_run", "wall_time",
           "images_per_s", "seed", "dataset", "duplicate_of", "prune_reason", "fail_reason", "rejected")


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

    @property
    def complete(self):
        return self.trials[self.trials["state"] == "COMPLETE"]


@dataclass(frozen=True)
class ZooRef:
    """A zoo net at the study's input: its counts there and its accuracy if nasx measured it on the same proxy."""

    name: str
    spec_id: str
    flops: int
    params: int
    val_acc: Optional[float] = None
    measured_in: str = ""  # "study #trial" where the accuracy comes from


def load_study(name: str, storage: Optional[str] = None, studies_dir: str | Path = "studies") -> StudyData:
    """Read a stored study into a StudyData; ReportError if there is no such study."""
    from ..study.config import StudyError
    from ..study.storage import load_existing

    url = storage_url(name, storage, studies_dir)
    try:
        study = load_existing(name, url)
    except StudyError as e:
        raise ReportError(str(e)) from None
    records = [TrialRecord.from_trial(t) for t in study.get_trials(deepcopy=False)]
    return StudyData(name=name, storage=redact(url), info=read_info(study), trials=trials_table(records, name),
                     records=records, study=study)


def trials_table(records: Sequence[TrialRecord], study: str = ""):
    """One row per trial: study, number, state, the record's fields, the curve (JSON) and `param_<name>`."""
    import pandas as pd

    rows = []
    for r in records:
        full = r.row(COLUMNS)
        row: dict[str, Any] = {"study": study, "number": r.number, "state": r.state}
        for key in COLUMNS:
            row[key] = full[key]
        row["last_val_acc"] = r.curve[-1] if r.curve else None
        row["curve"] = json.dumps([round(float(c), 6) for c in r.curve])
        row.update({k: v for k, v in full.items() if k.startswith(("tag_", "param_"))})
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else ["study", "number", "state", *COLUMNS, "last_val_acc", "curve"])
    for key in ("number", "flops", "params", "acts", "epochs_run", "seed", "duplicate_of"):
        df[key] = df[key].astype("Int64")  # whole numbers stay whole beside the missing ones
    for key in ("val_acc", "test_acc", "wall_time", "images_per_s", "last_val_acc"):
        df[key] = df[key].astype("Float64")
    df["pareto"] = False
    done = df["state"] == "COMPLETE"
    if done.any():
        sub = df[done]
        mask = pareto_mask(list(zip(sub["val_acc"].astype(float), sub["flops"].astype(float))), (True, False))
        df.loc[sub.index, "pareto"] = mask
    return df


def pareto_table(trials) -> Any:
    """The Pareto-optimal complete trials (accuracy up, FLOPs down), one row per architecture, by FLOPs."""
    done = trials[trials["state"] == "COMPLETE"]
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
            hit = table[(table["state"] == "COMPLETE") & (table["spec_id"] == spec.id)]
            if len(hit):
                acc = float(hit["val_acc"].mean())
                where = ", ".join(f"{s} #{n}" for s, n in zip(hit["study"], hit["number"]))
                break
        refs.append(ZooRef(name, spec.id, cx.flops, cx.params, acc, where))
    return sorted(refs, key=lambda r: r.flops)


def best_trial(trials, max_flops: Optional[float] = None):
    """The most accurate complete trial (under max_flops when given) as a table row, or None."""
    done = trials[trials["state"] == "COMPLETE"]
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
