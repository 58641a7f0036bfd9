"""What every nasx command shares: one-line errors, number formatting, output formats, progress bars."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from enum import Enum
from typing import Any, Iterator, NoReturn, Optional

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 carries its own click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError

from ..errors import NasxError

__all__ = ["CountsLine", "OneLineErrors", "finite", "held_out", "fail", "echo_json", "corner_option", "guard", "check_out", "TableFormat", "CountFormat", "tqdm_hooks", "exit_if_interrupted",
           "report_after_run"]


class OneLineErrors(TyperGroup):
    """The app's command group: an option or argument that typer's own checks refuse (a range, a choice, a
    missing or unknown option) is one `nasx: error:` line naming it, exit 2, as every other nasx error is."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as e:  # `nasx` alone: the help (rich has printed it already)
            if e.format_message().strip():
                typer.echo(e.format_message(), err=True)
            sys.exit(e.exit_code)
        except ClickException as e:
            typer.echo(f"nasx: error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            typer.echo("nasx: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def finite(option: str, low: Optional[float] = None, high: Optional[float] = None, *, above: bool = False,
           below: bool = False):
    """A typer callback for a float option: its value a finite number in [low, high] (`above`: > low, `below`:
    < high); else typer's one line naming the option. None (an option left out) passes."""
    def check(value: Optional[float]) -> Optional[float]:
        if value is None:
            return value
        if not math.isfinite(value):
            raise typer.BadParameter(f"{value} is not a finite number", param_hint=f"'{option}'")
        if low is not None and (value <= low if above else value < low):
            raise typer.BadParameter(f"{value:g} must be {'>' if above else '>='} {low:g}", param_hint=f"'{option}'")
        if high is not None and (value >= high if below else value > high):
            raise typer.BadParameter(f"{value:g} must be {'<' if below else '<='} {high:g}", param_hint=f"'{option}'")
        return value

    return check


def held_out(*, none: bool = False):
    """The typer callback of every --val-size: a share in (0, 1) or a whole number of images (given as an int), and
    0 where `none` (train on every image); else one line naming the option."""
    def check(value: Optional[float]) -> Optional[float | int]:
        if value is None:
            return value
        finite("--val-size", 0, above=not none)(value)
        if value >= 1 and not float(value).is_integer():
            raise typer.BadParameter(f"{value:g} is neither a share below 1 nor a whole number of images",
                                     param_hint="'--val-size'")
        return int(value) if value >= 1 or value == 0 else value

    return check


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line to stderr and exit non-zero."""
    typer.echo(f"nasx: error: {message}", err=True)
    raise typer.Exit(code)


def exit_if_interrupted(interrupted: bool) -> None:
    """After a run stopped by Ctrl-C or SIGTERM: say how to resume, exit 130 (what was trained is stored)."""
    if interrupted:
        typer.echo("interrupted: run the same command again to resume", err=True)
        raise typer.Exit(130)


def report_after_run(study: str, shelf, out, references: list[str]) -> None:
    """The study's page after a run (also after an interrupt: the page of what is there), its studies read from
    `shelf` (a nasx.study.record.Shelf); a report that fails is a warning line, since the run's results are stored."""
    from ..report import write_report

    try:
        index = write_report([study], shelf, out=out, references=references)
        typer.echo(f"report: {index}")
    except Exception as e:  # noqa: BLE001 - the study is saved; a report problem must not hide that
        typer.echo(f"nasx: warning: no report ({e}); try `nasx report {study}`", err=True)


@contextlib.contextmanager
def guard(prefix: str = "") -> Iterator[None]:
    """Turn any NasxError (bad spec, space, data, study, report) inside the block into one error line, exit 2."""
    try:
        yield
    except NasxError as e:
        fail(f"{prefix}{e}")


@contextlib.contextmanager
def study_errors(display, where: str) -> Iterator[None]:
    """Run a study's work with its live display: a bad setting -> one line, exit 2; a full disk or a storage gone
    read-only -> one line, exit 1 (what is stored stays stored); the display closed either way."""
    from ..study.config import redact

    try:
        yield
    except (NasxError, ValueError) as e:
        display.close()
        fail(str(e))
    except OSError as e:
        display.close()
        fail(f"cannot write {redact(e.filename or where)} ({e.strerror or e}); free space there and run the same "
             f"command again to resume", code=1)
    finally:
        display.close()


def check_out(path, *, folder: bool = False, option: str = "--out") -> None:
    """Before any work, refuse (one line, exit 2) an output that cannot be written: a file where a folder is
    wanted or the reverse, a path under a file, a read-only or missing-permission place. Creates nothing."""
    import os
    import tempfile
    from pathlib import Path

    path = Path(path).expanduser()
    if path.is_dir() and not folder:
        fail(f"{option} {path}: is a folder; give a file name")
    if path.exists() and not path.is_dir() and folder:
        fail(f"{option} {path}: is a file, not a folder")
    probe = path if path.is_dir() else path.parent
    while not probe.exists() and probe != probe.parent:  # the nearest existing folder above: folders are made later
        probe = probe.parent
    if not probe.is_dir():
        fail(f"{option} {path}: {probe} is a file, not a folder")
    try:  # the only sure test of writability (read-only mounts, ACLs, root on a read-only file system)
        handle, name = tempfile.mkstemp(dir=probe, prefix=".nasx-probe-")
        os.close(handle)
        os.unlink(name)
    except OSError as e:
        fail(f"{option} {path}: cannot write in {probe} ({e.strerror})")


class TableFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class CountFormat(str, Enum):
    table = "table"
    json = "json"


def echo_json(data: Any) -> None:
    """A command's `--format json` output: indented JSON on stdout (`nasx zoo`, `count`, `sample`)."""
    typer.echo(json.dumps(data, indent=1))


def corner_option(default: str, value: Optional[str] = None) -> Any:
    """The `--corner` option of the commands that draw from a space (`Space.with_corner` reads it); `default` says
    what none given means."""
    return typer.Option(value, "--corner", help=f"Draw from a named corner of the space file (e.g. cpu: see its "
                                                f"`corners:`); `none`: the whole space. Default: {default}.")


def tqdm_hooks():
    """Progress hooks for data (download/decode) and training that draw tqdm bars on stderr."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def hook(what: str, done: int, total: int) -> None:
        bar = bars.get(what)
        if bar is None:
            unit = "B" if what.startswith("download") else "img" if what == "decode" else "step"
            bar = bars[what] = tqdm(total=total or None, desc=what, unit=unit, unit_scale=unit == "B",
                                    leave=False, dynamic_ncols=True)
        bar.update(done - bar.n)
        if total and done >= total:
            bar.close()

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return hook, bars, close


class CountsLine:
    """One stderr line per change of a study's counts (not per poll), after a label: the study's own name
    (`by_study`), the one a caller passes (`line(snap, label)`), or none."""

    def __init__(self, by_study: bool = False) -> None:
        self.by_study = by_study
        self.last: Optional[str] = None

    def __call__(self, snap, label: Optional[str] = None) -> None:
        label = snap.study if self.by_study else label
        counts = f"{snap.complete} done, {snap.running} running, {snap.failed} failed"
        counts = f"{label}: {counts}" if label else counts
        if counts != self.last:
            self.last = counts
            typer.echo(f"[{snap.elapsed:6.0f} s] {counts}", err=True)
