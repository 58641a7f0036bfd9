"""A study's settings: `StudyConfig`, read from a study file (`load_config`), and `resolve`, the one place
where defaults that depend on the machine are chosen."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import NasxError
from ..train.cores import cpu_cores
from ..train.budget import MIN_RESOLUTION, Budget, BudgetError, Ladder
from .prune import PruneRule
from .record import Shelf

__all__ = ["StudyConfig", "StudyError", "load_config", "resolve", "redact", "study_space", "check_resolution", "check_memory",
           "OBJECTIVES", "SAMPLERS", "CPU_DEFAULT", "CPU_BUDGET", "BUDGET_KEYS", "MIN_RESOLUTION", "cpu_cores"]

# objective name -> maximize?
OBJECTIVES = {"accuracy": True, "flops": False, "throughput": True}
SAMPLERS = ("nsga2", "tpe", "random")


class StudyError(NasxError, ValueError):
    """A bad study setting (storage, config, objectives) found before any work starts."""


_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_USERINFO_IN_TEXT = re.compile(rf"({_SCHEME}[^\s:/]*):\S*@")  # greedy: up to the word's last '@'
_PASSWORD_PARAM = re.compile(r"(?i)\b(password=)[^&\s]*")


def redact(text: str) -> str:
    """A URL (or a message quoting URLs) with every password (user:PASSWORD@, password=...) replaced by ***."""
    head = re.match(_SCHEME, text)
    if head is not None and "@" in text:
        # one whole URL: its user info ends at the LAST '@', whatever the password holds (a raw '@', '/', ' '),
        # and may have an empty user name (postgresql://:PASSWORD@host/db)
        userinfo, host = text[head.end():].rsplit("@", 1)
        if ":" in userinfo:
            text = f"{head.group()}{userinfo.split(':', 1)[0]}:***@{host}"
    else:
        text = _USERINFO_IN_TEXT.sub(r"\1:***@", text)
    return _PASSWORD_PARAM.sub(r"\1***", text)


@dataclass(frozen=True)
class StudyConfig:
    """Everything a study run needs; None means: chosen for the machine (see `resolve`)."""

    space: str = "resnext"
    dataset: str = "cifar10"
    data_dir: Optional[str] = None
    download: bool = True
    trials: Optional[int] = None  # COMPLETE trials wanted
    max_trials: Optional[int] = None  # cap on trials trained (complete, pruned, failed); default 3 x trials + 10
    timeout: Optional[float] = None  # seconds; no new trial starts after it
    # the proxy budget (epochs, share of the training split, image side, batch); partial where the user gave only
    # some parts: `resolve` fills epochs and fraction for the machine (with rungs: the top rung's), so it ends whole
    budget: Optional[Budget] = None
    flops: Optional[tuple[int, int]] = None  # band; default the space's
    params: Optional[tuple[int, int]] = None
    sampler: Optional[str] = None  # nsga2, tpe or random; default nsga2 (random in a study with rungs, as ASHA draws)
    study: Optional[str] = None  # default: the space's name
    storage: Optional[str] = None  # default: studies/<study>.journal
    workers: Optional[int] = None  # default: per_gpu x GPUs; on a CPU one per core for the default study, else 1
    threads: Optional[int] = None  # torch threads in each worker process nasx starts; default on a CPU: cores // workers
    per_gpu: int = 1
    device: str = "auto"
    seed: int = 0
    objectives: tuple[str, ...] = ("accuracy", "flops")
    val_size: Optional[float] = None  # held out of the training split: a share (< 1) or a count; default 0.1
    prune: bool = True
    prune_quantile: float = 0.5
    prune_min_peers: int = 3
    heartbeat: float = 20.0  # seconds between a running trial's heartbeats
    grace: float = 120.0  # seconds without a heartbeat before a running trial counts as lost
    studies_dir: str = "studies"
    test: bool = False  # also evaluate the test split at the end of each run (final numbers, never for search)
    fixed: bool = False  # train only the queued candidates (nasx edf, nasx ablate), never sample the space
    corner: Optional[str] = None  # search this corner of the space file (e.g. "cpu"); "none": the whole space
    # successive halving: the rungs' budgets lowest first (the top one is the study's budget) and eta, a rung
    # promoting the top 1/eta of its nets; or schedule "asha" to derive three rungs from the study's budget (eta: its
    # reduction factor, default 3)
    rungs: Optional[Ladder] = None
    eta: Optional[int] = None
    schedule: Optional[str] = None
    # with rungs: each rung trains as a prefix of the top rung's run (warm-up, stable rate, a decay branch off a
    # checkpoint of the pre-decay state), so a promotion trains on from that checkpoint instead of retraining
    # (opt-in: `--continue`; docs/rungs.md); the checkpoints beside the study hold at most checkpoint_cap bytes
    continuation: bool = False
    checkpoint_cap: int = 2_000_000_000
    # with rungs: rank a rung's nets by their predicted top-rung error once enough nets reached the top (opt-in,
    # `--predict`; nasx.study.rungs.rung_standing), else by their error at the rung
    predict_promotions: bool = False

    @property
    def name(self) -> str:
        return self.study or Path(self.space).stem

    @property
    def shelf(self) -> Shelf:
        """Where this study and its companions (zoo references, repeats) are stored."""
        return Shelf(self.storage, self.studies_dir)

    @property
    def storage_url(self) -> str:
        return self.shelf.url(self.name)

    @property
    def checkpoint_dir(self) -> Path:
        """Where a study in continue mode keeps its trials' checkpoints: beside its journal (<journal folder>/
        <study>.ckpt), else (a database) in the studies folder."""
        url = self.storage_url
        base = Path(url[len("journal://"):]).parent if url.startswith("journal://") else \
            Path(self.studies_dir) if re.match(r"^[a-z0-9+]+://", url) else Path(url).parent
        return base / f"{self.name}.ckpt"

    def with_budget(self, budget: Budget) -> "StudyConfig":
        """This study trained on `budget` (its batch size where it names one, else this config's)."""
        batch = self.budget.batch_size if self.budget is not None else None
        return dataclasses.replace(self, budget=budget.filled(batch_size=batch))

    @property
    def budgets(self) -> tuple[Budget, ...]:
        """The budgets its trials train on, lowest first: its rungs', else its one budget (once `resolve` made it
        whole)."""
        if self.rungs:
            return self.rungs.budgets
        if self.budget is None or not self.budget.whole:
            raise StudyError(f"budget {(self.budget or Budget(None, None)).name}: epochs and fraction are not chosen "
                             f"yet (see nasx.study.resolve)")
        return (self.budget,)

    @property
    def prune_rule(self) -> Optional[PruneRule]:
        """The rule that stops hopeless trials early (none in a study with rungs: the rungs are its pruning)."""
        if not self.prune or self.rungs:
            return None
        return PruneRule(quantile=self.prune_quantile, min_peers=self.prune_min_peers)

    def check(self) -> "StudyConfig":
        """Raise StudyError on a setting that cannot work."""
        self._check_types()
        if self.seed < 0:
            raise StudyError(f"seed: {self.seed} must be a whole number >= 0")
        if self.study is not None and not self.study:
            raise StudyError("study: '' is an empty name; leave it out for the space's name")
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise StudyError(f"sampler: {self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown or not self.objectives or tuple(self.objectives[:2]) != ("accuracy", "flops"):
            raise StudyError(f"objectives: {list(self.objectives)} must start with accuracy, flops "
                             f"(optionally then throughput)")
        for key in ("trials", "max_trials", "workers", "threads", "per_gpu"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise StudyError(f"{key}: {value!r} must be a whole number >= 1")
        if self.val_size is not None and not (0 < self.val_size < 1 or (float(self.val_size).is_integer()
                                                                         and self.val_size >= 1)):
            raise StudyError(f"val_size: {self.val_size} must be a share in (0, 1) or a whole number of images")
        self._check_rungs()
        if self.timeout is not None and self.timeout <= 0:
            raise StudyError(f"timeout: {self.timeout} must be > 0 seconds")
        if self.heartbeat <= 0 or self.grace <= self.heartbeat:
            raise StudyError(f"heartbeat {self.heartbeat} s and grace {self.grace} s: need 0 < heartbeat < grace")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise StudyError(f"study: {self.name!r} may use letters, digits, '.', '_' and '-' only")
        if self.data_dir is not None and not Path(self.data_dir).expanduser().is_dir():
            raise StudyError(f"--data-dir {self.data_dir}: no such folder")
        if self.device not in ("auto", "cpu"):  # torch only for a device it must look for
            from ..train.trainer import resolve_device

            try:
                resolve_device(self.device)
            except ValueError as e:
                raise StudyError(str(e)) from None
        return self

    def _check_types(self) -> None:
        """Each setting of the type its field declares (a study file may hold anything): whole numbers, finite
        numbers, text, true/false, a band of two whole numbers, a list of names."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = f.type.removeprefix("Optional[").removesuffix("]") if f.type.startswith("Optional[") else f.type
            if value is None and f.type.startswith("Optional["):
                continue
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = {"int": isinstance(value, int) and not isinstance(value, bool),
                  "float": number and math.isfinite(value),
                  "str": isinstance(value, (str, os.PathLike)), "bool": isinstance(value, bool),
                  "tuple[int, int]": isinstance(value, tuple) and len(value) == 2 and all(
                      isinstance(v, int) and not isinstance(v, bool) for v in value),
                  "tuple[str, ...]": isinstance(value, tuple) and all(isinstance(v, str) for v in value),
                  "Budget": isinstance(value, Budget),  # its parts checked when it was made
                  "Ladder": True}[kind]  # a ladder: _check_rungs
            if not ok:
                wanted = {"int": "a whole number", "float": "a finite number", "str": "text", "bool": "true or false",
                          "tuple[int, int]": "a band LO:HI", "tuple[str, ...]": "a list of names",
                          "Budget": "a nasx.train.budget.Budget (in a study file: budget: e1-f0.5)"}[kind]
                raise StudyError(f"{f.name}: {value!r} must be {wanted}")

    def _check_rungs(self) -> None:
        if self.eta is not None and (isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2):
            raise StudyError(f"eta: {self.eta!r} must be a whole number >= 2")
        if self.schedule not in (None, "asha"):
            raise StudyError(f"schedule: {self.schedule!r} is not one of: asha")
        if self.rungs is not None and not isinstance(self.rungs, Ladder):
            raise StudyError(f"rungs: {self.rungs!r} is not a Ladder (nasx.train.budget.Ladder.parse reads names)")
        if self.eta is not None and self.rungs:
            raise StudyError("eta: a ladder of rungs holds its own eta")
        if self.schedule and self.rungs:
            raise StudyError("give --rungs or --schedule asha, not both (asha derives the rungs from the budget)")
        if (self.rungs or self.schedule) and self.fixed:
            raise StudyError("rungs: a fixed list of nets (edf, ablate, references) trains on one budget")
        if self.predict_promotions and not (self.rungs or self.schedule):
            raise StudyError("predict: ranks a rung's promotions; it needs --rungs or --schedule asha")
        if self.continuation and not (self.rungs or self.schedule):
            raise StudyError("continue: trains a promotion on from its rung's checkpoint; it needs --rungs or "
                             "--schedule asha")
        if self.rungs is None:
            return
        top = self.rungs.budgets[-1]
        if self.continuation and any(b.resolution != top.resolution for b in self.rungs.budgets):
            raise StudyError(f"continue: every rung must train at the top rung's side ({self.rungs.names}); a rung "
                             f"at another side cannot be continued")
        own = self.budget or Budget(None, None)  # a batch alone is the study's batch on every rung
        if (own.epochs, own.fraction, own.resolution) not in ((None, None, None), (top.epochs, top.fraction,
                                                                                 top.resolution)):
            raise StudyError(f"rungs: the top rung {top.name} is the study's budget; leave out epochs, fraction, "
                             f"resolution and batch size")

    def to_dict(self) -> dict[str, Any]:
        """The stored form (the study's `config` attribute): its budget as `Budget.to_dict`, its rungs by name and
        their eta."""
        d = dataclasses.asdict(dataclasses.replace(self, rungs=None, budget=None))
        d["budget"] = self.budget.to_dict() if self.budget is not None else None
        d["storage"] = redact(self.storage) if self.storage else None
        if self.rungs:
            d["rungs"], d["eta"] = self.rungs.names, self.rungs.eta
        return d


# a study file's keys for the parts of its budget, beside `budget: e1-f0.5` (users' files name them one by one)
BUDGET_KEYS = ("epochs", "fraction", "resolution", "batch_size")


def load_config(path: str | Path, **overrides: Any) -> StudyConfig:
    """A StudyConfig from a YAML file under studies/ (keys are StudyConfig's fields, the budget either as `budget:
    e1-f0.5` or by its parts: epochs, fraction, resolution, batch_size), with overrides (an override's budget
    replaces the parts it gives)."""
    from ..net.spec import SpecError, parse_yaml, read_text
    from ..space import parse_band

    path = Path(path)
    text = read_text(path)  # a SpecError names the file
    try:
        data = parse_yaml(text)
    except SpecError as e:
        raise StudyError(f"{path}: {e}") from None
    if data is None:
        raise StudyError(f"{path}: empty; a study file is a mapping of settings (see `nasx explore --help`)")
    if not isinstance(data, dict):
        raise StudyError(f"{path}: expected a mapping of study settings")
    known = {f.name for f in dataclasses.fields(StudyConfig)} | set(BUDGET_KEYS)
    for key in data:
        if key not in known:
            raise StudyError(f"{path}: {key}: unknown setting (known: {', '.join(sorted(known))})")
    try:
        for key in ("flops", "params"):
            if data.get(key) is not None:
                data[key] = parse_band(data[key], key)
        data["budget"] = _file_budget(data, overrides.pop("budget", None))
        if data.get("rungs") is not None:  # names, comma-separated or a list, lowest first; eta goes with them
            names = data["rungs"] if isinstance(data["rungs"], str) else ",".join(map(str, data["rungs"]))
            try:
                data["rungs"] = Ladder.parse(names, data.pop("eta", None) or 3)
            except BudgetError as e:
                raise StudyError(f"rungs: {e}") from None
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}  # YAML lists: the fields' tuples
        data.update({k: v for k, v in overrides.items() if v is not None})
        return StudyConfig(**data).check()
    except (NasxError, TypeError) as e:
        raise StudyError(f"{path}: {e}") from None


def _file_budget(data: dict[str, Any], override: Optional[Budget]) -> Optional[Budget]:
    """The budget of a study file's mapping (popping its keys: `budget`, or the parts), with the parts `override`
    gives in place of the file's."""
    parts = {key: data.pop(key) for key in BUDGET_KEYS if key in data}
    given = data.pop("budget", None)
    if given is not None and parts:
        raise StudyError(f"budget: give it as budget: e1-f0.5 or by its parts ({', '.join(parts)}), not both")
    if isinstance(given, dict):
        unknown = sorted(set(given) - set(BUDGET_KEYS))
        if unknown:
            raise StudyError(f"budget: {unknown[0]}: unknown part (known: {', '.join(BUDGET_KEYS)})")
        budget = Budget.given(**given)
    elif given is not None:
        budget = Budget.parse(str(given))
    else:
        budget = Budget.given(**parts)
    if override is None or budget is None:
        return override or budget
    return override.filled(**dataclasses.asdict(budget))


# The CPU study `nasx explore` runs with no sizing options: about 15 minutes, real accuracies (measured on a
# 2-core machine, 2026-11-27: one pass over half the training split lifts a ~15 MFLOP net of the resnext
# space's `cpu` corner to ~40% validation accuracy in under a minute; see docs/benchmarks.md). `trials` is per
# concurrent trial: the timeout, not the count, ends it.
CPU_DEFAULT = {"trials": 10, "val_size": 2000,
               "timeout": 660.0}  # no trial starts after 11 minutes: the last one and the references end by ~15
CPU_BUDGET = Budget(1, 0.5, batch_size=128)  # its budget; a study sized by the user takes its epochs and fraction
# Threads per trial of the CPU default: these nets are too small for one trial to keep several cores busy, and
# threads that wait for each other spin; concurrent one-thread trials trained more images/s than one trial with
# every thread (docs/benchmarks.md, "CPU cores: concurrent trials vs threads")
CPU_THREADS_PER_TRIAL = 1


def study_space(cfg: StudyConfig):
    """The space the study searches: the file, or the corner of it that the config names."""
    from ..space import load_space

    space = load_space(cfg.space)
    return space.corner(cfg.corner) if cfg.corner not in (None, "none") else space


def check_resolution(cfg: StudyConfig, space, shape, draws: int = 32) -> None:
    """StudyError when the proxy side (cfg.budget.resolution) is below the smallest side that nets of the space
    (drawn in the study's band at the data's input) accept: their grid would collapse and every trial fail."""
    import numpy as np

    from ..net.fit import smallest_side
    from ..space import SpaceError
    from ..space.sampling import sample

    side = cfg.budget.resolution if cfg.budget is not None else None
    if side is None or space is None:
        return
    drawn: list = []
    try:
        sample(space.at(shape), np.random.default_rng(cfg.seed), draws, flops=cfg.flops, params=cfg.params,
               max_draws=20 * draws, on_accept=drawn.append)
    except SpaceError:  # a small space (fewer distinct members): judge those drawn
        if not drawn:
            return
    sides = [(smallest_side(s.spec, shape.resolution), s.spec) for s in drawn]
    need, spec = max(sides, key=lambda t: t[0])
    if side < need:
        raise StudyError(f"resolution: {side} px is too small for the space {space.name!r}: its nets need "
                         f"at least {need} px (e.g. {spec.describe()}); give --resolution {need} or more")


def check_memory(cfg: StudyConfig, images: int, shape, specs, memory: int) -> None:
    """StudyError when the proxy side (cfg.budget.resolution) cannot fit in `memory` bytes: the data resized to it
    plus the largest of `specs` (weights and one batch's activations, by the analytic count); a lower bound of the
    need, so nothing that fits is refused."""
    from ..net.complexity import complexity
    from ..train.memory import MemoryNeed

    budget = cfg.budget or Budget(None, None)
    side = budget.resolution
    if side is None or side <= shape.resolution:
        return
    counts = [complexity(spec, side) for spec in specs]
    need = MemoryNeed.of(images=images, channels=shape.in_channels, side=side,
                         params=max((c.params for c in counts), default=0),
                         acts=max((c.acts for c in counts), default=0),
                         batch=budget.batch_for(cuda=False))  # the trainer's smaller default (CPU)
    refusal = need.refusal(memory)
    if refusal:
        raise StudyError(f"resolution: {side} px {refusal}; give a smaller side (--resolution, or -r in a budget's "
                         f"name)")


def resolve(cfg: StudyConfig, cuda: bool, gpus: int) -> tuple[StudyConfig, list[str]]:
    """Fill the machine-dependent defaults (the one place they are chosen); return the config and notes."""
    notes: list[str] = []
    budget = cfg.budget or Budget(None, None)
    # sized by the user, not by the rungs
    sized = cfg.trials is not None or budget.epochs is not None or budget.fraction is not None
    trials_given = cfg.trials is not None
    if cfg.rungs:  # the top rung is the study's budget
        budget = cfg.rungs.budgets[-1].filled(batch_size=budget.batch_size)
    if cuda:
        # ~10 minutes on one H100: 5-epoch proxies on 45k images, several per GPU
        changes: dict[str, Any] = {"budget": budget.filled(epochs=5, fraction=1.0),
                                   "trials": cfg.trials or 40, "workers": cfg.workers or max(1, gpus) * cfg.per_gpu}
    else:
        cores = cpu_cores()
        # the default study splits the cores into concurrent trials; a sized one, or a fixed list, runs one at a time
        # in this process unless --workers says otherwise
        workers = cfg.workers or (1 if sized or cfg.fixed else max(1, cores // CPU_THREADS_PER_TRIAL))
        changes = {"workers": workers, "threads": cfg.threads or max(1, cores // workers)}
        for key, value in CPU_DEFAULT.items():
            if getattr(cfg, key) is None and not sized:
                changes[key] = value * workers if key == "trials" else value
        changes.setdefault("trials", cfg.trials or CPU_DEFAULT["trials"])
        fill = CPU_BUDGET if not sized else Budget(CPU_BUDGET.epochs, CPU_BUDGET.fraction)  # sized: the trainer's batch
        changes["budget"] = budget = budget.filled(**dataclasses.asdict(fill))
        if not cfg.fixed and cfg.corner is None:
            from ..space import load_space

            if "cpu" in load_space(cfg.space).corners:
                changes["corner"] = "cpu"
        if not sized:
            corner = changes.get("corner")
            where = (f"the space's `cpu` corner (small, shallow nets that learn in one pass)" if corner else
                     "the whole space")
            threads = changes["threads"]
            at_once = (f"{workers} trials at a time with {threads} thread{'s' * (threads > 1)} each (more images/s than "
                       f"one with {cores} threads; --workers 1 for that)" if workers > 1 else
                       f"one trial at a time with {threads} thread{'s' * (threads > 1)}")
            notes.append(f"no GPU: a CPU study of about 15 minutes on {cores} core{'s' * (cores > 1)}: {at_once}, up "
                         f"to {changes['trials']} trials of "
                         f"{budget.epochs} epoch on {budget.fraction:.0%} of the training split (none starts "
                         f"after {changes.get('timeout', cfg.timeout) / 60:.0f} minutes), batch "
                         f"{budget.batch_size}, nets from {where}, validation on "
                         f"{changes.get('val_size', cfg.val_size):,} held-out images; size it with --trials, "
                         f"--epochs, --fraction, --flops, --timeout, or --corner none for the whole space")
    if changes.get("val_size", cfg.val_size) is None:
        changes["val_size"] = 0.1
    cfg = dataclasses.replace(cfg, **changes)
    if cfg.rungs or cfg.schedule:
        cfg = _resolve_rungs(cfg, trials_given, notes)
    cfg = dataclasses.replace(cfg, sampler=cfg.sampler or ("random" if cfg.rungs else "nsga2"))
    return dataclasses.replace(cfg, max_trials=cfg.max_trials or 3 * cfg.trials + 10), notes


def _resolve_rungs(cfg: StudyConfig, trials_given: bool, notes: list[str]) -> StudyConfig:
    """The rungs (derived for --schedule asha; the study's batch on each rung that names none), the nets started at
    the lowest rung and the note that says so."""
    if cfg.schedule == "asha":
        cfg = dataclasses.replace(cfg, rungs=Ladder.geometric(cfg.budget, cfg.eta or 3, digits=3), schedule=None,
                                  eta=None)
    ladder = cfg.rungs.with_batch(cfg.budget.batch_size)
    cfg = dataclasses.replace(cfg, rungs=ladder)
    n, eta = len(ladder), ladder.eta
    if not trials_given:
        # as much compute as the fixed-budget study of `trials` nets: when every rung's quota fills, each rung costs
        # the lowest rung's nets x its work, about trials / n top budgets on a geometric ladder
        cfg = dataclasses.replace(cfg, trials=max(eta, round(cfg.trials * eta ** (n - 1) / n)))
    notes.append(f"successive halving over {n} rungs ({', '.join(b.name for b in ladder.budgets)}; eta {eta}): up to "
                 f"{cfg.trials} new nets at the lowest rung, the top 1/{eta} of each rung "
                 f"{'trained on from its checkpoint to' if cfg.continuation else 'retrained at'} the next "
                 f"(by Pareto rank of error and FLOPs); the front is the top rung's")
    return cfg
