"""`nasx simulate`: search strategies compared at equal compute on a simulated clock (over nasx.experiments.simulate)."""

from __future__ import annotations

import shlex
import sys
from functools import partial
from pathlib import Path
from typing import Optional

import typer

from .common import corner_option, fail, finite, guard

DEFAULT_STRATEGIES = "random,nsga2,rungs"


def register(app: typer.Typer) -> None:
    """Add `simulate` to the app."""

    @app.command()
    def simulate(
        space: str = typer.Option("resnext", "--space", "-s", help="Space of the planted benchmark's nets."),
        corner: Optional[str] = corner_option("cpu", "cpu"),
        flops: str = typer.Option("10M:30M", "--flops", help="FLOPs band of the nets, LOW:HIGH."),
        replay: Optional[str] = typer.Option(None, "--replay", help="Replay a stored fidelity run (its name) instead of the planted benchmark: its budgets are the rungs, its reference the top."),
        storage: Optional[str] = typer.Option(None, "--storage", help="With --replay or --noise-from: the fidelity run's storage, a journal path or postgresql URL (default: its journal in studies/)."),
        strategies: str = typer.Option(DEFAULT_STRATEGIES, "--strategies", help="Comma-separated: random, nsga2, tpe (fixed budget; tpe is slow: its asks grow with the study) and rungs; rungs+continue (a promotion trains on from its checkpoint), rungs+predict (promotions ranked by predicted top error), rungs+continue+predict."),
        rungs: str = typer.Option("1/9,1/3,1", "--rungs", help="Rung budgets as work relative to the top budget (1), e.g. 1/9,1/3,1 or 0.25,1; with --replay: budget names (e1-f0.125,e1-f0.5)."),
        eta: int = typer.Option(3, "--eta", min=2, help="Reduction factor: a rung promotes its top 1/eta."),
        compute: float = typer.Option(7200.0, "--compute", callback=finite("--compute", 1), help="Compute budget of every run in device-seconds (default: 2 workers x 1 h)."),
        workers: int = typer.Option(2, "--workers", "-w", min=1, help="Simulated workers."),
        seeds: int = typer.Option(20, "--seeds", min=1, help="Runs per strategy."),
        first_seed: int = typer.Option(0, "--first-seed", min=0, help="Seeds are FIRST, ..., FIRST + SEEDS - 1 (fresh seeds confirm a ladder chosen on others)."),
        proxy_noise: float = typer.Option(1.0, "--proxy-noise", callback=finite("--proxy-noise", 0), help="Planted benchmark: scale of the noise that makes a cheap budget rank worse than the top one (1: the measured CPU proxies; 0: only the top budget's seed noise). The page states the Kendall tau it gives at 1/9 of the top budget."),
        noise_from: Optional[str] = typer.Option(None, "--noise-from", help="Planted benchmark with the proxy-noise scale fitted to a stored fidelity run (its name; --storage where it lies): the S whose planted Kendall taus at its data-share proxies' work come nearest the measured ones (against each reference seed), with a bootstrap interval over its nets."),
        out: Optional[str] = typer.Option(None, "--out", "-o", help="Report folder (default reports/simulate-SPACE/)."),
    ) -> None:
        """Compare search strategies at equal compute: compute each needs to reach random search's hypervolume.

        \b
        nasx simulate                                   # planted benchmark, resnext's cpu corner
        nasx simulate --rungs 0.25,1 --eta 4 --seeds 20
        nasx simulate --proxy-noise 0.25 --strategies random,rungs   # a cheap budget that ranks better
        nasx simulate --replay resnext-cpu --rungs e1-f0.125,e1-f0.5 --eta 4
        nasx simulate --noise-from rungs-cpu --first-seed 100   # S fitted to a fidelity run
        """
        from ..experiments.simulate import STRATEGIES, compare, strategy_known

        names = [s.strip() for s in strategies.split(",") if s.strip()]
        unknown = [s for s in names if not strategy_known(s)]
        if unknown or not names:
            fail(f"--strategies: unknown {', '.join(unknown) or '(none given)'} (use {', '.join(STRATEGIES)}, or "
                 f"rungs+continue, rungs+predict, rungs+continue+predict)")
        if replay and (proxy_noise != 1.0 or noise_from):
            fail("--proxy-noise and --noise-from set the planted benchmark's noise; --replay serves recorded results "
                 "as they are")
        if noise_from and proxy_noise != 1.0:
            fail("give --proxy-noise or --noise-from (which fits it), not both")
        with guard():
            fit_lines: list[str] = []
            if noise_from:
                proxy_noise, fit_lines = _fit_noise(noise_from, storage, space, corner, flops)
                for line in fit_lines:
                    typer.echo(line, err=True)
            make_oracle, ladder, setup = (_replay(replay, storage, rungs, eta) if replay else
                                          _planted(space, corner, flops, rungs, eta, proxy_noise))
            setup = setup + fit_lines
            if replay and any(n in ("nsga2", "tpe") for n in names):
                fail("--replay serves a fixed pool of nets: use --strategies random,rungs")
            folder = Path(out) if out else Path("reports") / f"simulate-{replay or space}"
            runs = [0]

            def on_run(trace) -> None:
                runs[0] += 1
                typer.echo(f"\r{runs[0]}/{len(set(['random'] + names)) * seeds} runs ({trace.strategy}, seed "
                           f"{trace.seed})", err=True, nl=False)

            result = compare(make_oracle, names, ladder, compute, seeds, workers, on_run, first_seed=first_seed)
            native = make_oracle().native
            work = ladder.work(native)
            typer.echo("", err=True)
            from ..report.simulate import write_simulation_report

            setup = [f"command: nasx {shlex.join(sys.argv[1:])}", *setup,
                     f"{workers} simulated workers, {compute:g} device-seconds per run, {seeds} seeds per strategy "
                     f"({first_seed}-{first_seed + seeds - 1})",
                     f"rungs (work relative to the top): {', '.join(f'{w:.3g}' for w in work)}, eta {ladder.eta}; "
                     f"rungs: a promoted net is retrained from scratch (work per net reaching the top: "
                     f"{ladder.retrain_overhead(native):.2f} x the top budget); rungs+continue: it trains on from its "
                     f"checkpoint, paying the rest of the top's trunk and its own decay branch (a fifth of its work), "
                     f"the fixed cost and 0.1 s of checkpoint I/O; rungs+predict: ranked by predicted top error "
                     f"once 8 nets reached the top"]
            page = write_simulation_report(result, folder, "Search strategies at equal compute", setup)
        for o in result.outcomes:
            typer.echo(f"{o.strategy:>7}: compute to target {o.median_to_target:,.0f} s (median, "
                       f"{o.reached}/{len(o.to_target)} seeds reached it; {o.median_to_target / result.compute:.2f} of "
                       f"the budget)")
        typer.echo(f"report: {page}")


def _fraction(text: str) -> float:
    num, _, den = text.partition("/")
    if den and float(den) == 0:
        raise ValueError(f"{text}: a share with a zero denominator")
    return float(num) / float(den) if den else float(num)


def _planted(space: str, corner: Optional[str], flops: str, rungs: str, eta: int, proxy_noise: float = 1.0):
    from ..experiments.simulate import PlantedBenchmark, planted_ladder
    from ..space import load_space, parse_band
    from ..train.budget import BudgetError

    sp = load_space(space).with_corner(corner or None)
    band = parse_band(flops, "--flops")
    try:
        shares = [_fraction(r) for r in rungs.split(",") if r.strip()]
        ladder = planted_ladder(shares, eta)
    except (BudgetError, ValueError) as e:
        fail(f"--rungs {rungs!r}: {e}")
    if abs(shares[-1] - 1.0) > 1e-9:
        fail(f"--rungs {rungs!r}: the last rung is the top budget, write it as 1")
    make = partial(PlantedBenchmark, sp, (float(band[0]), float(band[1])), proxy_noise=proxy_noise)
    taus = {w: make().proxy_tau(w) for w in dict.fromkeys((1 / 9, ladder.work()[0]))}
    setup = [f"planted benchmark: nets of {space}" + (f" ({corner} corner)" if corner and corner != "none" else "")
             + f" in {flops} FLOPs, accuracies as docs/simulate.md states",
             f"proxy noise scale {proxy_noise:g} (1: the measured CPU proxies): Kendall tau against one seed of the top "
             "budget, 300 nets, " + ", ".join(f"{tau:.2f} at work {_name(w)}" for w, tau in taus.items())]
    return make, ladder, setup


def _fit_noise(name: str, storage: Optional[str], space: str, corner: Optional[str], flops: str) -> tuple[float, list[str]]:
    """S fitted to fidelity run `name` (nasx.experiments.planted_fit) and the lines that state the fit."""
    from ..experiments.fidelity import load_fidelity
    from ..experiments.planted_fit import fit_proxy_noise, measured_taus
    from ..experiments.simulate import PlantedBenchmark
    from ..space import load_space, parse_band

    sp = load_space(space).with_corner(corner or None)
    band = parse_band(flops, "--flops")
    try:
        data = measured_taus(load_fidelity(name, storage))
    except ValueError as e:
        fail(f"--noise-from: {e}")
    fit = fit_proxy_noise(data, partial(PlantedBenchmark, sp, (float(band[0]), float(band[1]))))
    rows = ", ".join(f"{n} (work {w:.3g}) {m:.2f} measured / {p:.2f} planted{'' if f else ', not fitted: another side'}"
                     for n, w, f, m, p in zip(fit.names, fit.works, fit.fitted, fit.measured, fit.planted))
    lines = [f"proxy noise fitted to fidelity run {name} ({fit.nets} nets): S = {fit.scale:g}, "
             f"{int(fit.boots)} bootstrap fits over the nets: 95% {fit.interval[0]:g}-{fit.interval[1]:g}"
             + (f" ({fit.at_edge:.0%} of them at the grid's end, 0-8: there the measured proxies rank about as well as "
                "chance, and S is a lower bound)" if fit.at_edge else ""),
             f"Kendall tau against each reference seed, mean: {rows}",
             f"top budget seed-to-seed tau: {fit.ceiling_measured:.2f} measured / {fit.ceiling_planted:.2f} planted"]
    return fit.scale, lines


def _name(work: float) -> str:
    """1/9 for a unit fraction's work, else its value (0.3)."""
    inverse = 1 / work
    return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-9 else f"{work:.3g}"


def _replay(name: str, storage: Optional[str], rungs: str, eta: int):
    from ..experiments.fidelity import load_fidelity
    from ..experiments.simulate import ReplayTable
    from ..train.budget import BudgetError, Ladder

    data = load_fidelity(name, storage)
    reference = next(b for b, role in data.roles.items() if role == "reference")
    try:
        ladder = Ladder.parse(rungs, eta)
    except BudgetError as e:
        fail(f"--rungs {rungs!r}: {e}")
    missing = [b.name for b in ladder.budgets if b.name not in data.budgets]
    if missing:
        fail(f"--rungs: fidelity run {name!r} has no budget {', '.join(missing)} (it has {', '.join(data.budgets)})")
    if ladder.budgets[-1].name != reference:
        fail(f"--rungs: the last rung must be the run's reference budget {reference}")
    setup = [f"replay of fidelity run {name} ({data.storage}): its recorded accuracies and seconds"]
    return (lambda: ReplayTable.from_fidelity(data)), ladder, setup
