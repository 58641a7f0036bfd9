"""`nasx explore`: the typer command over nasx.study (live progress display, clear errors)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from .common import check_out, corner_option, exit_if_interrupted, fail, finite, held_out, report_after_run, study_errors


class Schedule(str, Enum):
    asha = "asha"


class Sampler(str, Enum):
    nsga2 = "nsga2"
    tpe = "tpe"
    random = "random"


# long: the typer registration of `explore`, a nested function whose length is its options and its summary lines
# (the thin CLI layer over nasx.study.explore)
def register(app: typer.Typer) -> None:
    """Add `explore` to the app."""

    @app.command()
    def explore(
        space: Optional[str] = typer.Option(None, "--space", "-s", help="A shipped space (see `nasx spaces`) or a space YAML file. Default: resnext."),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="A study file (YAML, e.g. in studies/); options given here override it."),
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="cifar10 (default), cifar100, fashion-mnist, imagefolder:PATH, synthetic."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Where the dataset lies (else $NASX_DATA, then the cache)."),
        val_size: Optional[float] = typer.Option(None, "--val-size", callback=held_out(), help="Validation split held out of the training set: a share (0.1, the default) or a number of images."),
        no_download: bool = typer.Option(False, "--no-download", help="Never download a missing dataset."),
        trials: Optional[int] = typer.Option(None, "--trials", "-n", min=1, help="Complete trials wanted (default: 40 on a GPU; on a CPU 10 per worker, ended by the 11-minute timeout)."),
        timeout: Optional[float] = typer.Option(None, "--timeout", callback=finite("--timeout", 0, above=True), help="Seconds after which no new trial starts."),
        epochs: Optional[int] = typer.Option(None, "--epochs", "-e", min=1, help="Proxy budget in epochs (default: 5 on a GPU, 1 on a CPU)."),
        fraction: Optional[float] = typer.Option(None, "--fraction", callback=finite("--fraction", 0, 1, above=True), help="Share of the training split per epoch (default: 1 on a GPU, 0.5 on a CPU)."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1, help="Training batch (default: 512 on a GPU, 128 on a CPU)."),
        resolution: Optional[int] = typer.Option(None, "--resolution", min=1, help="Train at this image side, a cheaper proxy (FLOPs on the chart stay the deployed net's at the data's side)."),
        proxy: Optional[str] = typer.Option(None, "--proxy", help="The proxy budget by name: e1-f0.25 (1 epoch on a quarter of the training split), -r24 (at 24 px) and -b128 (batch 128) optional; a fidelity run's budget FIDELITY:BUDGET; or a fidelity run FIDELITY (its cheapest proxy with Kendall tau >= 0.7; see `nasx fidelity`)."),
        corner: Optional[str] = corner_option("on a CPU, `cpu` where the space has one"),
        flops: Optional[str] = typer.Option(None, "--flops", help="FLOPs band LO:HI, e.g. 100M:150M (default: the space's)."),
        params: Optional[str] = typer.Option(None, "--params", help="Parameter band LO:HI, e.g. 0.5M:2M."),
        sampler: Optional[Sampler] = typer.Option(None, "--sampler", help="nsga2 (default), tpe or random."),
        study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the space's name); re-running resumes it."),
        storage: Optional[str] = typer.Option(None, "--storage", help="A database URL to share the study across machines (see the examples above; default: a journal file in studies/)."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: GPUs x --per-gpu; on a CPU one per core, 1 thread each, unless the study is sized)."),
        per_gpu: Optional[int] = typer.Option(None, "--per-gpu", min=1, help="Workers packed on each GPU (default 1)."),
        device: Optional[str] = typer.Option(None, "--device", help="auto (default), cuda, cuda:N or cpu."),
        seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Seed of the sampler, the split and training (default 0)."),
        throughput: bool = typer.Option(False, "--throughput", help="Add a third objective: measured training images/s (FLOPs do not predict GPU speed)."),
        no_prune: bool = typer.Option(False, "--no-prune", help="Train every trial to the end (see README for the pruning rule)."),
        report: bool = typer.Option(True, "--report/--no-report", help="Write the study's report at the end (also after Ctrl-C)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report folder (default: reports/STUDY/)."),
        references: bool = typer.Option(True, "--references/--no-references", help="After the search, train the zoo nets that fit the input in or near the band on the same proxy (once per study) and draw them as measured points."),
        rungs: Optional[str] = typer.Option(None, "--rungs", help="Successive halving: proxy budgets lowest first, e.g. e1-f0.125,e1-f0.5 (the top one is the study's budget). Every net starts at the lowest rung; the top 1/eta of a rung by Pareto rank of (error, FLOPs) is retrained at the next; the front is the top rung's. --trials then counts nets at the lowest rung. See docs/rungs.md."),
        eta: Optional[int] = typer.Option(None, "--eta", min=2, help="With --rungs or --schedule asha: a rung promotes its top 1/eta (default 3)."),
        schedule: Optional[Schedule] = typer.Option(None, "--schedule", help="asha: three rungs derived from the budget (its training share / eta^2, / eta, whole), as --rungs."),
        continue_: bool = typer.Option(False, "--continue", help="With --rungs or --schedule asha: each rung trains as a prefix of the top rung's run (warm-up, constant rate, a decay branch off a checkpoint of the state before it), so a promotion trains on from its checkpoint beside the study instead of retraining; a worker that cannot reach it retrains and says so. Opt-in: see docs/rungs.md."),
        predict_promotions: bool = typer.Option(False, "--predict", help="With --rungs or --schedule asha: once 8 nets were trained at both a rung and the top, rank the rung's nets by their predicted top-rung error (a Bayesian ridge regression on their rung error, log FLOPs and structure; optimistic bound) instead of their rung error. Opt-in: see docs/rungs.md."),
        repeats: int = typer.Option(0, "--repeats", min=0, help="After the search, train the front's nets and those within seed noise of it under K more seeds (as `nasx repeat`; 0: off)."),
    ) -> None:
        """Run (or resume) an Optuna study: maximize validation accuracy, minimize FLOPs, on the proxy budget.

        \b
        Examples:
          nasx explore --space resnext --dataset cifar10 --trials 40
          nasx explore --proxy e1-f0.25-r24 --study quick
          nasx explore --storage postgresql://USER:PASS@HOST/DB   (every machine)
        """
        from ..errors import NasxError
        from ..space import parse_band
        from ..study import StudyConfig, explore as run_explore, load_config, redact
        from ..study.record import Shelf
        from ..train.budget import Budget, BudgetError, Ladder

        if out is not None:
            check_out(out, folder=True)  # a report that cannot be written: before any training
        overrides = {
            "space": space, "dataset": dataset, "data_dir": data_dir, "trials": trials, "timeout": timeout,
            "val_size": val_size, "sampler": sampler.value if sampler else None, "study": study,
            "storage": storage, "workers": workers, "per_gpu": per_gpu, "device": device, "seed": seed,
            "corner": corner, "eta": eta if schedule else None, "schedule": schedule.value if schedule else None,
        }
        proxy_note = None
        try:
            overrides["budget"] = Budget.given(epochs, fraction, resolution, batch_size)  # the parts given; None: none
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
            if continue_:
                overrides["continuation"] = True
            if predict_promotions:
                overrides["predict_promotions"] = True
            if rungs is not None:
                given = [o for o, v in (("--epochs", epochs), ("--fraction", fraction), ("--resolution", resolution),
                                        ("--proxy", proxy)) if v is not None]
                if given:
                    fail(f"--rungs sets the budget (its top rung); leave out {', '.join(given)}")
                overrides["rungs"] = Ladder.parse(rungs, eta or 3)
            if eta is not None and rungs is None and schedule is None:
                fail("--eta needs --rungs or --schedule asha")
            if config is not None:
                cfg = load_config(config, **overrides)
            else:
                cfg = StudyConfig(**{k: v for k, v in overrides.items() if v is not None}).check()
            if proxy is not None:
                given = [o for o, v in (("--epochs", epochs), ("--fraction", fraction), ("--batch-size", batch_size),
                                        ("--resolution", resolution)) if v is not None]
                if given:
                    fail(f"--proxy sets the budget; leave out {', '.join(given)}")
                try:
                    budget = Budget.parse(proxy)
                    proxy_note = f"proxy {budget.name}"
                except BudgetError:  # not a budget: a fidelity run (NAME, or NAME:BUDGET), whose measure picks one
                    from ..experiments.fidelity import resolve_proxy
                    from ..study.storage import is_rdb

                    budget, proxy_note = resolve_proxy(proxy, storage=storage if storage and is_rdb(storage) else None)
                cfg = cfg.with_budget(budget).check()
            display = Display(cfg.name)
            if proxy_note:
                display.note(proxy_note)
        except (NasxError, ValueError) as e:
            fail(str(e))
        with study_errors(display, cfg.storage_url):
            done = run_explore(cfg, references=references, progress=display.update, on_note=display.note,
                               repeats=repeats)
        summary = done.study
        cfg = summary.config
        snap = summary.snapshot
        typer.echo(f"study {cfg.name!r}: {snap.complete} complete, {snap.pruned} pruned, {snap.failed} failed "
                   f"in {summary.wall_time:.0f} s; stored in {redact(cfg.storage_url)}")
        if snap.front:
            typer.echo("Pareto front (val accuracy vs FLOPs" + (", top rung):" if snap.rungs else "):"))
            for point in snap.front:
                typer.echo(f"  trial {point.number:>4}  acc {point.val_acc:7.2%}  FLOPs {point.flops:>14,}  "
                           f"{point.description}")
        if report:
            references = [done.reference_study] if done.reference_study else []
            report_after_run(cfg.name, Shelf(cfg.storage_url), out, references)
        exit_if_interrupted(done.interrupted)
        if snap.failed and not snap.complete:
            fail(f"study {cfg.name!r}: every trial failed ({snap.failed}), none complete; the reasons are in the "
                 f"trials' fail_reason (`nasx report {cfg.name}`, trials.csv)", code=1)


LOCK_SLOW = 5.0  # seconds a journal's lock may be held before the display says so (a write holds it for ms)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


class Display:
    """Live progress: a rich panel on a terminal (per running trial: epoch, steps, ETA; the study's counts and
    front), one line per change otherwise."""

    def __init__(self, name: str):
        self.name = name
        self.live = None
        self.last = None
        self.console = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self.console = Console(stderr=True)
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.start()

    def note(self, message: str) -> None:
        """A one-line note above the live panel."""
        if self.console is not None:
            self.console.print(f"nasx: note: {message}", markup=False, highlight=False)
        else:
            typer.echo(f"nasx: note: {message}", err=True)

    def update(self, snap) -> None:
        line = (f"[{snap.elapsed:6.0f} s] {snap.study or self.name}: {snap.complete} done, {snap.running} running, "
                f"{snap.pruned} pruned, {snap.failed} failed")
        if snap.rungs:
            line += f" (by rung, lowest first: {' / '.join(map(str, snap.rungs))})"
        if snap.lock_wait >= LOCK_SLOW:
            line += (f"; the journal's lock has been held for {snap.lock_wait:.0f} s (every writer waits: a stopped "
                     f"or stuck process holds it)")
        if snap.continued or snap.retrained:
            line += (f"; promotions: {snap.continued} trained on from a checkpoint, {snap.retrained} retrained (no "
                     f"usable checkpoint)")
        if self.live is not None:
            from rich.console import Group
            from rich.progress_bar import ProgressBar
            from rich.table import Table
            from rich.text import Text

            running = Table(title="running", title_justify="left", expand=False)
            for col in ("trial", "epoch", "progress", "steps", "ETA", "architecture"):
                running.add_column(col)
            for r in snap.running_trials:
                running.add_row(str(r.number), f"{r.epoch}/{r.epochs}" if r.epochs else "-",
                                ProgressBar(total=max(1, r.steps), completed=r.step, width=24),
                                f"{r.step}/{r.steps}" if r.steps else "starting", _eta(r.eta), r.description)
            front = Table(title="Pareto front (val accuracy vs FLOPs" + (", top rung)" if snap.rungs else ")"),
                          title_justify="left")
            for col in ("trial", "val acc", "FLOPs", "architecture"):
                front.add_column(col)
            for p in snap.front[:12]:
                front.add_row(str(p.number), f"{p.val_acc:.2%}", f"{p.flops:,}", p.description)
            self.live.update(Group(Text(line + "   (Ctrl-C stops; the same command resumes)"), running, front))
        else:
            key = line.split("]", 1)[1]
            if key != self.last:
                self.last = key
                front = "; ".join(f"{p.val_acc:.1%}@{p.flops / 1e6:.3g}M" for p in snap.front[:6])
                typer.echo(line + (f" | front: {front}" if front else ""), err=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
