"""Search strategies compared at equal compute on a simulated clock: a planted benchmark or a replay table
serves (net, budget, seed) -> (accuracy, seconds); W simulated workers run a strategy (fixed-budget random,
NSGA-II or TPE through Optuna's samplers, or successive-halving rungs) until a compute budget is spent, and
the hypervolume of the front it would report is tracked against the device-seconds spent.

The front a strategy reports is the Pareto front of its top-budget results as observed (one noisy seed per
net); it is scored by the nets' true top-budget accuracy (the benchmark's planted truth, or a replay table's
mean over recorded seeds), so a strategy is not rewarded for lucky seeds. Hypervolume is moocore's, in
(error, normalized log FLOPs) with the reference point (chance error, FLOPs 10% above the band's top).
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence

import numpy as np

from ..stats.pareto import hypervolume
from ..study.record import COMPLETE
from ..study.rungs import RungResult, due_promotions, predict_top_errors
from ..train.budget import Budget, Ladder

__all__ = ["Oracle", "PlantedBenchmark", "ReplayTable", "planted_ladder", "Job", "Trace", "FixedBudget", "Rungs",
           "simulate", "compare", "Comparison", "StrategyOutcome", "make_strategy", "hypervolume", "compute_to_reach",
           "STRATEGIES", "RUNG_OPTIONS", "strategy_known", "PerfectProxy", "NoFixedCost", "BOUNDS", "bound_benchmark"]

STRATEGIES = ("random", "nsga2", "tpe", "rungs")


def strategy_known(name: str) -> bool:
    """One of STRATEGIES, or rungs with options from RUNG_OPTIONS joined by + (rungs+continue+predict)."""
    base, *options = name.split("+")
    return name in STRATEGIES or (base == "rungs" and bool(options) and set(options) <= set(RUNG_OPTIONS)
                                  and len(set(options)) == len(options))


class Oracle(Protocol):
    """What a simulated run asks of the world: new nets, their FLOPs, observed results and the truth."""

    band: tuple[float, float]
    chance: float
    native: Optional[int]  # the data's image side: a budget's work is its cost there (None: no budget names a side)
    fixed: float  # seconds every training pays besides its work (set-up, evaluation)

    def new_net(self, rng: np.random.Generator) -> Optional[str]: ...
    def flops(self, key: str) -> float: ...
    def observe(self, key: str, work: float, seed: int) -> tuple[float, float]: ...
    def truth(self, key: str) -> float: ...


@functools.lru_cache(maxsize=1 << 18)
def _unit_normal(*parts: Any) -> float:
    """A standard normal fixed by its arguments (a net's planted effect is the same on every run; cached, as a fit
    of the noise scale reads the same draws under every scale)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return float(np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal())


@dataclass
class PlantedBenchmark:
    """Nets of a real design space in a FLOPs band (nasx's sampler and analytic counts) with planted accuracies
    shaped like explore's CPU proxy on CIFAR-10 (docs/simulate.md gives the measured figures they follow):

    truth(net)            = 0.40 + 0.06 x + 0.015 tanh((depth - 5) / 2) + 0.025 z_net       (x: log-FLOPs in the band, 0..1)
    observe(net, w, seed) = truth - 0.12 (1 - w^0.35) + S 0.035 log(1/w)/log 9 u_{net,w}
                            + 0.015 (1 + S (w^-0.25 - 1)) e_seed
    seconds(net, w)       = 52.5 s x FLOPs / 20 M x w + 3 s                                 (w: work, top budget = 1)

    z, u, e are standard normals fixed by the net, (net, w) and (net, w, seed). S = `proxy_noise` scales what
    makes a cheap budget rank worse than the top one: the (net, w) term and the seed term's excess over its
    top-budget size 0.015; at w = 1 both are untouched (u's weight is 0 there, the seed term is 0.015 e for
    every S), so fixed-budget search sees the same results under every S. S = 1 is the measured shape (at
    w = 1/9 a proxy ranks the nets with Kendall tau about 0.37 against one seed of the top budget; measured: 0.19-0.31);
    S = 0 leaves a cheap budget only the top budget's seed noise and a shift all nets share. The 3 s fixed
    cost follows the committed fidelity run (docs/simulate.md: seconds = a FLOPs w + b fitted to its 64
    trainings gives b = 2.4 s, 95% interval 0.4-4.1 s)."""

    space: Any
    band: tuple[float, float]
    chance: float = 0.9
    proxy_noise: float = 1.0
    native: Optional[int] = None  # its budgets are shares of one pass (e1-f0.111 is work 1/9): no image side
    fixed: float = 3.0  # the planted fixed cost (the fidelity run's fit: 2.41 s, docs/simulate.md)
    _specs: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.proxy_noise >= 0:  # also refuses NaN
            raise ValueError(f"proxy_noise must be >= 0, got {self.proxy_noise}")

    def new_net(self, rng: np.random.Generator) -> Optional[str]:
        from ..space.sampling import sample

        drawn = sample(self.space, rng, 1, flops=self.band)
        return self._keep(drawn[0])

    def suggest(self, trial: Any) -> Optional[str]:
        from ..space.sampling import Rejected, suggest

        try:
            return self._keep(suggest(self.space, trial, flops=self.band))
        except Rejected:
            return None

    def _keep(self, drawn: Any) -> str:
        key = drawn.spec.id
        if key not in self._specs:
            depth = sum(stage.depth for stage in drawn.spec.stages)
            self._specs[key] = (float(drawn.complexity.flops), depth)
        return key

    def flops(self, key: str) -> float:
        return self._specs[key][0]

    def _x(self, key: str) -> float:
        lo, hi = self.band
        return math.log(self.flops(key) / lo) / math.log(hi / lo)

    def truth(self, key: str) -> float:
        depth = self._specs[key][1]
        return 0.40 + 0.06 * self._x(key) + 0.015 * math.tanh((depth - 5) / 2) + 0.025 * _unit_normal("net", key)

    def observe(self, key: str, work: float, seed: int) -> tuple[float, float]:
        w = min(float(work), 1.0)  # an int work of 1 draws the same noise as 1.0
        s = self.proxy_noise
        acc = (self.truth(key) - 0.12 * (1 - w ** 0.35)
               + s * 0.035 * math.log(1 / w) / math.log(9) * _unit_normal("budget", key, round(w, 9))
               + 0.015 * (1 + s * (w ** -0.25 - 1)) * _unit_normal("seed", key, round(w, 9), seed))
        seconds = 52.5 * self.flops(key) / 20e6 * work + self.fixed
        return min(max(acc, 0.0), 1.0), seconds

    def features(self, key: str) -> tuple[float, ...]:
        """The structure a predicted ranking sees: the net's depth (what the planted truth reads besides FLOPs)."""
        return (float(self._specs[key][1]),)

    def proxy_tau(self, work: float = 1 / 9, nets: int = 300, seed: int = 0) -> float:
        """Kendall tau (scipy) between `nets` fresh nets' results at `work` and at the top budget, one seed each:
        how well the cheap budget ranks, as `nasx fidelity` measures a proxy (draws from a generator of `seed`)."""
        from scipy.stats import kendalltau

        rng = np.random.default_rng(seed)
        keys = [self.new_net(rng) for _ in range(nets)]
        keys = [k for k in keys if k is not None]
        return float(kendalltau([self.observe(k, work, 0)[0] for k in keys],
                                [self.observe(k, 1.0, 0)[0] for k in keys]).statistic)


class PerfectProxy(PlantedBenchmark):
    """A bound no `nasx simulate` option gives: below the top budget a net observes its truth less the shift all
    nets share, 0.12 (1 - w^0.35), with no noise (Kendall tau 1 against the truth)."""

    def observe(self, key: str, work: float, seed: int) -> tuple[float, float]:
        acc, seconds = super().observe(key, work, seed)
        return (self.truth(key) - 0.12 * (1 - float(work) ** 0.35), seconds) if work < 1 else (acc, seconds)


class NoFixedCost(PlantedBenchmark):
    """A bound: below the top budget a training costs its FLOPs' share only (the planted fixed cost removed)."""

    def observe(self, key: str, work: float, seed: int) -> tuple[float, float]:
        acc, seconds = super().observe(key, work, seed)
        return acc, seconds - self.fixed if work < 1 else seconds


BOUNDS = {"perfect": PerfectProxy, "no-fixed-cost": NoFixedCost}


def bound_benchmark(bound: str, proxy_noise: float = 1.0, space: str = "resnext", corner: str = "cpu",
                    band: tuple[float, float] = (10e6, 30e6)) -> PlantedBenchmark:
    """The planted benchmark of `space`'s corner in `band` with a bound's change (`BOUNDS`)."""
    from ..space import load_space

    return BOUNDS[bound](load_space(space).corner(corner), band, proxy_noise=proxy_noise)


def planted_ladder(shares: Sequence[float], eta: int) -> Ladder:
    """The planted benchmark's rungs: a pass over each share of the training split (work 1/9 is e1-f0.111), lowest
    first; the top one, 1, is one whole pass (BudgetError for a ladder that cannot be)."""
    return Ladder(tuple(Budget(1, min(float(share), 1.0)) for share in shares), eta)


@dataclass
class ReplayTable:
    """Recorded results served back: rows (net key, work, seed, accuracy, seconds) and each net's FLOPs. A
    (net, work) pair recorded under several seeds serves them in turn; the truth is the mean accuracy at the
    largest work."""

    rows: Sequence[tuple[str, float, int, float, float]]
    flops_of: dict[str, float]
    chance: float = 0.9
    band: tuple[float, float] = (0.0, 0.0)
    native: Optional[int] = None  # the recorded nets' image side
    fixed: float = 2.41  # s per training: the fit to the committed fidelity run (docs/simulate.md)

    def __post_init__(self) -> None:
        self._results: dict[tuple[str, float], list[tuple[float, float]]] = {}
        for key, work, _seed, acc, seconds in self.rows:
            self._results.setdefault((key, float(work)), []).append((float(acc), float(seconds)))
        self.work = tuple(sorted({w for _, w in self._results}))
        top = self.work[-1]
        self.pool = sorted(k for k, w in self._results if w == top and all((k, v) in self._results for v in self.work))
        if not self.pool:
            raise ValueError("no net of the table is recorded under every budget")
        if self.band == (0.0, 0.0):
            values = [self.flops_of[k] for k in self.pool]
            self.band = (min(values), max(values))
        self._drawn: set[str] = set()

    @classmethod
    def from_fidelity(cls, data: Any, chance: float = 0.9) -> "ReplayTable":
        """From a stored fidelity run (nasx.experiments.fidelity.load_fidelity): every complete record of every budget,
        the reference's other seeds (its ceiling) included, its work relative to the reference budget (= 1) and its
        measured wall time."""
        reference = next(b for b, role in data.roles.items() if role == "reference")
        rows, flops_of, native = [], {}, None
        runs = [(budget, records) for budget, records in data.budgets.items()]
        runs += [(reference, data.ceiling[k]) for k in sorted(data.ceiling)]
        for budget, records in runs:
            work = data.costs[budget] / data.costs[reference]
            for rec in records:
                if rec.state != COMPLETE or rec.outcome.val_acc is None or rec.spec_id is None:
                    continue
                rows.append((rec.spec_id, work, int(rec.seed or 0), float(rec.outcome.val_acc), float(rec.outcome.wall_time or 0.0)))
                flops_of[rec.spec_id] = float(rec.flops)
                native = native or rec.net.resolution  # the deployed net's input: the data's side
        return cls(rows, flops_of, chance, native=native)

    def new_net(self, rng: np.random.Generator) -> Optional[str]:
        left = [k for k in self.pool if k not in self._drawn]
        if not left:
            return None
        key = left[int(rng.integers(len(left)))]
        self._drawn.add(key)
        return key

    def flops(self, key: str) -> float:
        return self.flops_of[key]

    def truth(self, key: str) -> float:
        return float(np.mean([acc for acc, _ in self._results[(key, self.work[-1])]]))

    def observe(self, key: str, work: float, seed: int) -> tuple[float, float]:
        served = self._results[(key, float(work))]
        return served[seed % len(served)]


@dataclass(frozen=True)
class Job:
    """One training: a net at a rung (index into the strategy's budgets) under a seed."""

    key: str
    rung: int
    seed: int
    handle: Any = None  # the strategy's own token (an Optuna trial)


class FixedBudget:
    """Every net trained once at the top budget; new nets from Optuna's random, NSGA-II or TPE sampler (asked
    and told as results arrive, as explore's workers do) or, on a replay table, drawn from its pool."""

    def __init__(self, oracle: Oracle, work: float, sampler: str, seed: int):
        import optuna

        self.oracle, self.work, self.rng = oracle, (work,), np.random.default_rng(seed)
        self.seen: dict[str, Optional[list[float]]] = {}
        self.study = None
        if sampler != "random" or hasattr(oracle, "suggest"):
            samplers = {"random": lambda: optuna.samplers.RandomSampler(seed=seed),
                        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed, population_size=16),
                        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)}
            if not hasattr(oracle, "suggest"):
                raise ValueError(f"sampler {sampler!r} needs a space to suggest from; a replay table serves random")
            with warnings.catch_warnings():  # TPE's `group` is marked experimental; explore uses it too
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study = optuna.create_study(directions=["maximize", "minimize"], sampler=samplers[sampler]())

    def next_job(self) -> Optional[Job]:
        for _ in range(1000):
            if self.study is None:
                key = _new_net(self.oracle, self.rng, self.seen)
                return None if key is None else Job(key, 0, 0)
            trial = self.study.ask()
            key = self.oracle.suggest(trial)
            if key is None:
                self.study.tell(trial, state=_pruned())
            elif key in self.seen:  # as explore: a net trained before is not trained again, its result is reused
                self.study.tell(trial, self.seen[key] if self.seen[key] else None,
                                state=None if self.seen[key] else _pruned())
            else:
                self.seen[key] = None
                return Job(key, 0, 0, trial)
        return None

    def done(self, job: Job, acc: float) -> None:
        self.seen[job.key] = [acc, self.oracle.flops(job.key)]
        if job.handle is not None:
            self.study.tell(job.handle, self.seen[job.key])


def _new_net(oracle: Oracle, rng: np.random.Generator, seen: Any, tries: int = 1000) -> Optional[str]:
    """A net not drawn before (None when `tries` draws found none)."""
    for _ in range(tries):
        key = oracle.new_net(rng)
        if key is None or key not in seen:
            return key
    return None


def _pruned():
    from optuna.trial import TrialState

    return TrialState.PRUNED


RUNG_OPTIONS = ("continue", "predict")  # strategy names rungs+continue, rungs+predict, rungs+continue+predict
CHECKPOINT_IO = 0.1  # s per continued promotion: saving and loading a checkpoint of a 10-30 MFLOP net (assumed)


class Rungs:
    """Asynchronous successive halving over the ladder: a free worker takes the best due promotion (highest rung
    first), else starts a new random net at the lowest rung. A promoted net is retrained from scratch, or with
    `continuation` trains on from its rung's pre-decay checkpoint: it pays its rung's work less the part of the
    rung below it already trained (all of it but that rung's `decay` branch), the fixed cost and CHECKPOINT_IO (its
    accuracy is the rung's, as if the schedule matched a retraining's). With `predict`, a rung ranks its nets by
    their predicted top error (nasx.study.rungs.predict_top_errors) once enough nets reached the top."""

    def __init__(self, oracle: Oracle, ladder: Ladder, seed: int, continuation: bool = False, predict: bool = False,
                 decay: float = 0.2):
        self.oracle, self.ladder, self.work = oracle, ladder, ladder.work(oracle.native)
        self.continuation, self.predict, self.decay = continuation, predict, decay
        self.rng = np.random.default_rng(seed)
        self.results: list[list[RungResult]] = [[] for _ in ladder.budgets]
        self.promoted: list[set[str]] = [set() for _ in ladder.budgets]
        self.started: set[str] = set()
        self.seconds: dict[tuple[str, int], float] = {}  # a run's full seconds at its rung
        self.top_error: dict[str, float] = {}
        self.log: list[tuple[int, str, int]] = []  # (rung, key, how many results of the rung it was ranked among)

    def next_job(self) -> Optional[Job]:
        for rung in range(self.ladder.top - 1, -1, -1):
            results = self.results[rung]
            predicted = None
            if self.predict:
                predicted = predict_top_errors(results, [(r, self.top_error[r.key]) for r in results
                                                         if r.key in self.top_error])
            due = due_promotions(results, self.promoted[rung], self.ladder.eta, predicted)
            if due:
                self.promoted[rung].add(due[0])
                self.log.append((rung, due[0], len(self.results[rung])))
                return Job(due[0], rung + 1, 0)
        key = _new_net(self.oracle, self.rng, self.started)
        if key is None:
            return None
        self.started.add(key)
        return Job(key, 0, 0)

    def charge(self, job: Job, seconds: float) -> float:
        """The seconds `job` pays, given its run's full `seconds` at its rung: all of them, or (continuation, a
        promotion) less the trunk of the rung below it already trained, plus the checkpoint's I/O."""
        self.seconds[(job.key, job.rung)] = seconds
        below = self.seconds.get((job.key, job.rung - 1)) if job.rung else None
        if not self.continuation or below is None:
            return seconds
        return seconds - (1 - self.decay) * (below - self.oracle.fixed) + CHECKPOINT_IO

    def done(self, job: Job, acc: float) -> None:
        features = self.oracle.features(job.key) if self.predict and hasattr(self.oracle, "features") else ()
        self.results[job.rung].append(RungResult(job.key, 1.0 - acc, self.oracle.flops(job.key), features))
        if job.rung == self.ladder.top:
            self.top_error[job.key] = 1.0 - acc


@dataclass
class Trace:
    """A simulated run: compute spent (device-seconds) and the hypervolume of the reported front after each
    top-budget result, and every job as (key, rung, accuracy, seconds)."""

    strategy: str
    seed: int
    compute: list[float] = field(default_factory=list)
    hv: list[float] = field(default_factory=list)
    jobs: list[tuple[str, int, float, float]] = field(default_factory=list)

    def hv_at(self, compute: float) -> float:
        """The hypervolume reached once `compute` device-seconds were spent."""
        i = np.searchsorted(self.compute, compute, side="right")
        return self.hv[i - 1] if i else 0.0


def _front_hv(oracle: Oracle, top_results: dict[str, float]) -> float:
    from ..stats import pareto_mask

    keys = list(top_results)
    points = [(top_results[k], oracle.flops(k)) for k in keys]
    mask = pareto_mask(points, (True, False))
    chosen = [(1.0 - oracle.truth(k), oracle.flops(k)) for k, m in zip(keys, mask) if m]
    return hypervolume(chosen, oracle.band, oracle.chance)


def simulate(strategy: Any, oracle: Oracle, compute: float, workers: int = 2, name: str = "", seed: int = 0) -> Trace:
    """Run `strategy` on `workers` simulated workers until `compute` device-seconds are committed; each job's seed
    is its net's count of earlier trainings at that rung (a repeat is a new seed)."""
    trace = Trace(name, seed)
    running: list[tuple[float, int, Job, float, float]] = []
    clock, committed, spent, order = 0.0, 0.0, 0.0, 0
    top_results: dict[str, float] = {}
    tries: dict[tuple[str, int], int] = {}
    top = len(strategy.work) - 1

    def start(now: float) -> bool:
        nonlocal committed, order
        if committed >= compute:
            return False
        job = strategy.next_job()
        if job is None:
            return False
        n = tries.get((job.key, job.rung), 0)
        tries[(job.key, job.rung)] = n + 1
        acc, seconds = oracle.observe(job.key, strategy.work[job.rung], seed * 1000 + n)
        if hasattr(strategy, "charge"):
            seconds = strategy.charge(job, seconds)
        committed += seconds
        order += 1
        heapq.heappush(running, (now + seconds, order, job, acc, seconds))
        return True

    for _ in range(workers):
        if not start(clock):
            break
    while running:
        clock, _, job, acc, seconds = heapq.heappop(running)
        spent += seconds
        strategy.done(job, acc)
        trace.jobs.append((job.key, job.rung, acc, seconds))
        if job.rung == top:
            top_results[job.key] = acc
            trace.compute.append(spent)
            trace.hv.append(_front_hv(oracle, top_results))
        start(clock)
    return trace


def compute_to_reach(trace: Trace, target: float) -> float:
    """Device-seconds after which the trace's hypervolume first reaches `target` (inf: never)."""
    for spent, hv in zip(trace.compute, trace.hv):
        if hv >= target - 1e-12:
            return spent
    return math.inf


@dataclass(frozen=True)
class StrategyOutcome:
    """One strategy over the seeds: device-seconds to reach the target hypervolume per seed (inf: never) and the
    final hypervolume per seed."""

    strategy: str
    to_target: tuple[float, ...]
    final_hv: tuple[float, ...]
    trainings: tuple[int, ...]

    @property
    def median_to_target(self) -> float:
        """The median over seeds (inf when fewer than half reached the target)."""
        ordered = sorted(self.to_target)
        n = len(ordered)
        return float(ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2]))

    @property
    def reached(self) -> int:
        return sum(math.isfinite(t) for t in self.to_target)


@dataclass(frozen=True)
class Comparison:
    """Strategies at equal compute: the target (a low quantile over seeds of fixed-budget random search's final
    hypervolume), each strategy's outcome, and every trace."""

    compute: float
    workers: int
    target: float
    outcomes: tuple[StrategyOutcome, ...]
    traces: tuple[Trace, ...]

    def outcome(self, strategy: str) -> StrategyOutcome:
        return next(o for o in self.outcomes if o.strategy == strategy)


def make_strategy(name: str, oracle: Oracle, ladder: Ladder, seed: int) -> Any:
    """A strategy by name; fixed-budget ones train at the ladder's top budget; rungs+continue, rungs+predict and
    rungs+continue+predict: the rungs with continuation, the predicted ranking, or both."""
    base, *options = name.split("+")
    if base == "rungs" and set(options) <= set(RUNG_OPTIONS) and len(set(options)) == len(options):
        return Rungs(oracle, ladder, seed, continuation="continue" in options, predict="predict" in options)
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r} (one of {', '.join(STRATEGIES)})")
    return FixedBudget(oracle, ladder.work(oracle.native)[-1], name, seed)


def compare(make_oracle: Any, strategies: Sequence[str], ladder: Ladder, compute: float, seeds: int,
            workers: int = 2, on_run: Any = None, target_quantile: float = 0.25, first_seed: int = 0) -> Comparison:
    """Run every strategy under the seeds first_seed, ..., first_seed + seeds - 1, each on a fresh oracle from
    `make_oracle()`, until `compute` device-seconds. The target hypervolume is the `target_quantile` quantile
    (lower) of random search's final ones: the hypervolume random search reaches within the budget in 1 - q of
    its seeds, so that its own median compute to the target is measured rather than censored (random runs first
    and is always included)."""
    names = ["random"] + [s for s in strategies if s != "random"]
    traces: list[Trace] = []
    for name in names:
        for seed in range(first_seed, first_seed + seeds):
            oracle = make_oracle()
            traces.append(simulate(make_strategy(name, oracle, ladder, seed), oracle, compute, workers, name, seed))
            if on_run is not None:
                on_run(traces[-1])
    final = {name: [t.hv[-1] if t.hv else 0.0 for t in traces if t.strategy == name] for name in names}
    target = float(np.quantile(final["random"], target_quantile, method="lower"))
    outcomes = tuple(StrategyOutcome(name, tuple(compute_to_reach(t, target) for t in traces if t.strategy == name),
                                     tuple(final[name]), tuple(len(t.jobs) for t in traces if t.strategy == name))
                     for name in names)
    return Comparison(compute, workers, target, outcomes, tuple(traces))
