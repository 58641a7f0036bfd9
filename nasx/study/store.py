"""The one reader of stored studies: `open_study` gives a `StoredStudy` (its records, info, settings, top rung,
points, front and nets, and its trials as a pandas DataFrame) to the report, the experiments, `nasx repeat`, the
scripts and users in a notebook (`nasx.open_study`, docs/python-api.md). Read-only: nothing here trains or writes a
study.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..net.spec import NetSpec
from ..stats.pareto import pareto_mask
from ..train.budget import Budget, BudgetError
from .config import StudyError, redact
from .record import COMPLETE, Shelf, StudyInfo, TrialRecord, read_config, read_info

__all__ = ["StoredStudy", "Shelf", "open_study", "open_studies", "has_study", "trials_table", "study_points",
           "pareto_table", "budget_name", "COLUMNS"]

# record fields copied into the trials table, in this order
COLUMNS = ("spec_id", "description", "flops", "params", "acts", "val_acc", "test_acc", "epochs_run", "wall_time",
           "images_per_s", "seed", "dataset", "duplicate_of", "prune_reason", "fail_reason", "rejected", "rung",
           "promoted_from")


@dataclass(frozen=True)
class StoredStudy:
    """One stored study as read: its records in trial order, what it was made with (`info`, None for a study nasx
    did not make), its stored settings (`config`), when each trial completed, and the Optuna study it was read
    from (for parameter importances; None for a study built from records)."""

    name: str
    records: tuple[TrialRecord, ...] = field(repr=False)
    info: Optional[StudyInfo] = None
    config: Mapping[str, Any] = field(repr=False, default_factory=dict)
    storage: str = ""  # the storage URL, passwords redacted (for pages and messages)
    completed: Mapping[int, Any] = field(repr=False, default_factory=dict)  # trial number -> datetime_complete
    study: Any = field(repr=False, compare=False, default=None)
    opened: Any = field(repr=False, compare=False, default=None)  # the Optuna storage read (its companions share it)
    url: str = field(repr=False, default="")  # the storage URL as given (companions live there too)

    @property
    def top_rung(self) -> Optional[int]:
        """The top rung of a study with rungs, None for a study without (every trial at its one budget)."""
        return self.info.top_rung if self.info is not None else None

    @property
    def top_budget(self) -> Optional[Budget]:
        """The budget its points trained on: the top rung's, or the study's one budget (None if it stores none)."""
        return self.info.top_budget if self.info is not None else None

    @property
    def band(self) -> Optional[tuple[int, int]]:
        """The FLOPs band it sampled in, where its settings name one."""
        flops = self.config.get("flops")
        return (int(flops[0]), int(flops[1])) if flops else None

    def results(self, top: bool = True) -> list[TrialRecord]:
        """Its complete trials that trained a net of their own (no duplicate) and hold it, in trial order; `top`: at
        the top budget only (the top rung's in a study with rungs)."""
        rung = self.top_rung if top else None
        return [r for r in self.records if r.state == COMPLETE and r.duplicate_of is None and r.spec is not None
                and (rung is None or r.rung == rung)]

    def nets(self, top: bool = False, n: Optional[int] = None) -> list[NetSpec]:
        """The distinct nets of `results(top)` (every rung's by default), in trial order, the first n."""
        nets: dict[str, NetSpec] = {}
        for r in self.results(top):
            if r.spec_id not in nets:
                nets[r.spec_id] = r.net
        out = list(nets.values())
        return out if n is None else out[:n]

    @functools.cached_property
    def trials(self):
        """The trials table (`trials_table`): one row per trial, with `top_budget` and `pareto` columns."""
        return trials_table(self.records, self.name, self.info)

    def trials_frame(self):
        """A copy of the trials table as a pandas DataFrame (`trials_table`), to change at will."""
        return self.trials.copy()

    @property
    def complete(self):
        """The rows of its complete trials (every rung's)."""
        return self.trials[self.trials["state"] == COMPLETE]

    @property
    def points(self):
        """The rows of its points: complete trials at the top budget (`study_points`)."""
        return study_points(self.trials)

    def front(self) -> list[TrialRecord]:
        """The records of its Pareto front at the top budget (validation accuracy up, FLOPs down), one per net, by
        FLOPs (`pareto_table`)."""
        by_number = {r.number: r for r in self.records}
        return [by_number[int(n)] for n in pareto_table(self.trials)["number"]]

    def record(self, number: int) -> TrialRecord:
        """The record of trial `number`; StudyError naming the range if there is none."""
        for r in self.records:
            if r.number == number:
                return r
        last = max((r.number for r in self.records), default=-1)
        raise StudyError(f"study {self.name} has no trial {number} (it has 0..{last})")

    def companion(self, name: str) -> Optional["StoredStudy"]:
        """Another study stored beside this one (its repeats, its zoo references), read through the same open
        storage; None if there is none."""
        try:
            return _read(name, self.url, self.opened)
        except StudyError:
            return None


def open_study(name: str, storage: Optional[str] = None, studies_dir: str | Path = "studies") -> StoredStudy:
    """The stored study `name` in `storage` (a URL), else in its journal file `<studies_dir>/<name>.journal`;
    StudyError if there is none."""
    return _read(name, Shelf(storage, studies_dir).url(name))


def open_studies(url: str, prefix: str = "") -> list[StoredStudy]:
    """Every study in the storage at `url` whose name starts with `prefix` (in the order they were made), read through
    one open storage."""
    import optuna

    from .storage import open_storage

    opened = open_storage(url, read_only=True)
    names = [n for n in optuna.get_all_study_names(opened) if n.startswith(prefix)]
    return [_read(name, url, opened) for name in names]


def has_study(name: str, url: str) -> bool:
    """Whether the storage at `url` holds a study `name` (a companion: zoo references, repeats)."""
    import optuna

    from .storage import is_rdb, journal_path, open_storage

    if not is_rdb(url) and not journal_path(url).is_file():
        return False
    return name in optuna.get_all_study_names(open_storage(url, read_only=True))


def _read(name: str, url: str, opened: Any = None) -> StoredStudy:
    """Read study `name` at `url` (through `opened`, a storage already open on it, when given)."""
    from .storage import load_existing

    study = load_existing(name, url, opened)
    frozen = study.get_trials(deepcopy=False)
    return StoredStudy(name=name, records=tuple(TrialRecord.from_trial(t) for t in frozen), info=read_info(study),
                       config=read_config(study), storage=redact(url),
                       completed={t.number: t.datetime_complete for t in frozen}, study=study,
                       opened=opened or study._storage,  # Optuna's Study has no public handle to its storage
                       url=url)


def budget_name(budget: Optional[Any]) -> Optional[str]:
    """A stored budget (Budget.to_dict) by its name, e1-f0.25; None when there is none or it does not parse."""
    if not budget:
        return None
    try:
        return _proxy_name(tuple(sorted(dict(budget).items())))
    except TypeError:  # a value that is not hashable: no budget a Budget could make
        return None


@functools.lru_cache(maxsize=256)
def _proxy_name(items: tuple) -> Optional[str]:
    """budget_name of a budget's sorted items (a study holds a few budgets, read once each)."""
    try:
        return Budget(**dict(items)).name
    except (BudgetError, TypeError):
        return None


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
    top = info.top_rung if info is not None else None
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
    done = trials["state"] == COMPLETE
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
