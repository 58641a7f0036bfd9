"""`nasx repeat`: train a study's front, and the nets within seed noise of it, under K more seeds (typer over
nasx.study.repeat; live progress, Ctrl-C and resume as `nasx explore`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import check_out, exit_if_interrupted, fail, report_after_run, study_errors

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add `repeat` to the app."""

    @app.command()
    def repeat(
        study: str = typer.Argument(..., help="The study whose front to repeat."),
        repeats: int = typer.Option(..., "--repeats", "-k", min=1, help="More seeds per net (K >= 1): seeds s+1 ... s+K, s the seed of its first run."),
        storage: Optional[str] = typer.Option(None, "--storage", help="Storage URL holding the study (default: STUDY.journal in --studies-dir)."),
        studies_dir: Path = typer.Option(Path("studies"), "--studies-dir", help="Where default journal files lie."),
        device: Optional[str] = typer.Option(None, "--device", help="auto (default), cuda, cuda:N or cpu."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: GPUs; 1 on a CPU)."),
        report: bool = typer.Option(True, "--report/--no-report", help="Write the study's report at the end (also after Ctrl-C)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report folder (default: reports/STUDY/)."),
    ) -> None:
        """Train the nets on a study's front (at its top rung), then those within 2 sigma of seed noise of it,
        under K more seeds each, in the companion study STUDY-repeats; the report gives each net's mean, std and
        probability of being on the front.

        \b
        Examples:
          nasx repeat resnext --repeats 2
          nasx repeat quick --repeats 3 --storage postgresql://USER:PASS@HOST/DB
        """
        from ..study.record import Shelf
        from ..study.repeat import repeat as run_repeat
        from .explore import Display

        if isinstance(repeats, bool) or repeats < 1:
            fail(f"--repeats {repeats}: must be a whole number >= 1")
        if workers is not None and workers < 1:
            fail(f"--workers {workers}: must be a whole number >= 1")
        if out is not None:
            check_out(out, folder=True)
        shelf = Shelf(storage, studies_dir)
        display = Display(f"{study}-repeats")
        with study_errors(display, storage or str(studies_dir)):
            done = run_repeat(study, repeats, shelf=shelf, device=device,
                              workers=workers, progress=display.update, on_note=display.note)
        sigma = f"{100 * done.sigma:.2f} points" if done.sigma == done.sigma else "not known yet"
        typer.echo(f"study {study!r}: {len(done.front)} front net(s) and {len(done.near)} within seed noise of it "
                   f"repeated under {repeats} more seed(s) in {done.companion!r}; pooled seed std {sigma}")
        if report:
            from ..study.config import StudyConfig
            from ..study.references import references_config
            from ..study.store import has_study

            zoo = references_config(StudyConfig(study=study)).name  # the study's zoo references, where it has them
            refs = [zoo] if has_study(zoo, shelf.url(study)) else []
            report_after_run(study, Shelf(shelf.url(study), studies_dir), out, refs)  # its companions lie beside it
        exit_if_interrupted(done.interrupted)
