"""`nasx fidelity`: measure how well proxy budgets rank nets against a reference budget (over nasx.experiments.fidelity)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .common import CountsLine, check_out, corner_option, exit_if_interrupted, fail, finite, held_out


def register(app: typer.Typer) -> None:
    """Add `fidelity` to the app."""

    @app.command()
    def fidelity(
        space: str = typer.Option("resnext", "--space", "-s", help="Space to draw the nets from (a shipped name or a YAML file)."),
        corner: Optional[str] = corner_option("on a CPU, `cpu` where the space has one"),
        samples: Optional[int] = typer.Option(None, "--samples", "-n", min=4, help="Nets drawn i.i.d. in the band (default: 16 on a CPU, 32 on a GPU)."),
        flops: Optional[str] = typer.Option(None, "--flops", help="FLOPs band LO:HI (default: the space's, or its corner's)."),
        from_study: Optional[str] = typer.Option(None, "--from-study", help="Take the nets of this study's complete trials instead of drawing (the first --samples of them)."),
        proxy: List[str] = typer.Option([], "--proxy", "-p", help="A proxy budget, repeatable: e<E>-f<F> (epochs, fraction), then -r<px> (image side) and -b<B> (batch) where wanted, e.g. e1-f0.25 or e1-f0.25-r24 (default on a CPU: e1-f0.0625, e1-f0.125 at 3/4 of the image side (r24 for CIFAR), e1-f0.125; on a GPU: e1-f0.25, e2-f0.5, e5-f1)."),
        reference: Optional[str] = typer.Option(None, "--reference", "-r", help="The reference budget, at least 4x the work of the largest proxy (default: e1-f0.5 on a CPU, explore's CPU proxy; e20-f1 on a GPU)."),
        name: Optional[str] = typer.Option(None, "--name", help="Run name: studies fidelity-NAME-BUDGET in studies/fidelity-NAME.journal, report reports/fidelity-NAME/ (default: SPACE[-CORNER] or the study's name)."),
        dataset: str = typer.Option("cifar10", "--dataset", "-d", help="cifar10 (default), cifar100, fashion-mnist, imagefolder:PATH, synthetic."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Where the dataset lies (else $NASX_DATA, then the cache)."),
        val_size: Optional[float] = typer.Option(None, "--val-size", callback=held_out(), help="Validation images held out of the training split: a share (0.1, the default) or a count."),
        seed: int = typer.Option(0, "--seed", min=0, help="Seed of the draw, the split and training."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: GPUs x --per-gpu, 1 on a CPU)."),
        per_gpu: int = typer.Option(1, "--per-gpu", min=1, help="Workers packed on each GPU."),
        device: str = typer.Option("auto", "--device", help="auto, cuda, cuda:N or cpu."),
        storage: Optional[str] = typer.Option(None, "--storage", help="Storage of the budget studies: a journal path or postgresql://... (default: studies/fidelity-NAME.journal)."),
        min_tau: float = typer.Option(0.7, "--min-tau", callback=finite("--min-tau", -1, 1), help="Name the cheapest proxy whose Kendall tau 95% interval lies above this (lower bound >= it) and whose tau beats ranking by FLOPs or params alone."),
        top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="k of the top-k overlap (default: a quarter of the nets)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report folder (default: reports/fidelity-NAME/)."),
        ceiling_seeds: int = typer.Option(1, "--ceiling-seeds", min=1, help="Train the reference this many times in all (seeds SEED, SEED+1, ...) and report its own seed-to-seed Kendall tau: the ceiling a proxy can reach (default 1: no ceiling)."),
        report_only: bool = typer.Option(False, "--report-only", help="Train nothing: measure what is stored and write the page."),
    ) -> None:
        """Train N nets under proxy budgets and a longer reference; report rank agreement (Kendall tau, Spearman rho,
        top-k, regret) and cost per proxy, naming the cheapest proxy that keeps the ranking."""
        from ..errors import NasxError
        from ..report.fidelity import write_fidelity_report

        if out is not None:
            check_out(out, folder=True)  # a report that cannot be written: before any training
        command = " ".join(["nasx", *map(shlex.quote, sys.argv[1:])])
        with_corner = corner if corner not in (None, "none") else None
        if name is None:
            name = from_study or (Path(space).stem + (f"-{with_corner}" if with_corner else ""))
        if not report_only:
            try:
                plan, cfg, notes = _plan(space, corner, samples, flops, from_study, proxy, reference, name, dataset,
                                         data_dir, val_size, seed, workers, per_gpu, device, storage, ceiling_seeds)
            except (NasxError, ValueError) as e:
                fail(str(e))
            _train(plan, cfg, name, notes)
        try:
            from ..experiments.fidelity import load_fidelity, measure

            folder = write_fidelity_report(name, storage=storage, out=out, min_tau=min_tau, top_k=top_k,
                                           command=command)
            result = measure(load_fidelity(name, storage))
        except (NasxError, ValueError) as e:
            fail(str(e))
        _say_result(result, min_tau, folder)


def _train(plan, cfg, name: str, notes: list[str]) -> None:
    """Say the plan, train every budget with a counts line, say where it is stored; exit 130 when interrupted."""
    from ..errors import NasxError
    from ..experiments.fidelity import run_fidelity
    from ..study import redact

    for note in notes:
        typer.echo(f"nasx: note: {note}", err=True)
    typer.echo(f"fidelity-{name}: {len(plan.nets)} nets x {len(plan.budgets)} budgets "
               f"({', '.join(b.name + (' (reference)' if b == plan.reference else '') for b in plan.budgets)})"
               + (f", the reference with {plan.ceiling_seeds} seeds in all" if plan.ceiling_seeds > 1 else ""),
               err=True)
    line = CountsLine()
    progress = lambda budget, snap: line(snap, budget)  # noqa: E731
    try:
        summaries = run_fidelity(plan, cfg, progress=progress, on_note=lambda m: typer.echo(f"nasx: note: {m}", err=True))
    except (NasxError, ValueError) as e:
        fail(str(e))
    wall = sum(s.wall_time for s in summaries)
    typer.echo(f"trained in {wall:.0f} s; stored in {redact(summaries[0].config.storage_url)}")
    exit_if_interrupted(bool(summaries) and summaries[-1].interrupted)


def _say_result(result, min_tau: float, folder) -> None:
    """One line per proxy, baseline and ceiling (tau, rho, top-k, regret, cost), the reference, the verdict."""
    from ..report.fidelity import verdict

    for p in (*result.proxies, *result.baselines, *result.ceiling):
        lo, hi = p.regret_range
        typer.echo(f"  {p.budget:<16} tau {p.tau:5.2f} [{p.tau_ci[0]:5.2f}, {p.tau_ci[1]:5.2f}]  rho {p.rho:5.2f}  "
                   f"top-{p.k} {p.top_k:4.0%}  regret {100 * p.regret:5.2f} pts ({100 * lo:.2f}-{100 * hi:.2f})  "
                   + ("no training" if p.kind == "baseline" else f"{p.seconds_per_net:6.1f} s/net")
                   + (" (ceiling)" if p.kind == "ceiling" else ""))
    typer.echo(f"  {result.reference:<16} (reference)  {result.reference_seconds:6.1f} s/net")
    typer.echo(verdict(result, min_tau))
    typer.echo(f"report: {folder}")


def _plan(space, corner, samples, flops, from_study, proxies, reference, name, dataset, data_dir, val_size, seed,
          workers, per_gpu, device, storage, ceiling_seeds=1):
    """The fidelity plan and its base StudyConfig, with the machine's defaults (notes say which were taken)."""
    import torch

    from .. import data as nasx_data
    from ..experiments.fidelity import default_budgets, plan_fidelity
    from ..space import load_space, parse_band
    from ..study import StudyConfig
    from ..study.fixed import draw
    from ..train.budget import Budget

    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    notes = []
    band = parse_band(flops, "--flops") if flops else None
    cfg = StudyConfig(space=space, dataset=dataset, data_dir=data_dir, seed=seed, workers=workers, per_gpu=per_gpu,
                      device=device, storage=storage,
                      val_size=val_size).check()
    given = tuple(Budget.parse(p) for p in proxies)  # bad budgets: one line, before decoding
    ref = Budget.parse(reference) if reference else None
    shape = nasx_data.input_shape(dataset, data_dir=data_dir)  # a missing dataset: one line; nothing decoded
    n = samples or (32 if cuda else 16)
    if from_study:
        from ..study.store import open_study

        nets = open_study(from_study, storage).nets(n=n)  # every distinct net it trained, rungs included
    else:
        sp = load_space(space)
        chosen = corner if corner is not None else ("cpu" if not cuda and "cpu" in sp.corners else None)
        if chosen not in (None, "none"):
            sp = sp.corner(chosen)
            if corner is None:
                notes.append(f"no GPU: nets from the space's `{chosen}` corner (--corner none for the whole space)")
        nets = draw(sp.at(shape), n, seed, flops=band)
    default_proxies, default_reference = default_budgets(cuda, shape.resolution)
    if given:
        proxy_budgets = given
    else:
        proxy_budgets = default_proxies
        notes.append(f"proxies {', '.join(b.name for b in proxy_budgets)} (the {'GPU' if cuda else 'CPU'} defaults)")
    ref = ref or default_reference
    return plan_fidelity(name, nets, proxy_budgets, ref, shape.resolution, ceiling_seeds=ceiling_seeds), cfg, notes
