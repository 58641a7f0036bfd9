"""`nasx refine`: let the data design the space (a thin typer layer over nasx.experiments.refine and nasx.report.refine)."""

from __future__ import annotations

import shlex
import sys
from enum import Enum
from typing import Optional

import typer

from .common import CountsLine, corner_option, exit_if_interrupted, fail, finite, guard, held_out

__all__ = ["register"]


class Correction(str, Enum):
    spending = "spending"
    bonferroni = "bonferroni"
    none = "none"


# long: the typer registration of `refine`, a nested function (the thin CLI layer)
def register(app: typer.Typer) -> None:
    """Add `refine` to the app."""

    # long (~64 lines, 27 of them its signature of 25 typer options): the command's body is short
    @app.command()
    def refine(
        space: Optional[str] = typer.Option(None, "--space", "-s", help="A shipped space or a space YAML file to sample (with --study: default, the study's own)."),
        corner: Optional[str] = corner_option("the whole space; a corner is flattened into the refined file"),
        study: Optional[str] = typer.Option(None, "--study", help="Refine an existing study (nasx edf, explore, or an earlier round) instead of sampling round 1."),
        flops: Optional[str] = typer.Option(None, "--flops", help="FLOPs band LO:HI every round samples in, e.g. 10M:30M (default: the space's)."),
        samples: Optional[int] = typer.Option(None, "--samples", "-n", min=1, help="Nets per round (default 48; with --study, its complete nets)."),
        rounds: int = typer.Option(1, "--rounds", "-r", min=1, help="Rounds of sample -> train -> refine; round k+1 samples round k's refined space (kept nothing: the same space, judged pooled)."),
        epochs: Optional[int] = typer.Option(None, "--epochs", "-e", min=1, help="Proxy budget in epochs (default: 5 on a GPU, 1 on a CPU)."),
        fraction: Optional[float] = typer.Option(None, "--fraction", callback=finite("--fraction", 0, 1, above=True), help="Share of the training split per epoch (default: 1 on a GPU, 0.5 on a CPU)."),
        val_size: Optional[float] = typer.Option(None, "--val-size", callback=held_out(), help="Validation images held out of the training split: a share (0.1, the default) or a count."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1, help="Training batch (default: 512 on a GPU, 128 on a CPU)."),
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="cifar10 (default), cifar100, fashion-mnist, imagefolder:PATH, synthetic."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Where the dataset lies (else $NASX_DATA, then the cache)."),
        seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Seed of the samples, the split and training (default 0)."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: GPUs x --per-gpu, 1 on a CPU)."),
        device: str = typer.Option("auto", "--device", help="auto, cuda, cuda:N or cpu."),
        name: Optional[str] = typer.Option(None, "--name", help="Names the studies refine-NAME-r<k> and the folder (default: SPACE-CORNER, or the study's name)."),
        storage: Optional[str] = typer.Option(None, "--storage", help="Storage of the rounds' studies, a journal path or postgresql URL (default: a journal in studies/ named after the run; with --study, the study's)."),
        out: Optional[str] = typer.Option(None, "--out", "-o", help="Folder of the round files, refined.yaml and the page (default: reports/refine-NAME/)."),
        alpha: float = typer.Option(0.05, "--alpha", callback=finite("--alpha", 0, 1, above=True, below=True), help="Family-wise error rate of the whole run (with --correction spending), else of each step."),
        correction: Correction = typer.Option(Correction.spending, "--correction", help="spending (round k, step s: alpha / 2^k / 2^s / candidates; the run's family-wise error < alpha), bonferroni (alpha / candidates in each step) or none."),
        permutations: int = typer.Option(1000, "--permutations", min=100, help="First batch of within-bin permutations of each p-value (doubled until 20 are as extreme as the observed split, or as many as the threshold needs: 20 / threshold)."),
        max_permutations: Optional[int] = typer.Option(None, "--max-permutations", min=100, help="Cap of the permutations of one p-value (default: none, as many as the threshold needs); where it stops short and p's Monte Carlo interval holds the threshold, the decision is undecided (not kept)."),
        perm_seed: int = typer.Option(0, "--perm-seed", min=0, help="Seed of the permutations (a valid p-value under every seed; a decision near the threshold may differ: the page marks it borderline)."),
        check_seeds: int = typer.Option(0, "--check-seeds", min=0, help="Redo each round's refinement (nothing trained) under permutation seeds 0..N-1 and say on the page whether every decision is the same."),
        no_download: bool = typer.Option(False, "--no-download", help="Never download a missing dataset."),
    ) -> None:
        """Test restrictions of a space on trained nets (shared, monotone, cut, dropped) and write the refined space."""
        from ..experiments.refine import RefineOptions, run_refine
        from ..report import write_refine_report
        from ..space import parse_band
        from ..study import StudyConfig
        from ..train.budget import Budget

        if space is None and study is None:
            fail("give --space (sample and train round 1) or --study (refine an existing study)")
        if study is not None:
            given = [f"--{k.replace('_', '-')}" for k, v in (("epochs", epochs), ("fraction", fraction),
                                                               ("val_size", val_size), ("batch_size", batch_size),
                                                               ("dataset", dataset), ("seed", seed)) if v is not None]
            if given:
                fail(f"--study {study}: later rounds train on the study's own proxy; leave out {', '.join(given)}")
        with guard():
            band = parse_band(flops, "--flops") if flops is not None else None
            settings = {"dataset": dataset, "data_dir": data_dir, "val_size": val_size,
                        "budget": Budget.given(epochs, fraction, batch_size=batch_size), "seed": seed,
                        "workers": workers, "device": device,
                        "storage": storage, "flops": band, "download": not no_download}
            cfg = StudyConfig(**{k: v for k, v in settings.items() if v is not None})
            options = RefineOptions(alpha=alpha, correction=correction.value, n_perm=permutations,
                                    max_perm=None if max_permutations is None else max(max_permutations, permutations), perm_seed=perm_seed)
            run = run_refine(space, name=name, config=cfg, corner=corner, samples=samples, rounds=rounds, study=study,
                             out=out, options=options, progress=CountsLine(by_study=True),
                             on_note=lambda line: typer.echo(line, err=True), check_seeds=check_seeds)
        exit_if_interrupted(run.interrupted)
        with guard():
            folder = write_refine_report(run, command=" ".join(["nasx", *map(shlex.quote, sys.argv[1:])]))
        for r in run.rounds:
            kept = r.refinement.kept
            typer.echo(f"round {r.index} ({r.study}, judged on {r.judged_text()}): {len(kept)} kept"
                       + "".join(f"; {e.restriction.text} (KS {e.ks:.3f}, p {e.p_value:.4f})" for e in kept))
        typer.echo(f"refined space: {run.refined}")
        typer.echo(f"report: {folder / 'index.html'}")
