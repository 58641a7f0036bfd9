"""The `nasx` command: a thin typer layer over the Python API (nothing else lives here)."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import NoReturn, Optional

import typer

app = typer.Typer(
    name="nasx",
    help="Neural-architecture design-space explorer: classic nets as points of one space, exact analytic "
    "complexity, Optuna studies of accuracy vs FLOPs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line to stderr and exit non-zero."""
    typer.echo(f"nasx: error: {message}", err=True)
    raise typer.Exit(code)


class TableFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class CountFormat(str, Enum):
    table = "table"
    json = "json"


def human(n: float) -> str:
    """1234567 -> '1.23M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}" if n / scale < 1000 else f"{n / scale:,.0f}{unit}"
    return str(int(n))


@app.command()
def zoo(
    format: TableFormat = typer.Option(TableFormat.table, "--format", "-f", help="table, json (a list) or csv."),
) -> None:
    """List every named net with its input resolution, parameters and FLOPs (analytic, fvcore's convention)."""
    from .net.complexity import complexity
    from .net.zoo import ZOO

    rows = []
    for name, entry in ZOO.items():
        spec = entry.make()
        cx = complexity(spec)
        rows.append({"name": name, "dataset": entry.dataset, "id": spec.id, **cx.to_dict(),
                     "published_params": entry.published_params, "reference": entry.reference})
    if format is TableFormat.json:
        typer.echo(json.dumps(rows, indent=1))
    elif format is TableFormat.csv:
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    else:
        typer.echo(f"{'name':<20} {'input':>9} {'params':>13} {'FLOPs':>16} {'acts':>12}  reference")
        for r in rows:
            res = f"{r['resolution']}x{r['resolution']}"
            typer.echo(f"{r['name']:<20} {res:>9} {r['params']:>13,} {r['flops']:>16,} {r['acts']:>12,}  {r['reference']}")


@app.command()
def count(
    target: str = typer.Argument(..., help="A zoo name (see `nasx zoo`) or a spec file: .json, .yaml or a `nasx sample` .jsonl line."),
    resolution: Optional[int] = typer.Option(None, "--resolution", "-r", help="Input side in pixels (default: the spec's)."),
    format: CountFormat = typer.Option(CountFormat.table, "--format", "-f", help="table or json."),
    verify: bool = typer.Option(False, "--verify", help="Also build the model and check the count against fvcore and numel; exit 1 on any difference."),
) -> None:
    """Count FLOPs (fvcore's convention), parameters and activations analytically, without building the model."""
    from .net.complexity import complexity
    from .net.spec import SpecError
    from .net.zoo import resolve

    try:
        spec = resolve(target)
        cx = complexity(spec, resolution)
    except SpecError as e:
        fail(str(e))
    out = {"target": target, "id": spec.id, **cx.to_dict(), "description": spec.describe()}
    mismatch = []
    if verify:
        from .net.verify import measure

        measured = measure(spec, cx.resolution)
        out["verified"] = measured
        mismatch = [k for k in ("flops", "params", "acts") if measured[k] != out[k]]
        out["verify_ok"] = not mismatch
    if format is CountFormat.json:
        typer.echo(json.dumps(out, indent=1))
    else:
        typer.echo(f"{target}  ({spec.describe()}, id {spec.id})")
        typer.echo(f"  input   {cx.resolution}x{cx.resolution}")
        for key in ("flops", "params", "acts"):
            line = f"  {key:<7} {out[key]:>16,}  ({human(out[key])})"
            if verify:
                line += f"   fvcore/numel {out['verified'][key]:>16,}  {'ok' if key not in mismatch else 'DIFFERS'}"
            typer.echo(line)
    if mismatch:
        fail(f"analytic count differs from the built model in {', '.join(mismatch)}", code=1)


def _register_commands() -> None:
    from . import cli_ablate, cli_report, cli_space, cli_study, cli_train

    for module in (cli_space, cli_train, cli_study, cli_report, cli_ablate):
        module.register(app)


_register_commands()


def main() -> None:
    """Console entry point; SIGTERM stops as cleanly as Ctrl-C (a running trial is marked, not lost)."""
    import signal

    def interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("nasx: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
