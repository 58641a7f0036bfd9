"""`nasx ablate`: matched-complexity ablations (a thin typer layer over nasx.experiments.ablate)."""

from __future__ import annotations

import math
import shlex
import sys
from enum import Enum
from typing import Optional

import typer

from .common import CountsLine, exit_if_interrupted, fail, finite, held_out


class Axis(str, Enum):
    cardinality = "cardinality"
    width = "width"
    depth = "depth"
    bottleneck_ratio = "bottleneck-ratio"
    scale = "scale"


# long: the typer registration of `ablate`, a nested function (the thin CLI layer)
def register(app: typer.Typer) -> None:
    """Add `ablate` to the app."""

    # long (~65 lines, 20 of them its signature of 18 typer options): the command's body is short
    @app.command()
    def ablate(
        space: str = typer.Option("resnext", "--space", "-s", help="Space whose default template to use when --base is not given (resnext: a ResNeXt-29-style CIFAR net, 32x4d, on a GPU; ResNeXt-11 8x2d, 21.5 MFLOPs, on a CPU)."),
        base: Optional[str] = typer.Option(None, "--base", "-b", help="Template: a zoo name (resnet50, resnext50_32x4d, ...) or a spec file."),
        vary: Axis = typer.Option(Axis.cardinality, "--vary", help="cardinality | width | depth | bottleneck-ratio | scale (see docs/ablations.md)."),
        factor: float = typer.Option(2.0, "--factor", callback=finite("--factor", 0, above=True), help="With --vary scale: the complexity multiple (Table 4: 2)."),
        values: Optional[str] = typer.Option(None, "--values", help="Comma-separated axis values (cardinalities, multipliers or ratios); default: the axis's."),
        seeds: int = typer.Option(3, "--seeds", min=1, help="Seeds per setting (3 or more let the page say whether a trend exceeds seed noise)."),
        epochs: Optional[int] = typer.Option(None, "--epochs", "-e", min=1, help="Proxy budget in epochs (default: 5 on a GPU, 1 on a CPU)."),
        fraction: Optional[float] = typer.Option(None, "--fraction", callback=finite("--fraction", 0, 1, above=True), help="Share of the training split per epoch (default: 1 on a GPU, 0.02 on a CPU)."),
        dataset: str = typer.Option("cifar10", "--dataset", "-d", help="cifar10 (default), cifar100, fashion-mnist, imagefolder:PATH, synthetic."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Where the dataset lies (else $NASX_DATA, then the cache)."),
        val_size: Optional[float] = typer.Option(None, "--val-size", callback=held_out(), help="Validation images held out of the training split: a share (0.1, the default) or a count."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: GPUs x --per-gpu, 1 on a CPU)."),
        per_gpu: int = typer.Option(1, "--per-gpu", min=1, help="Workers packed on each GPU."),
        device: str = typer.Option("auto", "--device", help="auto, cuda, cuda:N or cpu."),
        name: Optional[str] = typer.Option(None, "--name", help="Ablation name: study ablation-NAME, report reports/ablation-NAME/ (default: VARY-TEMPLATE)."),
        out: Optional[str] = typer.Option(None, "--out", "-o", help="Report folder (default: reports/ablation-NAME/)."),
        storage: Optional[str] = typer.Option(None, "--storage", help="Study storage: a journal path or postgresql://... (default: a journal file in studies/)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the settings with their FLOPs deviations and exit; train nothing."),
    ) -> None:
        """Train settings of equal complexity that trade one design knob for another, and report error vs the knob."""
        from ..experiments.ablate import CPU_CARDINALITIES, format_plan, plan, resolve_template, run_ablation
        from ..report import write_ablation_report
        from ..errors import NasxError
        from ..study import StudyConfig, redact
        from ..train.budget import Budget

        try:
            cuda = device.startswith("cuda") or (device == "auto" and __import__("torch").cuda.is_available())
            template, label = resolve_template(space, base, cpu=not cuda)
            parsed = None
            if values is not None:
                try:
                    parsed = [float(v) for v in values.split(",") if v.strip()]
                except ValueError:
                    fail(f"--values {values}: expected numbers separated by commas")
                if not parsed or not all(math.isfinite(v) and v > 0 for v in parsed):
                    fail(f"--values {values}: each must be a finite number > 0")
            if parsed is None and base is None and not cuda and vary is Axis.cardinality:
                parsed = list(CPU_CARDINALITIES)
            p = plan(template, vary.value, factor=factor, values=parsed, template=label)
        except NasxError as e:
            fail(str(e))
        typer.echo(format_plan(p))
        if dry_run:
            return
        if name is None:
            name = f"{vary.value}-{label}" + (f"-x{factor:g}" if vary is Axis.scale else "")
        overrides = {"space": space, "dataset": dataset, "data_dir": data_dir,
                     "budget": Budget.given(epochs, fraction), "workers": workers, "per_gpu": per_gpu,
                     "device": device, "storage": storage,
                     "val_size": val_size}
        try:
            cfg = StudyConfig(**{k: v for k, v in overrides.items() if v is not None})
            summary = run_ablation(p, name=name, seeds=seeds, config=cfg, progress=CountsLine())
        except (NasxError, ValueError) as e:
            fail(str(e))
        snap = summary.snapshot
        typer.echo(f"study ablation-{name}: {snap.complete} complete, {snap.failed} failed in {summary.wall_time:.0f} s; "
                   f"stored in {redact(summary.config.storage_url)}")
        exit_if_interrupted(summary.interrupted)
        try:
            folder = write_ablation_report(name, storage=summary.config.storage_url, out=out,
                                           command=" ".join(["nasx", *map(shlex.quote, sys.argv[1:])]))
        except NasxError as e:
            fail(str(e))
        typer.echo(f"report: {folder}")
