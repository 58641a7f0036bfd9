"""The `nasx spaces` and `nasx sample` commands (thin typer layer over nasx.space and nasx.space.sampling)."""

from __future__ import annotations

import json
from enum import Enum
from typing import Optional

import typer

from .common import corner_option, echo_json, fail

__all__ = ["register"]


class SampleFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


# long: the typer registration of the space commands, each a nested function (the thin CLI layer)
def register(app: typer.Typer) -> None:
    """Add `spaces` and `sample` to the nasx app."""
    from ..units import human

    @app.command()
    def spaces() -> None:
        """List the design spaces a --space name reaches: name, structural size, default band, description.

        The shipped spaces, and before them those in the folders of $NASX_SPACES_PATH (separated by
        the system's path separator, `:` on Linux and macOS): the first folder holding a name wins.
        Size counts distinct structures (stage count, depths, branch types, block choices, stem and
        head choices) with widths left out, since the sampler solves them from the FLOPs band;
        ∞ where a structural choice is continuous.
        """
        from ..errors import NasxError
        from ..space import SPACES_DIR, SPACES_PATH_VAR, known_spaces, load_space

        names = known_spaces()
        if not names:
            fail(f"no design spaces found (none shipped in {SPACES_DIR}, none in ${SPACES_PATH_VAR}): a broken "
                 f"install? reinstall nasx, or pass a space file by path")
        typer.echo(f"{'name':<10} {'structures':>26} {'input':>7} {'default band':>18}  description")
        for name in names:
            try:
                space = load_space(name)
            except NasxError as e:
                fail(str(e))
            band = " ".join(f"{key} {human(b[0])}:{human(b[1])}" for key, b in
                            (("FLOPs", space.flops), ("params", space.params)) if b) or "-"
            res = f"{space.resolution}px"
            typer.echo(f"{name:<10} {space.describe_size():>26} {res:>7} {band:>18}  {space.description}")

    @app.command()
    def sample(
        space: str = typer.Option(..., "--space", "-s", help="A space name (see `nasx spaces`) or a space .yaml file."),
        corner: Optional[str] = corner_option("the whole space"),
        n: int = typer.Option(10, "-n", min=1, help="How many distinct members to draw."),
        flops: Optional[str] = typer.Option(None, "--flops", help="FLOPs band LO:HI, e.g. 100M:150M (default: the space's)."),
        params: Optional[str] = typer.Option(None, "--params", help="Parameter band LO:HI, e.g. 500k:2M."),
        resolution: Optional[int] = typer.Option(None, "--resolution", "-r", min=1, help="Input side (default: the space's)."),
        seed: int = typer.Option(0, "--seed", min=0, help="Random seed; the same seed gives the same members."),
        format: SampleFormat = typer.Option(SampleFormat.table, "--format", "-f", help="table, json (a list, as `nasx count --format json` gives one net, plus its spec) or jsonl (one member per line)."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="A progress bar on stderr for n >= 100."),
    ) -> None:
        """Draw n distinct members of a space with analytic counts inside the FLOPs/params band."""
        from ..errors import NasxError
        from ..space import load_space
        from ..space.sampling import sample as sample_space

        try:
            loaded = load_space(space).with_corner(corner)
            if resolution is not None:
                loaded = loaded.at(resolution)
            bar = None
            if progress and n >= 100:
                from tqdm import tqdm

                bar = tqdm(total=n, desc=f"sampling {loaded.name}", unit="net", file=None, leave=False)
            try:
                run = sample_space(loaded, seed, n, flops=flops, params=params,
                                    on_accept=(lambda _: bar.update()) if bar is not None else None)
            finally:
                if bar is not None:
                    bar.close()
        except NasxError as e:
            fail(str(e))
        if format is SampleFormat.json:
            echo_json([s.to_dict() for s in run])
            return
        if format is SampleFormat.jsonl:
            typer.echo("\n".join(json.dumps(s.to_dict(), separators=(",", ":")) for s in run))
            return
        typer.echo(f"{'id':<12} {'FLOPs':>9} {'params':>9} {'acts':>9}  structure")
        for s in run:
            cx = s.complexity
            typer.echo(f"{s.spec.id:<12} {human(cx.flops):>9} {human(cx.params):>9} {human(cx.acts):>9}  {s.spec.describe()}")
        typer.echo(f"# {len(run)} members from {run.draws} draws (acceptance {run.acceptance:.0%})", err=True)
