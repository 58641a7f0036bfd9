"""`nasx explore`: the typer command over nasx.study (live progress display, clear errors)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer


class Sampler(str, Enum):
    nsga2 = "nsga2"
    tpe = "tpe"
    random = "random"


def register(app: typer.Typer) -> None:
    """Add `explore` to the app."""

    @app.command()
    def explore(
        space: Optional[str] = typer.Option(None, "--space", "-s", help="A shipped space (see `nasx spaces`) or a space YAML file. Default: resnext."),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="A study file (studies/NAME.yaml); options given here override it."),
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="cifar10 (default), cifar100, fashion-mnist, imagefolder:PATH, synthetic."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Where the dataset lies (else $NASX_DATA, then the cache)."),
        val_size: Optional[float] = typer.Option(None, "--val-size", help="Validation split held out of the training set: a share (0.1, the default) or a number of images."),
        no_download: bool = typer.Option(False, "--no-download", help="Never download a missing dataset."),
        trials: Optional[int] = typer.Option(None, "--trials", "-n", help="Complete trials wanted (default: 40 on a GPU, 4 on a CPU)."),
        timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds after which no new trial starts."),
        epochs: Optional[int] = typer.Option(None, "--epochs", "-e", help="Proxy budget in epochs (default: 5 on a GPU, 1 on a CPU)."),
        fraction: Optional[float] = typer.Option(None, "--fraction", help="Share of the training split per epoch (default: 1 on a GPU, 0.02 on a CPU)."),
        flops: Optional[str] = typer.Option(None, "--flops", help="FLOPs band LO:HI, e.g. 100M:150M (default: the space's)."),
        params: Optional[str] = typer.Option(None, "--params", help="Parameter band LO:HI, e.g. 0.5M:2M."),
        sampler: Optional[Sampler] = typer.Option(None, "--sampler", help="nsga2 (default), tpe or random."),
        study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the space's name); re-running resumes it."),
        storage: Optional[str] = typer.Option(None, "--storage", help="postgresql://user:pass@host/db to share the study across machines (default: studies/NAME.journal)."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Worker processes (default: GPUs x --per-gpu, 1 on a CPU)."),
        per_gpu: Optional[int] = typer.Option(None, "--per-gpu", help="Workers packed on each GPU (default 1)."),
        device: Optional[str] = typer.Option(None, "--device", help="auto (default), cuda, cuda:N or cpu."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the sampler, the split and training (default 0)."),
        throughput: bool = typer.Option(False, "--throughput", help="Add a third objective: measured training images/s (FLOPs do not predict GPU speed)."),
        no_prune: bool = typer.Option(False, "--no-prune", help="Train every trial to the end (see README for the pruning rule)."),
        report: bool = typer.Option(True, "--report/--no-report", help="Write the study's report at the end."),
    ) -> None:
        """Run (or resume) an Optuna study: maximize validation accuracy, minimize FLOPs, on the proxy budget."""
        from .cli import fail
        from .data import DataError
        from .space import parse_band
        from .net.spec import SpecError
        from .study import StudyConfig, load_config, redact, run_study

        overrides = {
            "space": space, "dataset": dataset, "data_dir": data_dir, "trials": trials, "timeout": timeout,
            "epochs": epochs, "val_size": (int(val_size) if val_size and val_size >= 1 else val_size), "fraction": fraction, "sampler": sampler.value if sampler else None, "study": study,
            "storage": storage, "workers": workers, "per_gpu": per_gpu, "device": device, "seed": seed,
        }
        try:
            if flops:
                overrides["flops"] = parse_band(flops, "--flops")
            if params:
                overrides["params"] = parse_band(params, "--params")
            if no_download:
                overrides["download"] = False
            if throughput:
                overrides["objectives"] = ("accuracy", "flops", "throughput")
            if no_prune:
                overrides["prune"] = False
            if config is not None:
                cfg = load_config(config, **overrides)
            else:
                cfg = StudyConfig(**{k: v for k, v in overrides.items() if v is not None}).check()
            display = Display(cfg.name)
        except (SpecError, DataError, ValueError) as e:
            fail(str(e))
        try:
            summary = run_study(cfg, progress=display.update,
                                on_note=lambda note: typer.echo(f"nasx: note: {note}", err=True))
        except (SpecError, DataError, ValueError) as e:
            display.close()
            fail(str(e))
        display.close()
        cfg = summary.config
        snap = summary.snapshot
        where = redact(cfg.storage_url)
        typer.echo(f"study {cfg.name!r}: {snap.complete} complete, {snap.pruned} pruned, {snap.failed} failed "
                   f"in {summary.wall_time:.0f} s; stored in {where}")
        if snap.front:
            typer.echo("Pareto front (val accuracy vs FLOPs):")
            for number, acc, f, desc in snap.front:
                typer.echo(f"  trial {number:>4}  acc {acc:7.2%}  FLOPs {f:>14,}  {desc}")
        if summary.interrupted:
            typer.echo("interrupted: run the same command again to resume", err=True)
            raise typer.Exit(130)
        if report and snap.complete:
            try:
                from .report import write_report
            except ImportError:
                return
            try:
                out = write_report([cfg.name], storage=cfg.storage_url)
            except Exception as e:  # noqa: BLE001 - the study is saved; a report problem must not hide that
                typer.echo(f"nasx: warning: no report ({e}); try `nasx report {cfg.name}`", err=True)
                return
            typer.echo(f"report: {out}")


class Display:
    """Live progress: a rich panel on a terminal, one line per change otherwise."""

    def __init__(self, name: str):
        self.name = name
        self.live = None
        self.last = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(console=Console(stderr=True), refresh_per_second=2, transient=False)
            self.live.start()

    def update(self, snap) -> None:
        line = (f"[{snap.elapsed:6.0f} s] {self.name}: {snap.complete} done, {snap.running} running, "
                f"{snap.pruned} pruned, {snap.failed} failed")
        if self.live is not None:
            from rich.table import Table

            table = Table(title=line, title_justify="left")
            for col in ("trial", "val acc", "FLOPs", "architecture"):
                table.add_column(col)
            for number, acc, f, desc in snap.front[:12]:
                table.add_row(str(number), f"{acc:.2%}", f"{f:,}", desc)
            self.live.update(table)
        elif line.split("]", 1)[1] != self.last:
            self.last = line.split("]", 1)[1]
            front = "; ".join(f"{acc:.1%}@{f / 1e6:.0f}M" for _, acc, f, _ in snap.front[:6])
            typer.echo(line + (f" | front: {front}" if front else ""), err=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
