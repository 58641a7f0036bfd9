"""Optuna studies of accuracy against FLOPs: config, storage, workers, duplicates, pruning, heartbeats.

The Optuna study is the record. Each trial's user attributes hold the spec (JSON) and its id,
params, FLOPs, acts, the per-epoch validation curve, wall time, images/s, seed, dataset and split
hash, device and versions, so a study opens in optuna-dashboard as it is and `nasx report` needs
nothing else.

Storage: by default an Optuna journal file under `studies/` (`JournalFileBackend`: appends under a
file lock, so N local worker processes share it without SQLite's "database is locked" errors);
`postgresql://...` (or any SQLAlchemy URL) uses Optuna's RDB storage, for workers on many machines.
Workers take trials under a study-wide lock (a file lock beside the journal, a PostgreSQL advisory
lock for RDB), so exactly `trials` trials complete; each running trial writes a heartbeat, and a
trial whose heartbeat is older than `grace` seconds (its worker was killed) is failed and re-queued
with the same parameters by the next worker that looks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from .analysis import pareto_front
from .net.complexity import complexity
from .prune import PruneRule
from .net.spec import NetSpec, SpecError

__all__ = ["StudyConfig", "StudyError", "Snapshot", "Candidate", "run_study", "load_config", "open_storage",
           "redact", "snapshot", "OBJECTIVES"]

# objective name -> (maximize?, user attribute holding its value)
OBJECTIVES = {"accuracy": (True, "val_acc"), "flops": (False, "flops"), "throughput": (True, "images_per_s")}
SAMPLERS = ("nsga2", "tpe", "random")


class StudyError(SpecError):
    """A bad study setting (storage, config, objectives) found before any work starts."""


@dataclass(frozen=True)
class StudyConfig:
    """Everything a study run needs; None means: chosen for the device (see `resolve`)."""

    space: str = "resnext"
    dataset: str = "cifar10"
    data_dir: Optional[str] = None
    download: bool = True
    trials: Optional[int] = None  # COMPLETE trials wanted
    max_trials: Optional[int] = None  # cap on trials trained (complete, pruned, failed); default 3 x trials + 10
    timeout: Optional[float] = None  # seconds; no new trial starts after it
    epochs: Optional[int] = None  # proxy budget
    fraction: Optional[float] = None  # of the training split per epoch
    flops: Optional[tuple[int, int]] = None  # band; default the space's
    params: Optional[tuple[int, int]] = None
    sampler: str = "nsga2"
    study: Optional[str] = None  # default: the space's name
    storage: Optional[str] = None  # default: studies/<study>.journal
    workers: Optional[int] = None  # default: per_gpu x GPUs, 1 on a CPU
    per_gpu: int = 1
    device: str = "auto"
    seed: int = 0
    objectives: tuple[str, ...] = ("accuracy", "flops")
    val_size: Optional[float] = None  # held out of the training split: a share (< 1) or a count; default 0.1 (1000 images in a CPU smoke study)
    batch_size: Optional[int] = None
    prune: bool = True
    prune_quantile: float = 0.5
    prune_min_peers: int = 3
    heartbeat: float = 20.0  # seconds between a running trial's heartbeats
    grace: float = 120.0  # seconds without a heartbeat before a running trial counts as lost
    studies_dir: str = "studies"
    test: bool = False  # also evaluate the test split at the end of each run (final numbers, never for search)
    fixed: bool = False  # train only the queued candidates (nasx edf, nasx ablate), never sample the space

    @property
    def name(self) -> str:
        return self.study or Path(self.space).stem

    @property
    def storage_url(self) -> str:
        return self.storage or str(Path(self.studies_dir) / f"{self.name}.journal")

    @property
    def prune_rule(self) -> Optional[PruneRule]:
        return PruneRule(quantile=self.prune_quantile, min_peers=self.prune_min_peers) if self.prune else None

    def check(self) -> "StudyConfig":
        """Raise StudyError on a setting that cannot work."""
        if self.sampler not in SAMPLERS:
            raise StudyError(f"sampler: {self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown or not self.objectives or self.objectives[:2] != ("accuracy", "flops"):
            raise StudyError(f"objectives: {list(self.objectives)} must start with accuracy, flops "
                             f"(optionally then throughput)")
        for key in ("trials", "max_trials", "epochs", "workers", "per_gpu"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise StudyError(f"{key}: {value!r} must be an integer >= 1")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise StudyError(f"fraction: {self.fraction} must lie in (0, 1]")
        if self.val_size is not None and not (0 <= self.val_size < 1 or (float(self.val_size).is_integer() and self.val_size >= 1)):
            raise StudyError(f"val_size: {self.val_size} must be a share in (0, 1) or a whole number of images")
        if self.timeout is not None and self.timeout <= 0:
            raise StudyError(f"timeout: {self.timeout} must be > 0 seconds")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise StudyError(f"study: {self.name!r} may use letters, digits, '.', '_' and '-' only")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["storage"] = redact(self.storage) if self.storage else None
        return d


def load_config(path: str | Path, **overrides: Any) -> StudyConfig:
    """A StudyConfig from a YAML file under studies/ (keys are StudyConfig's fields), with overrides."""
    from .net.spec import parse_yaml

    path = Path(path)
    try:
        data = parse_yaml(path.read_text()) or {}
    except OSError as e:
        raise StudyError(f"{path}: cannot read ({e.strerror})") from None
    except SpecError as e:
        raise StudyError(f"{path}: {e}") from None
    if not isinstance(data, dict):
        raise StudyError(f"{path}: expected a mapping of study settings")
    known = {f.name for f in dataclasses.fields(StudyConfig)}
    for key in data:
        if key not in known:
            raise StudyError(f"{path}: {key}: unknown setting (known: {', '.join(sorted(known))})")
    from .space import parse_band

    for key in ("flops", "params"):
        if data.get(key) is not None:
            data[key] = parse_band(data[key], key)
    if "objectives" in data:
        data["objectives"] = tuple(data["objectives"])
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return StudyConfig(**data).check()
    except StudyError as e:
        raise StudyError(f"{path}: {e}") from None


def resolve(cfg: StudyConfig, cuda: bool, gpus: int) -> tuple[StudyConfig, list[str]]:
    """Fill the device-dependent defaults; return the config and warnings for the user."""
    notes: list[str] = []
    changes: dict[str, Any] = {}
    if cuda:
        # ~10 minutes on one H100: 5-epoch proxies on 45k images, several per GPU
        changes = {"epochs": cfg.epochs or 5, "fraction": cfg.fraction or 1.0, "trials": cfg.trials or 40,
                   "workers": cfg.workers or max(1, gpus) * cfg.per_gpu}
    else:
        smoke = cfg.trials is None and cfg.epochs is None and cfg.fraction is None
        changes = {"epochs": cfg.epochs or 1, "fraction": cfg.fraction or 0.02, "trials": cfg.trials or 4,
                   "workers": cfg.workers or 1}
        if smoke and cfg.val_size is None:
            changes["val_size"] = 1000
        if smoke:
            notes.append("no GPU: running a small smoke study (4 trials, 1 epoch on 2% of the training set, "
                         "the cheap end of the FLOPs band); pass --trials/--epochs/--fraction to size it yourself")
            changes["smoke"] = True
    changes["max_trials"] = cfg.max_trials or 3 * changes["trials"] + 10
    if changes.get("val_size", cfg.val_size) is None:
        changes["val_size"] = 0.1
    smoke = changes.pop("smoke", False)
    cfg = dataclasses.replace(cfg, **changes)
    if smoke and cfg.flops is None and cfg.params is None and not cfg.fixed:
        from .space import load_space

        band = load_space(cfg.space).flops
        if band is not None:  # the cheapest third of the band's log-range
            cfg = dataclasses.replace(cfg, flops=(band[0], int(band[0] * (band[1] / band[0]) ** (1 / 3))))
    return cfg, notes


# ---------------------------------------------------------------------------------------------
# Storage


def redact(url: str) -> str:
    """The URL with any password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def is_rdb(url: str) -> bool:
    return bool(re.match(r"^[a-z0-9+]+://", url)) and not url.startswith("journal://")


def journal_path(url: str) -> Path:
    return Path(url[len("journal://"):] if url.startswith("journal://") else url)


def open_storage(url: str):
    """An Optuna storage for a journal path or an SQLAlchemy URL; StudyError (password hidden) if it fails."""
    import optuna

    if is_rdb(url):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except Exception as e:  # noqa: BLE001 - driver errors come in many types
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StudyError(f"cannot open storage {redact(url)}: {redact(reason)}") from None
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = journal_path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except OSError as e:
        raise StudyError(f"cannot open storage {path}: {e.strerror}") from None


@contextlib.contextmanager
def study_lock(url: str, name: str, engine_cache: dict) -> Iterator[None]:
    """A lock shared by every worker of the study: PostgreSQL advisory lock, else a file lock."""
    if url.startswith("postgresql"):
        import sqlalchemy

        engine = engine_cache.get(url)
        if engine is None:
            engine = engine_cache[url] = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        key = int.from_bytes(hashlib.sha256(f"nasx:{name}".encode()).digest()[:8], "big", signed=True)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return
    import fcntl

    if is_rdb(url):  # sqlite or another single-machine URL: a lock file keyed by the URL
        lock_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"nasx-{hashlib.sha256(url.encode()).hexdigest()[:16]}.lock"
    else:
        lock_path = journal_path(url).with_suffix(".lock")
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_sampler(name: str, seed: int, worker: int, resumed_at: int = 0):
    """Optuna sampler by name, seeded per worker and per resumption, so that neither concurrent workers
    nor a resumed run replay the same proposals."""
    import optuna

    seed = (seed * 1000 + worker) * 100_003 + resumed_at
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=16)


def create_study(cfg: StudyConfig, storage, worker: int = 0):
    """Create the study, or load it and check it was made with the same space, dataset and budget."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize" if OBJECTIVES[o][0] else "minimize" for o in cfg.objectives]
    study = optuna.create_study(study_name=cfg.name, storage=storage, directions=directions, load_if_exists=True)
    study.sampler = make_sampler(cfg.sampler, cfg.seed, worker, len(study.get_trials(deepcopy=False)))
    identity = {"space": cfg.space, "dataset": cfg.dataset, "epochs": cfg.epochs, "fraction": cfg.fraction,
                "objectives": list(cfg.objectives), "val_size": cfg.val_size, "seed": cfg.seed}
    stored = study.user_attrs.get("nasx")
    if stored is None:
        study.set_user_attr("nasx", identity)
        study.set_user_attr("config", cfg.to_dict())
    else:
        changed = [k for k in identity if stored.get(k) != identity[k]]
        if changed:
            k = changed[0]
            raise StudyError(f"study {cfg.name!r} was made with {k}={stored.get(k)!r}, not {identity[k]!r}; "
                             f"use another --study name or the same settings to resume it")
    if [d.name.lower() for d in study.directions] != directions:
        raise StudyError(f"study {cfg.name!r} has other objectives; use another --study name")
    return study


# ---------------------------------------------------------------------------------------------
# Progress snapshots (read from the storage, so they cover every worker and machine)


@dataclass
class Snapshot:
    """Counts by state and the current front: (number, val acc, flops, description)."""

    complete: int = 0
    running: int = 0
    pruned: int = 0
    failed: int = 0
    waiting: int = 0
    front: list[tuple[int, float, int, str]] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def started(self) -> int:
        return self.complete + self.running + self.pruned + self.failed


def snapshot(study, objectives: Sequence[str] = ("accuracy", "flops")) -> Snapshot:
    """Count the study's trials by state and compute its accuracy-vs-FLOPs front."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    snap = Snapshot()
    done = []
    for t in trials:
        if t.state == TrialState.COMPLETE:
            snap.complete += 1
            done.append(t)
        elif t.state == TrialState.RUNNING:
            snap.running += 1
        elif t.state == TrialState.PRUNED:
            snap.pruned += 1
        elif t.state == TrialState.FAIL:
            snap.failed += 1
        elif t.state == TrialState.WAITING:
            snap.waiting += 1
    points = [(t.values[0], t.values[1]) for t in done]
    for i in pareto_front(points, (True, False)) if points else []:
        t = done[i]
        snap.front.append((t.number, t.values[0], int(t.values[1]), t.user_attrs.get("description", "")))
    snap.front.sort(key=lambda row: row[2])
    return snap


# ---------------------------------------------------------------------------------------------
# One worker


class Heartbeat:
    """A daemon thread writing the running trial's `heartbeat` user attribute every `interval` seconds."""

    def __init__(self, storage, interval: float):
        self.storage, self.interval = storage, interval
        self.trial_id: Optional[int] = None
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="nasx-heartbeat")
        self._thread.start()

    def watch(self, trial_id: Optional[int]) -> None:
        with self._lock:
            self.trial_id = trial_id
        if trial_id is not None:
            self._beat(trial_id)

    def _beat(self, trial_id: int) -> None:
        with contextlib.suppress(Exception):  # a finished trial refuses attributes; that is fine
            self.storage.set_trial_user_attr(trial_id, "heartbeat", time.time())

    def _run(self) -> None:
        while not self._wake.wait(self.interval):
            with self._lock:
                trial_id = self.trial_id
            if trial_id is not None:
                self._beat(trial_id)

    def close(self) -> None:
        self._wake.set()


def reap_stale(study, grace: float, max_retries: int = 2) -> list[int]:
    """Fail RUNNING trials whose heartbeat is older than `grace` s and re-queue their parameters."""
    from optuna.trial import TrialState

    now = time.time()
    reaped = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        last = t.user_attrs.get("heartbeat")
        if last is None and t.datetime_start is not None:
            last = t.datetime_start.timestamp()
        if last is None or now - last <= grace:
            continue
        storage = study._storage
        try:
            storage.set_trial_user_attr(t._trial_id, "fail_reason", f"lost: no heartbeat for {now - last:.0f} s")
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except Exception:  # noqa: BLE001 - it finished meanwhile
            continue
        reaped.append(t.number)
        retries = t.user_attrs.get("retries", 0)
        if retries < max_retries and t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, "retries": retries + 1},
                                skip_if_exists=False)
    return reaped


def versions() -> dict[str, str]:
    import optuna
    import torch

    from . import __version__

    return {"nasx": __version__, "torch": torch.__version__, "optuna": optuna.__version__,
            "python": platform.python_version()}


def device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}"


@dataclass
class Worker:
    """One process's share of a study: asks for trials under the study lock, trains, tells."""

    cfg: StudyConfig
    index: int = 0
    train_fn: Optional[Callable] = None
    on_event: Optional[Callable[[str], None]] = None

    def run(self, deadline: Optional[float] = None) -> int:
        """Run trials until the study has `trials` complete ones (or max_trials started, or the deadline);
        return how many this worker finished."""
        from optuna.trial import TrialState

        from . import data as nasx_data
        from .space import load_space
        from .train import Budget, TrainConfig, resolve_device, train

        if self.cfg.val_size is None:
            self.cfg = dataclasses.replace(self.cfg, val_size=0.1)
        cfg = self.cfg
        if cfg.trials is None or cfg.epochs is None or cfg.fraction is None:
            raise StudyError("a worker needs trials, epochs and fraction set (see nasx.study.resolve)")
        max_trials = cfg.max_trials or 3 * cfg.trials + 10
        train_fn = self.train_fn or train
        storage = open_storage(cfg.storage_url)
        study = create_study(cfg, storage, self.index)
        dataset = nasx_data.load(cfg.dataset, data_dir=cfg.data_dir, val_size=cfg.val_size, seed=cfg.seed,
                                 download=cfg.download)
        space = None if cfg.fixed else load_space(cfg.space).at(dataset.train_x.shape[-1])
        device = resolve_device(cfg.device)
        dataset = dataset.to(device)  # once per worker, not once per trial
        budget = Budget(epochs=cfg.epochs, fraction=cfg.fraction)
        train_config = TrainConfig(batch_size=cfg.batch_size)
        context = {"seed": cfg.seed, "dataset": dataset.name, "split_hash": dataset.split_hash,
                   "device": device_name(device), "versions": versions(), "worker": self.index,
                   "budget": {"epochs": cfg.epochs, "fraction": cfg.fraction}}
        engines: dict = {}
        heartbeat = Heartbeat(storage, cfg.heartbeat)
        finished = 0
        try:
            while deadline is None or time.time() < deadline:
                with study_lock(cfg.storage_url, cfg.name, engines):
                    reap_stale(study, cfg.grace)
                    trials = study.get_trials(deepcopy=False)
                    states = [t.state for t in trials]
                    complete = states.count(TrialState.COMPLETE)
                    pending = states.count(TrialState.RUNNING) + states.count(TrialState.WAITING)
                    # structures the space rejected cost no training: they have their own, larger cap
                    rejected = sum(1 for t in trials if "rejected" in t.user_attrs)
                    started = len(trials) - states.count(TrialState.WAITING) - rejected
                    if complete >= cfg.trials or started >= max_trials or rejected >= 20 * max_trials:
                        break
                    waiting = states.count(TrialState.WAITING)
                    if cfg.fixed:
                        if not waiting and not states.count(TrialState.RUNNING):
                            break  # every candidate has run
                        trial = study.ask() if waiting else None
                    else:
                        trial = study.ask() if complete + pending < cfg.trials or waiting else None
                if trial is None:  # the others' running trials may still complete the study: wait for them
                    time.sleep(min(2.0, cfg.heartbeat))
                    continue
                heartbeat.watch(trial._trial_id)
                try:
                    self._run_trial(study, trial, space, dataset, device, budget, train_config, train_fn, context)
                finally:
                    heartbeat.watch(None)
                finished += 1
        finally:
            heartbeat.close()
        return finished

    def _say(self, message: str) -> None:
        if self.on_event is not None:
            self.on_event(message)

    def _run_trial(self, study, trial, space, dataset, device, budget, train_config, train_fn, context) -> None:
        import optuna
        from optuna.trial import TrialState

        cfg = self.cfg

        def tell(state=None, values=None) -> None:
            try:
                study.tell(trial, values, state=state) if state is not None else study.tell(trial, values)
            except (ValueError, RuntimeError):  # failed meanwhile by another worker as stale: keep its verdict
                pass

        try:
            fixed = trial.user_attrs.get("candidate")
            if fixed is not None:
                spec = adapt_to(NetSpec.from_dict(fixed), dataset)
                cx = complexity(spec)
                for key, value in (("spec", spec.to_dict()), ("spec_id", spec.id), ("flops", cx.flops),
                                   ("params", cx.params), ("acts", cx.acts)):
                    trial.set_user_attr(key, value)
            else:
                try:
                    spec = space.suggest(trial, flops=cfg.flops, params=cfg.params)
                except optuna.TrialPruned:
                    tell(TrialState.PRUNED)
                    return
            seed = trial.user_attrs.get("seed", cfg.seed)
            for key, value in context.items():
                if key not in trial.user_attrs:  # a candidate's own seed stays
                    trial.set_user_attr(key, value)
            trial.set_user_attr("description", spec.describe())
            flops = trial.user_attrs["flops"]
            original = None if fixed is not None else self._find_duplicate(study, spec.id, trial.number)
            if original is not None:
                for key in ("val_acc", "curve", "train_loss", "wall_time", "images_per_s", "epochs_run", "test_acc"):
                    if key in original.user_attrs:
                        trial.set_user_attr(key, original.user_attrs[key])
                trial.set_user_attr("duplicate_of", original.number)
                tell(values=list(original.values))
                self._say(f"trial {trial.number}: same spec as trial {original.number}, result reused")
                return
            rule = None if cfg.fixed else cfg.prune_rule  # a pruned candidate would bias an EDF or ablation
            curve: list[float] = []

            def on_epoch(report) -> bool:
                curve.append(report.val_acc)
                trial.set_user_attr("curve", list(curve))
                if rule is None:
                    return False
                peers = [(t.user_attrs.get("flops", math.inf), t.user_attrs.get("curve", []))
                         for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
                reason = rule.check(report.epoch, report.epochs, report.val_acc, flops, peers)
                if reason:
                    trial.set_user_attr("prune_reason", reason)
                return bool(reason)

            kwargs = {"test": True} if cfg.test else {}
            result = train_fn(spec, dataset, budget, device=device, seed=seed, callback=on_epoch,
                              config=train_config, **kwargs)
            attrs = {"curve": list(result.val_acc), "train_loss": list(result.train_loss),
                     "wall_time": result.wall_time, "images_per_s": result.images_per_s,
                     "epochs_run": result.epochs_done, "reason": result.reason,
                     "peak_memory_bytes": result.peak_memory_bytes}
            if result.final_val_acc is not None:
                attrs["val_acc"] = result.final_val_acc
            if result.test_acc is not None:
                attrs["test_acc"] = result.test_acc
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            if result.reason == "completed":
                values = {"accuracy": result.final_val_acc, "flops": flops, "throughput": result.images_per_s}
                tell(values=[values[o] for o in cfg.objectives])
            elif result.reason == "pruned":
                tell(TrialState.PRUNED)
            else:  # nan, oom: this net failed; the study goes on
                trial.set_user_attr("fail_reason", result.reason + (f": {result.error}" if result.error else ""))
                tell(TrialState.FAIL)
            self._say(f"trial {trial.number}: {result.reason}")
        except KeyboardInterrupt:
            with contextlib.suppress(Exception):
                trial.set_user_attr("fail_reason", "interrupted")
            tell(TrialState.FAIL)
            raise
        except Exception as e:  # noqa: BLE001 - one broken trial must not end a long study
            with contextlib.suppress(Exception):
                trial.set_user_attr("fail_reason", f"error: {type(e).__name__}: {e}"[:500])
            tell(TrialState.FAIL)
            self._say(f"trial {trial.number}: failed ({type(e).__name__}: {e})")

    @staticmethod
    def _find_duplicate(study, spec_id: str, number: int):
        from optuna.trial import TrialState

        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.number != number and t.user_attrs.get("spec_id") == spec_id:
                return t
        return None


def adapt_to(spec: NetSpec, dataset) -> NetSpec:
    """The spec with the dataset's image side, channels and classes (what the trainer will build)."""
    x = dataset.train_x
    return spec.replace(resolution=int(x.shape[-1]), in_channels=int(x.shape[1]), num_classes=len(dataset.classes))


@dataclass(frozen=True)
class Candidate:
    """A net to train in a fixed study (nasx edf, nasx ablate): spec, seed and labels kept as user attributes."""

    spec: NetSpec
    seed: int = 0
    tags: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.spec.id}:{self.seed}"


def enqueue(study, candidates: Sequence[Candidate]) -> int:
    """Queue the candidates the study has not seen yet (by spec id and seed); return how many were added."""
    seen = {t.user_attrs.get("candidate_key") for t in study.get_trials(deepcopy=False)}
    added = 0
    for c in candidates:
        if c.key in seen:
            continue
        study.enqueue_trial({}, user_attrs={"candidate": c.spec.to_dict(), "candidate_key": c.key, "seed": c.seed,
                                            **{f"tag_{k}": v for k, v in c.tags.items()}}, skip_if_exists=False)
        seen.add(c.key)
        added += 1
    return added


def _worker_process(cfg: StudyConfig, index: int, env: dict[str, str], deadline: Optional[float],
                    train_fn: Optional[Callable]) -> None:
    """Entry point of a spawned worker process."""
    os.environ.update(env)
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        Worker(cfg, index, train_fn).run(deadline)
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------------------------------------
# The whole run


@dataclass
class RunSummary:
    """What `run_study` did."""

    config: StudyConfig
    snapshot: Snapshot
    interrupted: bool
    notes: list[str]
    wall_time: float


def prepare(cfg: StudyConfig):
    """Check everything before any work: space and band, data, storage. Returns (config, notes)."""
    import numpy as np
    import torch

    from . import data as nasx_data
    from .space import load_space

    cfg.check()
    cuda = torch.cuda.is_available() and cfg.device in ("auto", "cuda") or cfg.device.startswith("cuda")
    cfg, notes = resolve(cfg, cuda, torch.cuda.device_count() if cuda else 0)
    dataset = nasx_data.load(cfg.dataset, data_dir=cfg.data_dir, val_size=cfg.val_size, seed=cfg.seed,
                             download=cfg.download)  # also fills the decoded cache the workers read
    if not cfg.fixed:
        space = load_space(cfg.space).at(dataset.train_x.shape[-1])
        space.sample(np.random.default_rng(cfg.seed), 1, flops=cfg.flops, params=cfg.params)  # band reachable?
    create_study(cfg, open_storage(cfg.storage_url))
    return cfg, notes


def run_study(cfg: StudyConfig, progress: Callable[[Snapshot], None] | None = None,
              train_fn: Optional[Callable] = None, poll: float = 2.0,
              candidates: Optional[Sequence[Candidate]] = None,
              on_note: Optional[Callable[[str], None]] = None) -> RunSummary:
    """Run (or resume) a study: one worker in this process, or `workers` spawned processes.

    With `candidates`, the study trains exactly those (spec, seed) pairs it has not trained yet and
    samples nothing (resumable like any study; no pruning)."""
    import multiprocessing as mp

    import torch

    start = time.time()
    if candidates is not None:
        cfg = dataclasses.replace(cfg, fixed=True, trials=max(1, len({c.key for c in candidates})), prune=False)
    cfg, notes = prepare(cfg)
    for note in notes if on_note is not None else ():
        on_note(note)
    if candidates is not None:
        enqueue(create_study(cfg, open_storage(cfg.storage_url)), candidates)
    deadline = start + cfg.timeout if cfg.timeout else None
    study = create_study(cfg, open_storage(cfg.storage_url))
    interrupted = False
    stop = threading.Event()

    def monitor() -> None:
        while not stop.wait(poll):
            if progress is not None:
                with contextlib.suppress(Exception):
                    snap = snapshot(study, cfg.objectives)
                    snap.elapsed = time.time() - start
                    progress(snap)

    if cfg.workers == 1:
        watcher = threading.Thread(target=monitor, daemon=True)
        watcher.start()
        try:
            Worker(cfg, 0, train_fn).run(deadline)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            stop.set()
    else:
        gpus = list(range(torch.cuda.device_count())) if cfg.device in ("auto", "cuda") else []
        ctx = mp.get_context("spawn")
        procs = []
        for i in range(cfg.workers):
            env = {"CUDA_VISIBLE_DEVICES": str(gpus[(i // cfg.per_gpu) % len(gpus)])} if gpus else {}
            p = ctx.Process(target=_worker_process, args=(cfg, i, env, deadline, train_fn), daemon=False)
            p.start()
            procs.append(p)
        try:
            while any(p.is_alive() for p in procs):
                for p in procs:
                    p.join(timeout=poll / len(procs))
                if progress is not None:
                    snap = snapshot(study, cfg.objectives)
                    snap.elapsed = time.time() - start
                    progress(snap)
        except KeyboardInterrupt:
            interrupted = True
            for p in procs:
                p.join(timeout=30)
            for p in procs:
                if p.is_alive():
                    p.terminate()
    snap = snapshot(study, cfg.objectives)
    snap.elapsed = time.time() - start
    if progress is not None:
        progress(snap)
    return RunSummary(config=cfg, snapshot=snap, interrupted=interrupted, notes=notes, wall_time=time.time() - start)


def config_json(cfg: StudyConfig) -> str:
    return json.dumps(cfg.to_dict(), indent=1, default=str)
