"""`nasx compare`: retrain the fronts of two or more studies under new seeds and compare their hypervolumes on the
test split, with the difference's interval (typer over nasx.experiments.compare; live progress, Ctrl-C and resume
as `nasx explore`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import check_out, exit_if_interrupted, fail, study_errors

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add `compare` to the app."""

    @app.command()
    def compare(
        studies: list[str] = typer.Argument(..., help="Two or more studies; the first is the baseline (its top budget, split and band)."),
        seeds: str = typer.Option("1,2,3", "--seeds", help="Retraining seeds, comma-separated (>= 3 for an interval worth reading)."),
        retrain: Optional[str] = typer.Option(None, "--retrain", help="The companion study that holds the retrainings (default: FIRST-retrain); resumable."),
        storage: Optional[str] = typer.Option(None, "--storage", help="Storage URL holding the studies (default: STUDY.journal in --studies-dir)."),
        studies_dir: Path = typer.Option(Path("studies"), "--studies-dir", help="Where default journal files lie."),
        device: Optional[str] = typer.Option(None, "--device", help="auto (default), cuda, cuda:N or cpu."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: GPUs; 1 on a CPU)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for compare.md and compare.json (default: reports/compare-FIRST/)."),
    ) -> None:
        """Retrain every front net of the studies under new seeds at the first study's top budget (test split
        evaluated), then write each front's hypervolume per seed and of the seed means, and each later study's
        difference from the first, paired by seed, with its 95% t interval and a verdict. With every retraining
        stored already it trains nothing and re-renders.

        \b
        Examples:
          nasx compare cmp-default cmp-continue --seeds 1,2,3
          nasx compare e2e-after cmp-rungs --studies-dir reports/examples/rungs-vs-default-cpu --retrain cmp-retrain --seeds 1,2
        """
        from ..experiments.compare import compare as run_compare, retrain_name
        from ..study.record import Shelf
        from .explore import Display

        try:
            seed_list = [int(s) for s in seeds.split(",")]
        except ValueError:
            fail(f"--seeds {seeds}: give whole numbers separated by commas, e.g. 1,2,3")
        folder = out if out is not None else Path("reports") / f"compare-{studies[0]}"
        check_out(folder, folder=True)
        name = retrain or retrain_name(studies)
        display = Display(name)
        with study_errors(display, storage or str(studies_dir)):
            done = run_compare(studies, shelf=Shelf(storage, studies_dir), seeds=seed_list, retrain=name,
                               device=device, workers=workers, progress=display.update, on_note=display.note)
        if done is None:
            exit_if_interrupted(True)
            return
        page = done.write(folder)
        typer.echo(page.read_text().split("\n\nFront of ")[0])
        typer.echo(f"{done.trained} retraining(s) run; written {page} and {page.with_suffix('.json')}")
