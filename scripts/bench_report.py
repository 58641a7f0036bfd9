"""Where `nasx report` spends its time on one stored study: Optuna's own load (a full replay of the journal, and from
the snapshot that the study's workers saved), nasx's tables, importances, each
figure (drawn here one after the other, in this process), the page (its figures drawn by forked processes, whose CPU
is counted apart); seconds of wall and CPU per phase, and the peak resident memory.

    python scripts/bench_report.py STUDY --studies-dir studies [--out /tmp/report]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("--studies-dir", type=Path, default=Path("studies"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/nasx-bench-report"))
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []

    @contextlib.contextmanager
    def phase(name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        rows.append((name, time.perf_counter() - wall, time.process_time() - cpu))

    with phase("import optuna, pandas, matplotlib"):
        import matplotlib  # noqa: F401
        import optuna
        import pandas  # noqa: F401

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = str(args.studies_dir / f"{args.study}.journal")
    with phase("optuna: load_study + get_trials, replay"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        study = optuna.load_study(study_name=args.study, storage=JournalStorage(JournalFileBackend(url)))
        n = len(study.get_trials(deepcopy=False))
    with phase("optuna: the same from the snapshot"):
        from nasx.study.storage import open_storage

        study = optuna.load_study(study_name=args.study, storage=open_storage(url, read_only=True))
        study.get_trials(deepcopy=False)
    with phase("nasx: load_study (snapshot, records, table)"):
        from nasx.study.store import open_study

        data = open_study(args.study, studies_dir=args.studies_dir)
        data.trials  # the table, made on first use
    with phase("importances"):
        from nasx.report import figures as figs
        from nasx.report.tables import hv_vs_compute

        imp = figs.param_importances(data.study)
    args.out.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(figs.RC):
        for name, draw in (("figure accuracy_vs_flops", lambda: figs.vs_complexity([data], [], args.out, "flops")),
                           ("figure accuracy_vs_throughput", lambda: figs.vs_throughput([data], args.out)),
                           ("figure error_edf", lambda: figs.edf_figure([data], args.out)),
                           ("figure importance", lambda: figs.importance_figure(data, imp, args.out)),
                           ("figure error_vs_params", lambda: figs.error_vs_params(data, imp.values, args.out)),
                           ("figure pareto_curves", lambda: figs.curves_figure([data], args.out)),
                           ("figure hv_vs_compute", lambda: figs.hv_figure(data, hv_vs_compute(data), args.out))):
            with phase(name):
                draw()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with phase("whole report (write_report, again)"):
        from nasx.report import write_report
        from nasx.study.record import Shelf

        write_report([args.study], Shelf(folder=args.studies_dir), out=args.out)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows.append(("  its forked figure processes (CPU)", 0.0,
                 after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.study}: {n} trials, importances by {imp.method or 'none'}; peak RSS {peak:.0f} MB")
    for name, wall, cpu in rows:
        print(f"  {name:<38} wall {wall:6.2f} s  cpu {cpu:6.2f} s")


if __name__ == "__main__":
    main()
