"""Proxy fidelity: does a short proxy rank nets the way a longer reference training does?

A fidelity run draws N nets (from a space in a FLOPs band, or the nets of a study), trains each under one or
more proxy budgets and one reference budget, and measures per proxy, against the reference, over the same
nets: Kendall's tau and Spearman's rho with paired-bootstrap 95% intervals, the overlap of the top-k, the
regret (reference accuracy lost by taking the proxy's best net; both expected over the orders of tied nets,
with their range) and the cost (measured seconds per net). Two zero-cost baselines every proxy must beat rank
the same nets by FLOPs alone and by parameters alone. Optionally the reference is trained again with other
seeds (`ceiling_seeds`): its own seed-to-seed tau is the ceiling a proxy can reach.

Every budget is a fixed, resumable study `fidelity-<name>-<budget>` in one storage (default
studies/fidelity-<name>.journal): the same net under the same budget is never trained twice, and workers on
several machines share the queue exactly as in `nasx explore`. Nets are stored as the deployed net (counted
at the dataset's input); a budget with a lower resolution trains the same net on resized images.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ..errors import NasxError
from ..net.spec import NetSpec
from ..train.budget import Budget, BudgetError
from ..study.record import COMPLETE

__all__ = ["FidelityError", "FidelityPlan", "ProxyFidelity", "Versus", "FidelityResult", "BASELINES", "plan_fidelity",
           "budget_study", "fidelity_storage", "run_fidelity", "load_fidelity",
           "measure", "resolve_proxy", "default_budgets", "MIN_TAU", "MIN_REFERENCE_RATIO"]

MIN_TAU = 0.7  # default threshold: tau 0.7 = 85% of the pairs of nets ordered as the reference orders them
MIN_REFERENCE_RATIO = 4.0  # the reference costs at least this many times the largest proxy
MIN_NETS = 4


class FidelityError(NasxError, ValueError):
    """A fidelity run that cannot be set up or read (budgets, nets, study); one line, names the cause."""


def default_budgets(cuda: bool, native: int) -> tuple[tuple[Budget, ...], Budget]:
    """The proxies and reference `nasx fidelity` uses without --proxy/--reference: the proxy `nasx explore` trains on
    by default is the reference, and the proxies are what could replace it. On a CPU: one pass over a sixteenth
    and an eighth of the training split, and an eighth at 3/4 of the image side (24 px for CIFAR), against one
    pass over half (4x the largest); on a GPU: 1 epoch on a quarter, 2 on half, 5 on all (explore's GPU proxy)
    against 20."""
    if cuda:
        return (Budget(1, 0.25), Budget(2, 0.5), Budget(5, 1.0)), Budget(20, 1.0)
    smaller = max(8, round(0.75 * native / 4) * 4)
    proxies = ((Budget(1, 0.0625),) + ((Budget(1, 0.125, resolution=smaller),) if smaller < native else ())
               + (Budget(1, 0.125),))
    return proxies, Budget(1, 0.5)


@dataclass(frozen=True)
class FidelityPlan:
    """The nets of one fidelity run (at the dataset's input) and its budgets."""

    name: str
    nets: tuple[NetSpec, ...]
    proxies: tuple[Budget, ...]
    reference: Budget
    native: int  # the dataset's image side
    ceiling_seeds: int = 1  # the reference trained with this many seeds in all (1: no ceiling)

    @property
    def budgets(self) -> tuple[Budget, ...]:
        """Cheapest first: early results of a run that is stopped are the cheap ones."""
        return tuple(sorted((*self.proxies, self.reference), key=lambda b: b.cost(self.native)))


def plan_fidelity(name: str, nets: Sequence[NetSpec], proxies: Sequence[Budget], reference: Budget, native: int,
                  min_ratio: float = MIN_REFERENCE_RATIO, ceiling_seeds: int = 1) -> FidelityPlan:
    """Check a fidelity run: a usable name, >= 4 distinct nets, distinct budgets, and a reference that costs
    at least `min_ratio` x the largest proxy (else the 'reference' is only another proxy); `ceiling_seeds` >= 1
    trainings of the reference per net (the extra ones measure its seed-to-seed agreement)."""
    if isinstance(ceiling_seeds, bool) or not isinstance(ceiling_seeds, int) or ceiling_seeds < 1:
        raise FidelityError(f"--ceiling-seeds {ceiling_seeds!r}: must be a whole number >= 1 (1: no ceiling)")
    if not re.fullmatch(r"[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*", name):
        raise FidelityError(f"--name {name!r}: use letters, digits, '.', '_' and '-'")
    ids = [n.id for n in nets]
    if len(set(ids)) != len(ids):
        raise FidelityError("the nets are not distinct")
    if len(nets) < MIN_NETS:
        raise FidelityError(f"{len(nets)} net(s): rank correlations need at least {MIN_NETS}")
    if not proxies:
        raise FidelityError("give at least one proxy budget")
    names = [b.name for b in (*proxies, reference)]
    if len(set(names)) != len(names):
        raise FidelityError(f"budgets repeat: {', '.join(names)}")
    largest = max(proxies, key=lambda b: b.cost(native))
    if reference.cost(native) < min_ratio * largest.cost(native) - 1e-12:
        raise FidelityError(f"reference {reference.name} costs {reference.cost(native) / largest.cost(native):.2g}x "
                            f"the largest proxy {largest.name}; it must cost at least {min_ratio:g}x")
    return FidelityPlan(name, tuple(nets), tuple(proxies), reference, native, ceiling_seeds)


def budget_study(name: str, budget: Budget, seed_offset: int = 0) -> str:
    """The study of one budget; the reference's extra seeds (the ceiling) are studies of their own."""
    return f"fidelity-{name}-{budget.name}" + (f"-s{seed_offset}" if seed_offset else "")


def fidelity_storage(name: str, shelf: Any) -> str:
    """The storage of fidelity run `name` on `shelf` (a nasx.study.record.Shelf): its budgets' studies lie there."""
    return shelf.url(f"fidelity-{name}")


def run_fidelity(plan: FidelityPlan, config: Any, *, progress: Optional[Callable[[str, Any], None]] = None,
                 on_note: Optional[Callable[[str], None]] = None, train_fn: Optional[Callable] = None) -> list[Any]:
    """Train every net under every budget (cheapest budget first) as the fixed studies `fidelity-<name>-<budget>`
    in one storage, then the reference again with seeds seed+1 .. seed+ceiling_seeds-1 (studies
    `fidelity-<name>-<budget>-s<k>`, role "ceiling"); a re-run trains only what is missing. Stops after an
    interrupted budget. Returns the RunSummary of each budget run. `progress(budget_name, snapshot)` follows the
    running budget."""
    from ..study.fixed import run_fixed

    storage = fidelity_storage(plan.name, config.shelf)
    summaries = []
    runs = [(b, 0) for b in plan.budgets] + [(plan.reference, k) for k in range(1, plan.ceiling_seeds)]
    for budget, offset in runs:
        role = "ceiling" if offset else "reference" if budget == plan.reference else "proxy"
        cfg = dataclasses.replace(config.with_budget(budget), study=budget_study(plan.name, budget, offset),
                                  storage=storage, test=False, sampler="random")
        tags = {"fidelity": plan.name, "budget": budget.name, "role": role, "cost": budget.cost(plan.native),
                "resolution": budget.resolution or plan.native, "seed_offset": offset}
        label = budget.name + (f" seed +{offset}" if offset else "")
        summary = run_fixed(cfg, plan.nets, tags=tags, seed=config.seed + offset, index_tag="net", on_note=on_note,
                            train_fn=train_fn,
                            progress=None if progress is None else (lambda snap, b=label: progress(b, snap)))
        summaries.append(summary)
        if summary.interrupted:
            break
    return summaries


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass(frozen=True)
class Versus:
    """A ranking against a zero-cost baseline on the same nets: the paired bootstrap intervals of the differences of
    Kendall tau (higher is better) and of regret (lower is better), and the verdict the tau interval gives."""

    baseline: str
    tau: Any  # nasx.stats.PairedDifference: the ranking's tau minus the baseline's
    regret: Any  # ... its regret minus the baseline's (0..1)
    verdict: str  # "better", "worse" or "no evidence either way" (from the tau difference's 95% interval)
    regret_verdict: str  # the same from the regret difference's interval

    def text(self) -> str:
        t, r = self.tau, self.regret
        return (f"against {self.baseline}: tau {t.value:+.2f} [{t.low:+.2f}, {t.high:+.2f}], regret "
                f"{100 * r.value:+.2f} points [{100 * r.low:+.2f}, {100 * r.high:+.2f}]: {self.verdict}")


@dataclass(frozen=True)
class ProxyFidelity:
    """How well one proxy ranks the nets the reference ranks, and what it costs."""

    budget: str
    cost: float  # relative training work (see Budget.cost)
    seconds_per_net: float  # measured: mean wall time of one training
    nets: int  # nets complete under both this proxy and the reference
    tau: float
    tau_ci: tuple[float, float]
    rho: float
    rho_ci: tuple[float, float]
    k: int
    top_k: float  # share of the proxy's top-k in the reference's top-k, expected over the orders of tied nets
    regret: float  # reference accuracy (0..1) lost by taking the proxy's best net, expected over its tied best
    top_k_range: tuple[float, float] = (math.nan, math.nan)  # least and most over the orders of tied nets
    regret_range: tuple[float, float] = (math.nan, math.nan)
    kind: str = "proxy"  # "proxy" (a trained budget), "baseline" (ranking by FLOPs or params: no training) or
    # "ceiling" (the reference under another seed: the agreement a proxy can hope for)
    versus: tuple[Versus, ...] = ()  # a proxy against each baseline, paired over the same nets

    def row(self) -> dict[str, Any]:
        return {"budget": self.budget, "kind": self.kind, "cost": self.cost, "seconds_per_net": self.seconds_per_net,
                "nets": self.nets, "kendall_tau": self.tau, "tau_low": self.tau_ci[0], "tau_high": self.tau_ci[1],
                "spearman_rho": self.rho, "rho_low": self.rho_ci[0], "rho_high": self.rho_ci[1],
                "k": self.k, "top_k_overlap": self.top_k, "top_k_min": self.top_k_range[0],
                "top_k_max": self.top_k_range[1], "regret_points": 100 * self.regret,
                "regret_min_points": 100 * self.regret_range[0], "regret_max_points": 100 * self.regret_range[1],
                **{f"{key}_vs_{v.baseline.split()[0].lower()}": value for v in self.versus for key, value in (
                    ("tau_diff", v.tau.value), ("tau_diff_low", v.tau.low), ("tau_diff_high", v.tau.high),
                    ("regret_diff_points", 100 * v.regret.value), ("regret_diff_low", 100 * v.regret.low),
                    ("regret_diff_high", 100 * v.regret.high), ("verdict", v.verdict))}}


BASELINES = {"flops": "FLOPs alone", "params": "params alone"}  # nets-table column -> the baseline's row name


@dataclass(frozen=True)
class FidelityResult:
    """Every proxy measured against the reference, and the per-net accuracies behind it."""

    name: str
    reference: str
    reference_seconds: float
    proxies: tuple[ProxyFidelity, ...]
    nets: Any  # pandas DataFrame: one row per net (index, spec id, description, FLOPs, accuracy per budget)
    device: str
    dataset: str
    missing: dict  # budget -> nets not (yet) complete under it
    baselines: tuple[ProxyFidelity, ...] = ()  # FLOPs alone, params alone, over the nets the reference completed
    ceiling: tuple[ProxyFidelity, ...] = ()  # the reference with another seed against the reference: the ceiling

    def beats_baselines(self, proxy: ProxyFidelity) -> bool:
        """The paired 95% interval of the proxy's tau minus each baseline's lies above 0 ("better"; a baseline with
        an undefined tau is no bar)."""
        bars = {b.budget for b in self.baselines if b.tau == b.tau}
        return all(v.verdict == "better" for v in proxy.versus if v.baseline in bars) and \
            bars <= {v.baseline for v in proxy.versus}

    def cheapest(self, min_tau: float = MIN_TAU) -> Optional[ProxyFidelity]:
        """The cheapest proxy (by measured seconds per net) whose tau interval's lower bound reaches `min_tau` and
        whose tau beats ranking by FLOPs and by params alone; None when no proxy does."""
        ok = [p for p in self.proxies if p.tau_ci[0] == p.tau_ci[0] and p.tau_ci[0] >= min_tau
              and self.beats_baselines(p)]
        return min(ok, key=lambda p: (p.seconds_per_net, p.cost)) if ok else None


@dataclass(frozen=True)
class FidelityData:
    """The stored records of one fidelity run, by budget name."""

    name: str
    storage: str
    budgets: dict  # budget name -> list[TrialRecord]
    roles: dict  # budget name -> "proxy" | "reference"
    costs: dict  # budget name -> relative cost
    ceiling: dict = dataclasses.field(default_factory=dict)  # seed offset -> the reference's records with that seed


def load_fidelity(name: str, storage: Optional[str] = None) -> FidelityData:
    """Read the studies `fidelity-<name>-*` of a fidelity run in `storage` (default its journal in studies/);
    FidelityError if there are none."""
    from ..study.config import redact
    from ..study.record import Shelf
    from ..study.storage import is_rdb, journal_path
    from ..study.store import open_studies

    url = fidelity_storage(name, Shelf(storage))
    if not is_rdb(url) and not journal_path(url).is_file():
        raise FidelityError(f"no fidelity run {name!r}: no storage at {journal_path(url)} (give --storage?)")
    budgets, roles, costs, ceiling = {}, {}, {}, {}
    for study in open_studies(url, prefix=f"fidelity-{name}-"):
        tagged = [r for r in study.records if r.tags.get("fidelity") == name]
        if not tagged:
            continue
        budget = str(tagged[0].tags.get("budget"))
        if tagged[0].tags.get("role") == "ceiling":
            ceiling[int(tagged[0].tags.get("seed_offset", 0))] = tagged
            continue
        budgets[budget] = tagged
        roles[budget] = tagged[0].tags.get("role")
        costs[budget] = float(tagged[0].tags.get("cost") or math.nan)
    if not budgets:
        raise FidelityError(f"no fidelity run {name!r} in {redact(url)}")
    if list(roles.values()).count("reference") != 1:
        raise FidelityError(f"fidelity run {name!r} in {redact(url)} has no reference budget (yet)")
    return FidelityData(name, redact(url), budgets, roles, costs, ceiling)


def measure(data: FidelityData, top_k: Optional[int] = None, level: float = 0.95, n_boot: int = 2000,
            seed: int = 0) -> FidelityResult:
    """Rank agreement of every proxy with the reference over the nets complete under both: the per-net table,
    then the proxies (cheapest first), the baselines (FLOPs, params alone) and the reference's other seeds."""
    import numpy as np
    import pandas as pd

    def agreement(budget: str, kind: str, cost: float, seconds: float, x: np.ndarray, y: np.ndarray) -> ProxyFidelity:
        return _agreement(budget, kind, cost, seconds, x, y, top_k, level, n_boot, seed)

    reference = next(b for b, role in data.roles.items() if role == "reference")
    table, seconds, missing, device, dataset = _net_table(data)
    ref_seconds = float(np.nanmean(seconds.get(reference, [math.nan])))
    proxies = []
    order = sorted((b for b in data.budgets if b != reference), key=lambda b: data.costs.get(b, math.inf))
    for budget in order:
        both = table[[budget, reference]].dropna() if budget in table and reference in table else pd.DataFrame()
        x = both[budget].to_numpy(float) if len(both) else np.array([])
        y = both[reference].to_numpy(float) if len(both) else np.array([])
        proxies.append(agreement(budget, "proxy", data.costs.get(budget, math.nan),
                                 float(np.nanmean(seconds.get(budget, [math.nan]))), x, y))
    baselines = []
    for column, label in BASELINES.items():  # rank by the count alone: more FLOPs (params) taken as more accurate
        if column in table and reference in table:
            both = table[[column, reference]].dropna()
            baselines.append(agreement(label, "baseline", 0.0, 0.0, both[column].to_numpy(float),
                                       both[reference].to_numpy(float)))
    ceiling = _ceiling(data, table, reference, missing, agreement)
    proxies = [dataclasses.replace(p, versus=_versus(table, p.budget, reference, level, n_boot, seed)) for p in proxies]
    return FidelityResult(name=data.name, reference=reference, reference_seconds=ref_seconds, proxies=tuple(proxies),
                          nets=table, device=device, dataset=dataset, missing=missing, baselines=tuple(baselines),
                          ceiling=tuple(ceiling))


def _versus(table: Any, budget: str, reference: str, level: float, n_boot: int, seed: int) -> tuple[Versus, ...]:
    """The proxy `budget` against each baseline over the nets complete under it and the reference with the count
    known: paired bootstrap intervals of the tau and regret differences, and their verdicts."""
    from ..stats import compare_verdict, kendall_tau, paired_difference, regret

    out = []
    for column, label in BASELINES.items():
        if column not in table or budget not in table or reference not in table:
            continue
        both = table[[budget, column, reference]].dropna()
        a, b, y = (both[c].to_numpy(float) for c in (budget, column, reference))
        tau = paired_difference(kendall_tau, a, b, y, n_boot, level, seed)
        lost = paired_difference(regret, a, b, y, n_boot, level, seed)
        out.append(Versus(label, tau, lost, compare_verdict(tau), compare_verdict(lost, higher_is_better=False)))
    return tuple(out)


def _agreement(budget: str, kind: str, cost: float, seconds: float, x, y, top_k: Optional[int], level: float,
               n_boot: int, seed: int) -> ProxyFidelity:
    """One row: Kendall tau and Spearman rho with bootstrap intervals, top-k overlap and regret of ranking the
    nets by `x` against the reference's `y` (undefined below 2 nets)."""
    from ..stats import (bootstrap_ci, kendall_tau, regret, regret_range, spearman_rho, top_k_overlap,
                         top_k_range)

    n = len(x)
    k = min(top_k or max(1, round(n / 4)), n) if n else (top_k or 1)
    ok = n >= 2
    return ProxyFidelity(
        budget=budget, cost=cost, seconds_per_net=seconds, nets=n,
        tau=kendall_tau(x, y) if ok else math.nan, tau_ci=bootstrap_ci(kendall_tau, x, y, n_boot, level, seed),
        rho=spearman_rho(x, y) if ok else math.nan, rho_ci=bootstrap_ci(spearman_rho, x, y, n_boot, level, seed),
        k=k, top_k=top_k_overlap(x, y, k) if ok else math.nan, regret=regret(x, y) if ok else math.nan,
        top_k_range=top_k_range(x, y, k) if ok else (math.nan, math.nan),
        regret_range=regret_range(x, y) if ok else (math.nan, math.nan), kind=kind)


def _net_table(data: FidelityData) -> tuple[Any, dict[str, list[float]], dict[str, int], str, str]:
    """One row per net (spec id, description, FLOPs, params, accuracy per budget), the seconds of each budget's
    complete trainings, the nets not complete under each budget, and the device and dataset they ran on."""
    import pandas as pd

    rows: dict[int, dict[str, Any]] = {}
    seconds: dict[str, list[float]] = {}
    missing: dict[str, int] = {}
    device = dataset = ""
    for budget, records in data.budgets.items():
        done = 0
        for rec in records:
            net = int(rec.tags.get("net", -1))
            row = rows.setdefault(net, {"net": net})
            if rec.spec is not None:
                row.update(spec_id=rec.spec_id, description=rec.description)
            for key in BASELINES:  # the counts the baselines rank by
                if getattr(rec, key) is not None:
                    row[key] = getattr(rec, key)
            if rec.state == COMPLETE and rec.outcome.val_acc is not None:
                row[budget] = rec.outcome.val_acc
                seconds.setdefault(budget, []).append(float(rec.outcome.wall_time or math.nan))
                device, dataset = rec.device or device, rec.dataset or dataset
                done += 1
        missing[budget] = len(records) - done
    return pd.DataFrame(sorted(rows.values(), key=lambda r: r["net"])), seconds, missing, device, dataset


def _ceiling(data: FidelityData, table: Any, reference: str, missing: dict[str, int],
             agreement: Callable[..., ProxyFidelity]) -> list[ProxyFidelity]:
    """The reference against itself under each other seed (a column of `table` and a count in `missing` each)."""
    import numpy as np
    import pandas as pd

    ceiling = []
    for offset, records in sorted(data.ceiling.items()):
        label = f"{reference} seed +{offset}"
        acc = {int(r.tags.get("net", -1)): r.outcome.val_acc for r in records if r.state == COMPLETE and r.outcome.val_acc is not None}
        table[label] = table["net"].map(acc).astype(float)
        both = table[[label, reference]].dropna() if reference in table else pd.DataFrame(columns=[label, reference])
        spent = [float(r.outcome.wall_time or math.nan) for r in records if r.state == COMPLETE]
        ceiling.append(agreement(label, "ceiling", data.costs.get(reference, math.nan),
                                 float(np.nanmean(spent)) if spent else math.nan, both[label].to_numpy(float),
                                 both[reference].to_numpy(float)))
        missing[label] = len(records) - len(acc)
    return ceiling


def resolve_proxy(text: str, storage: Optional[str] = None, min_tau: float = MIN_TAU) -> tuple[Budget, str]:
    """The budget `explore --proxy` names, and a note on where it came from: a budget (`e1-f0.25`), a fidelity
    run's budget (`NAME:e1-f0.25`), or a fidelity run (`NAME`: its cheapest proxy whose tau interval's lower
    bound reaches min_tau and whose tau beats FLOPs and params alone)."""
    name, sep, budget = text.partition(":")
    if not sep:
        try:
            chosen = Budget.parse(text)
            return chosen, f"proxy {chosen.name}"
        except BudgetError:
            pass
    data = load_fidelity(name, storage)
    if sep:
        if budget not in data.budgets:
            raise FidelityError(f"--proxy {text}: fidelity run {name!r} has no budget {budget!r} "
                                f"(it has {', '.join(sorted(data.budgets))})")
        chosen = Budget.parse(budget)
        return chosen, f"proxy {chosen.name} from fidelity run {name!r}"
    result = measure(data)
    best = result.cheapest(min_tau)
    if best is None:
        taus = ", ".join(f"{p.budget} tau {p.tau:.2f} [{p.tau_ci[0]:.2f}, {p.tau_ci[1]:.2f}]" for p in result.proxies)
        raise FidelityError(f"--proxy {text}: no proxy of fidelity run {name!r} has a Kendall tau interval above "
                            f"{min_tau:g} ({taus}); name one as {name}:BUDGET")
    return Budget.parse(best.budget), (f"proxy {best.budget} from fidelity run {name!r}: the cheapest whose Kendall "
                                       f"tau interval lies above {min_tau:g} (tau {best.tau:.2f} "
                                       f"[{best.tau_ci[0]:.2f}, {best.tau_ci[1]:.2f}], "
                                       f"{best.seconds_per_net:.0f} s a net)")
