"""The `nasx report`, `nasx export` and `nasx edf` commands (typer); `register(app)` adds them."""

from __future__ import annotations

import gc
import re
from pathlib import Path
from typing import List, Optional

import typer

from .common import check_out, exit_if_interrupted, fail, finite, guard

__all__ = ["register", "edf_study_name"]


def edf_study_name(space: str, dataset: str, flops: tuple[int, int], epochs: int, n: int, seed: int) -> str:
    """The fixed-candidate study of one space's i.i.d. sample: same arguments, same study (so it resumes)."""
    name = f"edf-{Path(space).stem}-{dataset}-{flops[0]}-{flops[1]}-e{epochs}-n{n}-s{seed}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# long: the typer registration of the report commands, each a nested function (the thin CLI layer)
def register(app: typer.Typer) -> None:
    """Add `report`, `export` and `edf` to `app`."""

    @app.command()
    def report(
        studies: List[str] = typer.Argument(..., help="One or more study names (several: one curve per study)."),
        storage: Optional[str] = typer.Option(None, "--storage", help="Storage URL holding the studies (default: studies/NAME.journal)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: reports/STUDY/)."),
        reference: List[str] = typer.Option([], "--reference", help="A study on the same proxy whose trials give zoo nets a measured accuracy."),
        studies_dir: Path = typer.Option(Path("studies"), "--studies-dir", help="Where default journal files lie."),
        formats: str = typer.Option("svg", "--formats", help="The figures' formats, comma-separated: svg, png or "
                                    "both (png,svg); each figure is written once per format, the page shows the first."),
    ) -> None:
        """Write index.html, the figures (SVG; PNG too with --formats) and trials.csv / pareto.csv of stored studies."""
        from ..report import write_report
        from ..report.figures import parse_formats
        from ..study.record import Shelf

        with guard():
            chosen = parse_formats(formats)
        if out is not None:
            check_out(out, folder=True)
        # while the report is written, Python's cyclic collector is off: it would walk the ~10^6 objects of a loaded
        # 10,000-trial study again and again as they are made (2 s of 11 there), and frees little
        collecting = gc.isenabled()
        gc.disable()
        try:
            with guard():
                index = write_report(list(studies), Shelf(storage, studies_dir), out=out, references=list(reference),
                                     formats=chosen)
        finally:
            if collecting:
                gc.enable()
        typer.echo(f"report: {index}")

    @app.command()
    def export(
        study: str = typer.Argument(..., help="Study name."),
        out: Path = typer.Option(..., "--out", "-o", help="Spec file to write: .yaml/.yml or .json."),
        trial: Optional[int] = typer.Option(None, "--trial", "-t", min=0, help="Trial number."),
        best: bool = typer.Option(False, "--best", help="The most accurate complete trial."),
        max_flops: Optional[str] = typer.Option(None, "--max-flops", help="With --best: at most this many FLOPs, e.g. 30M."),
        storage: Optional[str] = typer.Option(None, "--storage", help="Storage URL (default: studies/STUDY.journal)."),
        studies_dir: Path = typer.Option(Path("studies"), "--studies-dir", help="Where default journal files lie."),
    ) -> None:
        """Write a trial's spec (JSON or YAML by suffix) for nasx count / nasx train / nasx.build."""
        from ..report import best_trial
        from ..space import parse_count
        from ..study.store import open_study

        if (trial is None) == (not best):
            fail("give exactly one of --trial N or --best")
        if max_flops is not None and not best:
            fail("--max-flops goes with --best")
        if out.suffix.lower() not in (".yaml", ".yml", ".json"):
            fail(f"{out}: the file must end in .yaml, .yml or .json")
        check_out(out)
        with guard("--max-flops: " if max_flops is not None else ""):
            limit = parse_count(max_flops) if max_flops is not None else None
        with guard():
            data = open_study(study, storage, studies_dir)
            if best:
                row = best_trial(data.trials, limit)
                if row is None:
                    under = f" under {max_flops} FLOPs" if max_flops else ""
                    fail(f"study {study} has no complete trial{under}")
                number = int(row["number"])
            else:
                number = trial
            rec = data.record(number)
            spec = rec.net
            if spec is None:
                fail(f"trial {number} of {study} holds no spec ({rec.state.lower()})")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(spec.to_yaml() if out.suffix.lower() in (".yaml", ".yml") else spec.to_json(indent=1) + "\n")
        typer.echo(f"trial {number} ({spec.describe()}, id {spec.id}) -> {out}")

    @app.command()
    def edf(
        space: List[str] = typer.Option(..., "--space", "-s", help="A space to sample (repeat: --space resnet --space resnext)."),
        n: int = typer.Option(..., "-n", "--samples", min=1, help="Models sampled i.i.d. from each space."),
        flops: str = typer.Option(..., "--flops", help="FLOPs band LO:HI, e.g. 100M:150M."),
        epochs: int = typer.Option(..., "--epochs", "-e", min=1, help="Proxy budget in epochs."),
        dataset: str = typer.Option("cifar10", "--dataset", "-d", help="cifar10, cifar100, fashion-mnist, imagefolder:PATH, synthetic."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Where the dataset lies (else $NASX_DATA, then the cache)."),
        fraction: float = typer.Option(1.0, "--fraction", callback=finite("--fraction", 0, 1, above=True), help="Share of the training split per epoch."),
        seed: int = typer.Option(0, "--seed", min=0, help="Seed of the samples, the split and training."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: one per GPU, 1 on a CPU)."),
        device: str = typer.Option("auto", "--device", help="auto, cuda, cuda:N or cpu."),
        storage: Optional[str] = typer.Option(None, "--storage", help="Storage URL for all the studies (default: studies/NAME.journal)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report folder (default: reports/edf-...)."),
    ) -> None:
        """Compare design spaces without a search: sample each i.i.d. in a FLOPs band, train, report the EDFs."""
        from .. import data as nasx_data
        from ..report import write_report
        from ..space import load_space, parse_band
        from ..study import StudyConfig
        from ..study.fixed import draw, run_fixed
        from ..study.record import Shelf
        from ..train.budget import Budget

        names = []
        if out is not None:
            check_out(out, folder=True)
        with guard():
            band = parse_band(flops, "--flops")
            for name in space:  # the cheap checks (spaces, settings, device), before decoding the data
                load_space(name)
                StudyConfig(space=name, dataset=dataset, data_dir=data_dir, budget=Budget(epochs, fraction),
                            flops=band, storage=storage, workers=workers, device=device, seed=seed).check()
            shape = nasx_data.input_shape(dataset, data_dir=data_dir)
            for name in space:
                nets = draw(load_space(name).at(shape), n, seed, flops=band)
                study = edf_study_name(name, dataset, band, epochs, n, seed)
                cfg = StudyConfig(space=name, dataset=dataset, data_dir=data_dir, budget=Budget(epochs, fraction),
                                  flops=band, study=study, storage=storage, workers=workers, device=device, seed=seed,
                                  sampler="random")
                typer.echo(f"{name}: {len(nets)} samples in {flops} -> study {study}", err=True)
                summary = run_fixed(cfg, nets)
                snap = summary.snapshot
                typer.echo(f"{name}: {snap.complete} complete, {snap.failed} failed in {summary.wall_time:.0f} s", err=True)
                exit_if_interrupted(summary.interrupted)
                names.append(study)
            index = write_report(names, Shelf(storage), out=out)
        typer.echo(f"report: {index}")
