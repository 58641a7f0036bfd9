"""The typed trial record: the only code that knows the keys a study stores in Optuna's user attributes.

A trial's user attributes hold the net (spec JSON, id, counts), where and how it was trained (seed,
dataset, split hash, device, versions, budget) and what came out (the per-epoch validation curve,
accuracy, time, images/s, a stop reason: one `Outcome`). The study writes them (`write`,
`write_outcome`, `write_by_id`, `candidate_attrs`, `TrialRecord.retry_attrs`); everything else reads
`TrialRecord.from_trial`. The study's own attributes (what it was made with) are a `StudyInfo`. Stored
keys are the field names (tags as `tag_<name>`), as in every earlier version, so studies written before
this module still load.
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
from ..train.proxy import Proxy, ProxyError

__all__ = ["TrialRecord", "Outcome", "StudyInfo", "RecordError", "write", "write_outcome", "write_by_id",
           "candidate_attrs", "read_info", "read_config", "write_info", "take_worker_number", "storage_url", "versions",
           "device_name", "STATES"]

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
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
               "heartbeat_gap", "progress")
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


@dataclass(frozen=True)
class StudyInfo:
    """What a study was made with; a resumed study must match it (else it would mix two experiments)."""

    space: str
    dataset: str
    epochs: Optional[int]
    fraction: Optional[float]
    objectives: tuple[str, ...]
    val_size: Optional[float]
    seed: int
    space_hash: Optional[str] = None  # the space file's content: a changed file is another experiment
    proxy: Mapping[str, Any] = field(default_factory=dict)  # batch size, resolution when not the defaults
    corner: Optional[str] = None  # the corner of the space file searched (None: the whole file)
    rungs: tuple[Mapping[str, Any], ...] = ()  # successive halving: each rung's proxy (Proxy.to_dict), lowest first
    eta: Optional[int] = None  # successive halving: a rung promotes the top 1/eta of its nets

    @property
    def budget(self) -> Optional[Proxy]:
        """The proxy budget the study trained on (None when a study of an early version lacks epochs or fraction)."""
        try:
            return Proxy(self.epochs, self.fraction, self.proxy.get("resolution"), self.proxy.get("batch_size"))
        except (ProxyError, TypeError):
            return None

    def differences(self, stored: "StudyInfo") -> list[tuple[str, Any, Any]]:
        """(field, stored value, this value) for each field that differs; a field the stored info lacks is not compared."""
        out = []
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(stored, f.name)
            if f.name == "space_hash" and (theirs is None or mine is None):
                continue  # a study written before space hashes were stored, or a caller that does not know it
            if mine != theirs:
                out.append((f.name, theirs, mine))
        return out

    def to_attrs(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["objectives"] = list(self.objectives)
        d["proxy"] = dict(self.proxy)
        d["rungs"] = [dict(r) for r in self.rungs]
        if not self.rungs:  # a study without rungs stores what earlier versions stored
            d.pop("rungs")
            d.pop("eta")
        return d

    @classmethod
    def from_attrs(cls, data: Mapping[str, Any]) -> "StudyInfo":
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["objectives"] = tuple(kwargs.get("objectives") or ("accuracy", "flops"))
        kwargs.setdefault("seed", 0)
        for key in ("space", "dataset"):
            kwargs.setdefault(key, "?")
        for key in ("epochs", "fraction", "val_size"):
            kwargs.setdefault(key, None)
        proxy = dict(kwargs.get("proxy") or {})
        if "corner" in proxy:  # stored before the corner left the proxy: the space's, not the budget's
            kwargs.setdefault("corner", proxy.pop("corner"))
        kwargs["proxy"] = proxy
        kwargs["rungs"] = tuple(dict(r) for r in kwargs.get("rungs") or ())
        return cls(**kwargs)


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


def storage_url(name: str, storage: Optional[str] = None, studies_dir: str | Path = "studies") -> str:
    """The storage of a study: the URL given, else its journal file `studies_dir/<name>.journal`."""
    return storage or str(Path(studies_dir) / f"{name}.journal")


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
