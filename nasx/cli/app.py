"""The `nasx` command: a thin typer layer over the Python API; each command group lives in its own module."""

from __future__ import annotations

import sys

import typer

from . import ablate, compare, explore, fidelity, net, refine, repeat, report, simulate, space, train
from .common import OneLineErrors

app = typer.Typer(
    name="nasx",
    help="Neural-architecture design-space explorer: classic nets as points of one space, exact analytic "
    "complexity, Optuna studies of accuracy vs FLOPs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)
for module in (net, space, train, explore, repeat, compare, report, ablate, fidelity, refine, simulate):
    module.register(app)

# commands that never open a study: they (and any --help) skip importing Optuna, 0.5 s, only to set its log level
NO_STUDY = frozenset({"zoo", "count", "spaces", "sample"})


def main() -> None:
    """Console entry point: process-wide settings belong here (SIGINT and SIGTERM as Ctrl-C, Optuna's log level)."""
    import signal

    def interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    # a shell without job control starts background commands with SIGINT ignored, and Python keeps an ignored
    # SIGINT: `nasx explore ... &` from a script would then not stop on `kill -INT` (nor on Ctrl-C after `fg`)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = sys.argv[1:]
    if args and args[0] not in NO_STUDY and not {"--help", "-h"} & set(args):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("nasx: interrupted", err=True)
        sys.exit(130)
    except OSError as e:  # a runtime fault after the checks (a full disk, a folder gone read-only): one line
        import os

        where = f"{e.filename}: " if e.filename else ""
        plain = e.errno is not None and e.strerror == os.strerror(e.errno)  # no advice of its own: add ours
        hint = "; fix that and run the same command again (a study resumes where it stopped)" if plain else ""
        typer.echo(f"nasx: error: {where}{e.strerror or e}{hint}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
