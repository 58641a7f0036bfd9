"""The typed trial record: the only code that knows the keys a study stores in Optuna's user attributes.

A trial's user attributes hold the net (spec JSON, id, counts), where and how it was trained (seed,
dataset, split hash, device, versions, budget) and what came out (the per-epoch validation curve,
accuracy, time, images/s, a stop reason: one `Outcome`). The study writes them (`write`,
`write_outcome`, `write_by_id`, `candidate_attrs`, `TrialRecord.retry_attrs`); everything else reads
`TrialRecord.from_trial`. Stored keys are the field names (tags as `tag_<name>`). The study's own attributes
(what it was made with) are a `StudyInfo`, stored with a schema version (`SCHEMA`); `upgrade` reads every
earlier one.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..errors import NasxError
from ..net.spec import NetSpec
from ..train.budget import Budget, BudgetError, Ladder

__all__ = ["TrialRecord", "Outcome", "StudyInfo", "RecordError", "write", "write_outcome", "write_by_id",
           "candidate_attrs", "SCHEMA", "upgrade", "read_info", "read_config", "write_info", "take_worker_number",
           "Shelf", "versions", "device_name", "STATES"]

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
COMPLETE, PRUNED, FAIL, RUNNING, WAITING = STATES  # a record's state: the name of its Optuna TrialState
_TAG = "tag_"


class RecordError(NasxError):
    """A stored record that this version cannot read; the message says how to go on."""


@dataclass(frozen=True)
class Outcome:
    """What training a net gave: its curves, accuracies, time, throughput, stop reason and verdict."""

    curve: tuple[float, ...] = ()  # validation accuracy after each epoch
    train_loss: tuple[float, ...] = ()
    val_acc: Optional[float] = None
    test_acc: Optional[float] = None  # final numbers only; never read by a search
    wall_time: Optional[float] = None
    images_per_s: Optional[float] = None
    epochs_run: Optional[int] = None
    reason: Optional[str] = None  # the trainer's stop reason: completed, pruned, nan, oom, interrupted
    peak_memory_bytes: Optional[int] = None
    trained_spec_id: Optional[str] = None  # the id of the module the trainer built (equals spec_id)
    prune_reason: Optional[str] = None  # the pruning rule's verdict
    fail_reason: Optional[str] = None  # why the net failed (nan, oom: ..., error: ...)

    def fields(self) -> dict[str, Any]:
        """The record fields that store this outcome (stored flat, under the same keys as TrialRecord's)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a study as stored: the net, its training context, its outcome."""

    number: int
    state: str  # one of STATES
    values: Optional[tuple[float, ...]] = None  # the objectives Optuna was told
    choices: Mapping[str, Any] = field(default_factory=dict)  # what the sampler drew (Optuna's params)
    # the net, fitted to the dataset's input (nasx.net.fit): the one that was counted, trained and stored
    spec: Optional[Mapping[str, Any]] = None
    spec_id: Optional[str] = None
    description: Optional[str] = None
    flops: Optional[int] = None
    params: Optional[int] = None
    acts: Optional[int] = None
    # how it was trained
    seed: Optional[int] = None
    dataset: Optional[str] = None
    split_hash: Optional[str] = None
    device: Optional[str] = None
    versions: Optional[Mapping[str, str]] = None
    worker: Optional[int] = None
    budget: Optional[Mapping[str, Any]] = None
    # a study with rungs (successive halving): the rung this trial trained at (0: the lowest) and, for a
    # promotion, the trial of the rung below whose net it retrains at this rung's budget
    rung: Optional[int] = None
    promoted_from: Optional[int] = None
    ranked_by: Optional[str] = None  # a promotion: the ranking that chose it (error at the rung, or predicted top error)
    # continue mode: this trial's pre-decay checkpoint ({file, sha256, bytes, step}; None: none kept), the trial
    # whose checkpoint it trained on from, or why it retrained from scratch instead
    checkpoint: Optional[Mapping[str, Any]] = None
    continued_from: Optional[int] = None
    retrain_reason: Optional[str] = None
    # what came out (its fields are stored flat, under their own names, beside the record's)
    outcome: Outcome = field(default_factory=Outcome)
    # why a trial is not a plain complete one (with the outcome's prune_reason and fail_reason)
    duplicate_of: Optional[int] = None
    rejected: Optional[str] = None  # a drawn structure the space could not fit in the band (never trained)
    retry_of: Optional[int] = None
    retries: Optional[int] = None
    heartbeat: Optional[float] = None
    heartbeat_gap: Optional[float] = None  # the longest gap between its heartbeats so far (s): a loaded machine's
    owner: Optional[str] = None  # host:pid of the process training it
    process: Optional[str] = None  # boot id/pid namespace/pid/start time of that process: a local death is seen at once
    progress: Optional[Mapping[str, Any]] = None  # epoch, epochs, step, steps, seconds: for live displays
    # a queued candidate (nasx edf, nasx ablate, zoo references): the net to train and its labels
    candidate: Optional[Mapping[str, Any]] = None
    candidate_key: Optional[str] = None
    tags: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_trial(cls, trial: Any) -> "TrialRecord":
        """The record of an Optuna (frozen) trial."""
        own, of_outcome = _record_set(), _outcome_set()
        data: dict[str, Any] = {}
        out: dict[str, Any] = {}
        tags: dict[str, Any] = {}
        unknown = []
        for k, v in trial.user_attrs.items():  # one pass: a report reads 10,000 of these
            if k in of_outcome:
                out[k] = v
            elif k in own:
                data[k] = v
            elif k.startswith(_TAG):
                tags[k[len(_TAG):]] = v
            else:
                unknown.append(k)
        if unknown:
            raise RecordError(f"trial {trial.number} holds {', '.join(sorted(unknown))}, which this version of "
                              f"nasx does not know; upgrade nasx or write the study anew")
        for key in ("curve", "train_loss"):
            if key in out:
                out[key] = tuple(map(float, out[key] or ()))
        outcome = Outcome(**out)
        values = tuple(trial.values) if trial.values is not None else None
        return cls(number=trial.number, state=trial.state.name, values=values, choices=dict(trial.params),
                   tags=tags, outcome=outcome, **data)

    @classmethod
    def of(cls, number: int, state: str, **fields: Any) -> "TrialRecord":
        """A record from flat fields as they are stored (the outcome's among the record's)."""
        outcome = Outcome(**{k: fields.pop(k) for k in list(fields) if k in _outcome_set()})
        return cls(number, state, outcome=outcome, **fields)

    def to_attrs(self) -> dict[str, Any]:
        """The user attributes that store this record (unset fields left out)."""
        return _attrs({**{f: getattr(self, f) for f in _record_fields()}, **self.outcome.fields()}, dict(self.tags))

    def get(self, name: str) -> Any:
        """A stored field by name: the record's own, or its outcome's (a table's column)."""
        return getattr(self.outcome if name in _outcome_set() else self, name)

    def retry_attrs(self) -> dict[str, Any]:
        """The user attributes of this trial's retry: the record whole (its net, seed, context, candidate and tags),
        less what the lost run wrote (its outcome, verdicts, worker, process and heartbeat), with `retry_of` and
        `retries` counted."""
        attrs = self.to_attrs()
        for name in (*_outcome_fields(), *_RUN_FIELDS):
            attrs.pop(name, None)
        return {**attrs, "retry_of": self.number, "retries": (self.retries or 0) + 1}

    @property
    def net(self) -> Optional[NetSpec]:
        """The stored net as a NetSpec (None for a trial that holds none)."""
        return None if self.spec is None else NetSpec.from_dict(dict(self.spec))

    def row(self, fields: Optional[Sequence[str]] = None) -> dict[str, Any]:
        """A flat dict for tables: the fields (default: every one), curve as a list, tags as `tag_<name>`,
        choices as `param_<name>`."""
        out = {name: self.get(name) for name in (_row_fields() if fields is None else fields)}
        for key in ("curve", "train_loss"):
            if key in out:
                out[key] = list(out[key])
        out.update({_TAG + k: v for k, v in self.tags.items()})
        out.update({f"param_{k}": v for k, v in sorted(self.choices.items())})
        return out


_RUN_FIELDS = ("duplicate_of", "rejected", "worker", "device", "versions", "owner", "process", "heartbeat",
               "heartbeat_gap", "progress", "checkpoint", "continued_from", "retrain_reason")
"""Record fields one run of a trial writes besides its outcome: a retry starts them afresh."""


@functools.cache
def _outcome_fields() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Outcome))


@functools.cache
def _outcome_set() -> frozenset[str]:
    return frozenset(_outcome_fields())


def _expanded(names: Sequence[str]) -> tuple[str, ...]:
    """Field names with `outcome` replaced by the outcome's own fields, in place."""
    return tuple(n for name in names for n in (_outcome_fields() if name == "outcome" else (name,)))


@functools.cache
def _row_fields() -> tuple[str, ...]:
    return _expanded([f.name for f in dataclasses.fields(TrialRecord) if f.name not in ("tags", "choices")])


@functools.cache
def _record_fields() -> tuple[str, ...]:
    """The record's own stored fields (its outcome's are stored beside them)."""
    return tuple(f.name for f in dataclasses.fields(TrialRecord) if f.name not in ("number", "state", "values",
                                                                                   "choices", "tags", "outcome"))


@functools.cache
def _record_set() -> frozenset[str]:
    return frozenset(_record_fields())


@functools.cache
def _stored_set() -> frozenset[str]:
    return frozenset(_stored_fields())


@functools.cache
def _stored_fields() -> tuple[str, ...]:
    return _record_fields() + _outcome_fields()


def _attrs(fields: Mapping[str, Any], tags: Mapping[str, Any]) -> dict[str, Any]:
    known = _stored_set()
    bad = [k for k in fields if k not in known]
    if bad:
        raise TypeError(f"not a trial record field: {', '.join(bad)}")
    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items() if v is not None}
    out.update({_TAG + k: v for k, v in tags.items()})
    return out


def write(trial: Any, tags: Optional[Mapping[str, Any]] = None, **fields: Any) -> None:
    """Store record fields on a live Optuna trial (the study's worker is the only caller)."""
    for key, value in _attrs(fields, tags or {}).items():
        trial.set_user_attr(key, value)


def write_outcome(trial: Any, outcome: Outcome, **fields: Any) -> None:
    """Store what training gave on a live Optuna trial (None fields left as stored), with other record fields."""
    write(trial, **outcome.fields(), **fields)


def write_by_id(storage: Any, trial_id: int, **fields: Any) -> None:
    """Store record fields through the storage, for a trial this process does not hold (heartbeats, reaping)."""
    for key, value in _attrs(fields, {}).items():
        storage.set_trial_user_attr(trial_id, key, value)


def candidate_attrs(spec: NetSpec, key: str, seed: int, tags: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """The user attributes of a queued candidate: its net, its key (spec id and seed), seed and tags."""
    return _attrs({"candidate": spec.to_dict(), "candidate_key": key, "seed": seed, **fields}, tags)


# ---------------------------------------------------------------------------------------------
# The study's own record


SCHEMA = 3
"""The version of the stored study info (its `schema` key); a study stored before the key has version 0."""


@dataclass(frozen=True)
class StudyInfo:
    """What a study was made with; a resumed study must match it (else it would mix two experiments)."""

    space: str
    dataset: str
    budget: Optional[Budget]  # what its trials train on (the top rung's with rungs); None: the earliest studies
    objectives: tuple[str, ...]
    val_size: Optional[float]
    seed: int
    space_hash: Optional[str] = None  # the space file's content: a changed file is another experiment
    corner: Optional[str] = None  # the corner of the space file searched (None: the whole file)
    rungs: tuple[Mapping[str, Any], ...] = ()  # successive halving: each rung's proxy (Budget.to_dict), lowest first
    eta: Optional[int] = None  # successive halving: a rung promotes the top 1/eta of its nets
    continuation: bool = False  # successive halving: promotions train on from a checkpoint (another schedule)
    schema: int = SCHEMA  # the version of this stored form (see `upgrade`)

    @property
    def ladder(self) -> Optional[Ladder]:
        """The rungs it climbed (None: no rungs, or rungs stored that no Ladder makes)."""
        if not self.rungs:
            return None
        try:
            return Ladder(tuple(Budget(**dict(r)) for r in self.rungs), self.eta or 3)
        except (BudgetError, TypeError):
            return None

    @property
    def top_rung(self) -> Optional[int]:
        """The top rung of a study with rungs (len(rungs) - 1), None for a study without."""
        return len(self.rungs) - 1 if self.rungs else None

    @property
    def top_budget(self) -> Optional[Budget]:
        """The budget its points trained on: its top rung's, or (no rungs) its one budget (None if it stores none)."""
        if not self.rungs:
            return self.budget
        ladder = self.ladder
        return ladder.budgets[-1] if ladder is not None else None

    def differences(self, stored: "StudyInfo") -> list[tuple[str, Any, Any]]:
        """(field, stored value, this value) for each field that differs; a space hash that either side does not
        know (None) is not compared."""
        out = []
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(stored, f.name)
            if f.name == "space_hash" and (theirs is None or mine is None):
                continue
            if mine != theirs:
                out.append((f.name, theirs, mine))
        return out

    def to_attrs(self) -> dict[str, Any]:
        """The stored form (the study's `nasx` attribute), at the current schema."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["budget"] = self.budget.to_dict() if self.budget is not None else None
        d["objectives"] = list(self.objectives)
        d["rungs"] = [dict(r) for r in self.rungs]
        return d

    @classmethod
    def from_attrs(cls, data: Mapping[str, Any]) -> "StudyInfo":
        """The info of a stored form of any schema up to the current one (`upgrade`); keys it does not know are
        left out."""
        data = upgrade(data)
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["objectives"] = tuple(kwargs["objectives"])
        kwargs["rungs"] = tuple(dict(r) for r in kwargs["rungs"])
        try:
            kwargs["budget"] = Budget(**kwargs["budget"]) if kwargs.get("budget") is not None else None
        except (BudgetError, TypeError) as e:
            raise RecordError(f"the study's stored budget {kwargs['budget']!r} is not one nasx trains on ({e})") from None
        return cls(**kwargs)


def upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored study info of any schema as the current schema stores it, one step a version (RecordError for a
    schema newer than this nasx reads)."""
    out = dict(data)
    version = out.get("schema", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise RecordError(f"study info schema {version!r}: not a version nasx wrote")
    if version > SCHEMA:
        raise RecordError(f"the study was written by a newer nasx (study info schema {version}; this version reads up "
                          f"to {SCHEMA}); upgrade nasx")
    for step in _UPGRADES[version:]:
        out = step(out)
    return {**out, "schema": SCHEMA}


def _schema_0_to_1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 0 (no `schema` key) to 1: every field present (objectives accuracy and FLOPs, seed 0, space and dataset
    "?", epochs, fraction and validation size None where the earliest studies stored none; no rungs), and the
    corner, once kept in the proxy (batch size, resolution), as the space's own field."""
    out = {"objectives": ["accuracy", "flops"], "seed": 0, "space": "?", "dataset": "?", "epochs": None,
           "fraction": None, "val_size": None, "rungs": [], "eta": None, **data}
    out["objectives"] = out["objectives"] or ["accuracy", "flops"]
    proxy = dict(out.get("proxy") or {})
    if "corner" in proxy:
        out.setdefault("corner", proxy.pop("corner"))
    out["proxy"] = proxy
    out["rungs"] = out["rungs"] or []
    return out


def _schema_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 to 2: `continuation` (promotions trained on from a checkpoint) stored; every earlier study retrained
    its promotions."""
    return {"continuation": False, **data}


def _schema_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 to 3: the budget stored as one `budget` (Budget.to_dict, as every trial stores its own) instead of
    epochs and fraction beside a `proxy` of resolution and batch size; none where the earliest studies stored no
    epochs or fraction."""
    out = {k: v for k, v in data.items() if k not in ("epochs", "fraction", "proxy")}
    epochs, fraction = data.get("epochs"), data.get("fraction")
    proxy = {k: v for k, v in dict(data.get("proxy") or {}).items() if k in ("resolution", "batch_size")}
    out["budget"] = None if epochs is None or fraction is None else {"epochs": epochs, "fraction": fraction, **proxy}
    return out


_UPGRADES = (_schema_0_to_1, _schema_1_to_2, _schema_2_to_3)  # _UPGRADES[k] takes a stored info from schema k to k + 1


_INFO, _CONFIG, _WORKERS = "nasx", "config", "workers"


def read_info(study: Any) -> Optional[StudyInfo]:
    """The StudyInfo a study was made with, or None for a study nasx did not make."""
    data = study.user_attrs.get(_INFO)
    return None if data is None else StudyInfo.from_attrs(data)


def read_config(study: Any) -> dict[str, Any]:
    """The settings the study was first run with (passwords redacted), as stored (e.g. its FLOPs band)."""
    return dict(study.user_attrs.get(_CONFIG) or {})


def write_info(study: Any, info: StudyInfo, config: Mapping[str, Any]) -> None:
    """Store what a new study is made with."""
    study.set_user_attr(_INFO, info.to_attrs())
    study.set_user_attr(_CONFIG, dict(config))


def take_worker_number(study: Any) -> int:
    """A number no other worker of the study has had (0, 1, 2 ...; the caller holds the study lock)."""
    number = int(study.user_attrs.get(_WORKERS, 0))
    study.set_user_attr(_WORKERS, number + 1)
    return number


@dataclass(frozen=True)
class Shelf:
    """Where stored studies lie: one storage URL that holds them all (a database, a shared journal), else a journal
    file per study, `<folder>/<name>.journal`."""

    storage: Optional[str] = None
    folder: str | Path = "studies"

    def url(self, name: str) -> str:
        """The storage of study `name`."""
        return self.storage or str(Path(self.folder) / f"{name}.journal")


def versions() -> dict[str, str]:
    """nasx, torch, optuna and Python versions, stored with each trial."""
    from importlib.metadata import PackageNotFoundError, version

    import optuna
    import torch

    try:
        nasx_version = version("nasx")
    except PackageNotFoundError:  # run from a source tree that was never installed
        nasx_version = "unknown"
    return {"nasx": nasx_version, "torch": torch.__version__, "optuna": optuna.__version__,
            "python": platform.python_version()}


def device_name(device: Any) -> str:
    """cuda:<GPU name> or cpu:<processor>, stored with each trial."""
    import torch

    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}"
