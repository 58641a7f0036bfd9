"""`nasx zoo` and `nasx count`: the named nets and analytic counts (a thin layer over nasx.net)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..units import human
from .common import CountFormat, TableFormat, echo_json, fail

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add `zoo` and `count` to the app."""
    app.command()(zoo)
    app.command()(count)


def zoo(
    format: TableFormat = typer.Option(TableFormat.table, "--format", "-f", help="table, json (a list) or csv."),
) -> None:
    """List every named net with its input resolution, parameters and FLOPs (analytic, fvcore's convention)."""
    from ..net.complexity import complexity
    from ..net.zoo import ZOO

    rows = []
    for name, entry in ZOO.items():
        spec = entry.make()
        cx = complexity(spec)
        rows.append({"name": name, "dataset": entry.dataset, "id": spec.id, **cx.to_dict(),
                     "published_params": entry.published_params, "reference": entry.reference})
    if format is TableFormat.json:
        echo_json(rows)
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


def count(
    target: str = typer.Argument(..., help="A zoo name (see `nasx zoo`) or a spec file: .json, .yaml or a `nasx sample` .jsonl line."),
    resolution: Optional[int] = typer.Option(None, "--resolution", "-r", min=1, help="Input side in pixels (default: the spec's)."),
    format: CountFormat = typer.Option(CountFormat.table, "--format", "-f", help="table or json."),
    verify: bool = typer.Option(False, "--verify", help="Also build the model and check the count against fvcore and numel; exit 1 on any difference."),
) -> None:
    """Count FLOPs (fvcore's convention), parameters and activations analytically, without building the model."""
    from ..net.complexity import complexity
    from ..net.spec import SpecError
    from ..net.zoo import resolve

    try:
        spec = resolve(target)
        cx = complexity(spec, resolution)
    except SpecError as e:
        fail(str(e))
    out = {"target": target, "id": spec.id, **cx.to_dict(), "description": spec.describe()}
    mismatch = []
    if verify:
        from ..net.verify import measure

        measured = measure(spec, cx.resolution)
        out["verified"] = measured
        mismatch = [k for k in ("flops", "params", "acts") if measured[k] != out[k]]
        out["verify_ok"] = not mismatch
    if format is CountFormat.json:
        echo_json(out)
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
