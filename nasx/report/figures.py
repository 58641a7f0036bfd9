"""The report's figures (matplotlib's object API, no pyplot): accuracy vs FLOPs/params/throughput, error EDFs,
importances, curves, the hypervolume against compute.

Each function draws one figure from the studies' trial tables and saves it once per format of its `Target` (SVG
unless asked otherwise; the page shows the first format and links the others); it returns a `Figure` naming the
file, or one with no file and a caption that says why the figure was left out.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import pickle
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import matplotlib
import numpy as np
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory

from ..study.record import COMPLETE, FAIL, PRUNED
from ..units import human
from ..stats import complexity_weights, edf, ks_statistic, log_bins, pareto_front
from .tables import HvCurve, ReportError, hv_vs_compute, study_points

__all__ = ["Figure", "Target", "FIGURE_FORMATS", "parse_formats", "Importances", "all_figures", "param_importances", "hv_figure", "save", "MIN_IMPORTANCE_TRIALS",
           "FANOVA_MAX_TRIALS", "PED_ANOVA_QUANTILE", "STUDY_FORMATS"]

MIN_IMPORTANCE_TRIALS = 4
FANOVA_MAX_TRIALS = 200  # fANOVA's seconds grow with the trials; above this many complete trials, PED-ANOVA
PED_ANOVA_QUANTILE = 0.1  # PED-ANOVA: the importance of reaching the top 10% by validation accuracy
COLORS = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
FEW_LEVELS = 12  # a parameter with at most this many values gets its dots spread sideways when dense
DENSE = 300  # up to this many points a scatter keeps full-size, opaque vector dots; beyond, smaller, lighter ones
# that the SVG holds as one image, not one path per dot
STUDY_FORMATS = ("svg",)  # the study page's figures by default: SVG alone (a PNG too doubled the figures' time)
FIGURE_FORMATS = ("svg", "png")  # what `nasx report --formats` takes: the formats a browser shows in a page
RC = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "figure.dpi": 100}


@dataclass(frozen=True)
class Figure:
    """A written figure (file: the image beside index.html) or a left-out one (file None, caption says why)."""

    stem: str
    title: str
    caption: str
    file: Optional[str] = None
    also: tuple[str, ...] = ()  # the same figure in the other formats asked for, linked under it


@dataclass(frozen=True)
class Target:
    """Where a page's figures go: the folder, and the formats each figure is written in (the page shows the first)."""

    folder: Path
    formats: tuple[str, ...] = STUDY_FORMATS


def parse_formats(text: str) -> tuple[str, ...]:
    """'png,svg' -> ('png', 'svg'): figure formats, each once, in the order given; ReportError otherwise."""
    formats = tuple(f.strip().lower().lstrip(".") for f in text.split(",")) if text.strip() else ()
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if not formats or unknown:
        raise ReportError(f"--formats {text!r}: {', '.join(map(repr, unknown)) or 'none given'}: "
                          f"give one or more of {', '.join(FIGURE_FORMATS)}, comma-separated")
    if len(set(formats)) < len(formats):
        raise ReportError(f"--formats {text!r}: a format given twice")
    return formats


def subplots(*args: Any, figsize: tuple[float, float], **kwargs: Any):
    """A figure and its axes, drawn without pyplot: no backend is chosen, no global figure list is touched."""
    fig = MplFigure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def save(fig, out: Path, stem: str, formats: Sequence[str] = ("png", "svg")) -> str:
    """Write fig as stem.<format> for each format (PNG and rasterized dots at 150 dpi), cut to one tight box;
    return the first file's name."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # the box is found once (text layout is most of a save's time); bbox_inches="tight" would find it per file
    box = fig.get_tightbbox(FigureCanvasAgg(fig).get_renderer()).padded(0.1)
    for fmt in formats:
        fig.savefig(out / f"{stem}.{fmt}", dpi=150, bbox_inches=box)
    return f"{stem}.{formats[0]}"


def _save(fig, out: Path | Target, stem: str) -> str:
    """A study page's figure, saved in the target's formats (a bare folder: STUDY_FORMATS)."""
    target = out if isinstance(out, Target) else Target(Path(out))
    return save(fig, target.folder, stem, target.formats)


def all_figures(datas: Sequence[Any], zoo: Sequence[Any], out: Path,
                curves: Optional[Sequence[Optional[HvCurve]]] = None, workers: Optional[int] = None,
                formats: Sequence[str] = STUDY_FORMATS) -> list[Figure]:
    """Every figure of the report, in page order, each written once per format; one that cannot be drawn is a
    Figure that says why. `curves`: each study's hypervolume against compute (tables.hv_vs_compute), computed here
    when not given; `workers`: processes that draw (default: the usable cores, at most 4; see `_run`)."""
    curves = list(curves) if curves is not None else [hv_vs_compute(d) for d in datas]
    formats = tuple(formats)
    folder, out = Path(out), Target(Path(out), formats)

    def importances(data) -> list[Figure]:
        rows, scope = importance_rows(data)
        imp = param_importances(data.study, set(rows["number"].astype(int)) if scope else None, scope)
        return [_guarded(importance_figure, data, imp, out, stem=f"importance-{data.name}",
                         title=f"Parameter importances ({data.name})"),
                _guarded(error_vs_params, data, imp.values, out, rows if scope else None,
                         stem=f"error_vs_params-{data.name}", title=f"Error vs the most important parameters ({data.name})")]

    # (relative cost, job): the costs, measured at 1,000 trials, only balance the processes
    jobs = [(1.0, lambda: [_guarded(vs_complexity, datas, zoo, out, "flops", stem="accuracy_vs_flops",
                                    title="Accuracy vs FLOPs")]),
            (1.2, lambda: [_guarded(vs_complexity, datas, zoo, out, "params", stem="accuracy_vs_params",
                                    title="Accuracy vs parameters")]),
            (0.6, lambda: [_guarded(vs_throughput, datas, out, stem="accuracy_vs_throughput",
                                    title="Accuracy vs measured throughput")]),
            (0.8, lambda: [_guarded(edf_figure, datas, out, stem="error_edf", title="Error EDFs")]),
            *[(2.2, functools.partial(importances, data)) for data in datas],
            (0.4, lambda: [_guarded(curves_figure, datas, out, stem="pareto_curves",
                                    title="Training curves of the Pareto-optimal trials")]),
            *[(0.3, functools.partial(lambda d, c: [_guarded(hv_figure, d, c, out, stem=f"hv_vs_compute-{d.name}",
                                                            title=f"Hypervolume of the front against compute "
                                                                  f"({d.name})")], data, curve))
              for data, curve in zip(datas, curves)]]
    with matplotlib.rc_context(RC):
        drawn = [fig for figs in _run(jobs, _workers(workers, len(jobs))) for fig in figs]
    return [replace(f, also=tuple(f"{f.stem}.{x}" for x in formats[1:] if (folder / f"{f.stem}.{x}").is_file()))
            if f.file else f for f in drawn]


def _workers(asked: Optional[int], jobs: int) -> int:
    """Processes to draw with: as asked, else the usable cores (at most 4); never more than the jobs."""
    if asked is None:
        asked = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return max(1, min(asked, jobs))


def _run(jobs: Sequence[tuple[float, Callable[[], list[Figure]]]], workers: int) -> list[list[Figure]]:
    """Each job's figures, in job order. With workers > 1, on Linux, in a process with no other thread: the jobs
    are shared by cost, and all but the first share run in forked children, which write their files and send
    their Figures back through a pipe (matplotlib draws on one core; a report's figures are independent). A
    child that fails has its share drawn here instead."""
    shares: list[list[int]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for i in sorted(range(len(jobs)), key=lambda i: -jobs[i][0]):
        k = min(range(workers), key=load.__getitem__)
        shares[k].append(i)
        load[k] += jobs[i][0]
    forking = workers > 1 and sys.platform.startswith("linux") and threading.active_count() == 1
    children = [_fork(jobs, share) for share in shares[1:]] if forking else []
    mine = shares[0] if forking else range(len(jobs))
    results = {i: jobs[i][1]() for i in mine}
    for pid, fd, share in children:
        with os.fdopen(fd, "rb") as pipe:
            payload = pipe.read()
        os.waitpid(pid, 0)
        try:
            results.update(pickle.loads(payload))
        except Exception:  # noqa: BLE001 - a child that died (or sent nothing): draw its share here
            results.update({i: jobs[i][1]() for i in share})
    return [results[i] for i in range(len(jobs))]


def _fork(jobs, share: list[int]) -> tuple[int, int, list[int]]:
    """Start a child that runs the jobs of `share` and writes {job index: figures} (pickled) to a pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send, leave without the parent's exit handlers or buffered output
        code = 1
        try:
            os.close(read)
            payload = pickle.dumps({i: jobs[i][1]() for i in share})
            with os.fdopen(write, "wb") as pipe:
                pipe.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    return pid, read, share


def _guarded(draw: Any, *args: Any, stem: str, title: str) -> Figure:
    """draw(*args), or a Figure that says why it was left out: a report is written whatever state the study is in."""
    try:
        return draw(*args)
    except Exception as e:  # noqa: BLE001 - a figure that cannot be drawn must not cost the page
        return Figure(stem, title, f"Not drawn: {type(e).__name__}: {e}")


def dots(n: int, size: float = 22, alpha: float = 0.75) -> dict[str, Any]:
    """Scatter style for n points: full size up to DENSE points, then smaller and lighter (by sqrt(DENSE / n)) and
    rasterized, so that 10,000 points show their density instead of one blot, in a small SVG."""
    scale = min(1.0, math.sqrt(DENSE / max(n, 1)))
    return {"s": max(2.0, size * scale), "alpha": max(0.12, alpha * scale), "rasterized": n > DENSE}


def legend_beside(ax) -> None:
    """The legend right of the axes, its scatter keys opaque and full-size however faint the dots are."""
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    for handle in legend.legend_handles:
        if isinstance(handle, PathCollection):
            handle.set_alpha(1.0)
            handle.set_sizes([max([22.0, *handle.get_sizes()])])


def _complete(data):
    """The study's points: complete trials at its top budget (tables.study_points, the one selection)."""
    return study_points(data.trials)


def _lower_rungs(data):
    """Complete trials of a study's lower rungs (smaller budgets), by rung: [(rung, its budget name, rows)]."""
    t = data.trials
    low = t[(t["state"] == COMPLETE) & ~t["top_budget"].astype(bool) & t["rung"].notna()]
    return [(int(k), str(g["budget"].dropna().iloc[0]) if g["budget"].notna().any() else "?", g)
            for k, g in low.groupby("rung", sort=True)]


def _study_label(data, several: bool) -> str:
    return data.name if several else "complete trials"


def log_axis(ax, values: Sequence[float]) -> None:
    """A log x-axis with 10M-style labels; minor ticks labelled too when the data span less than a decade."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_tick))
    values = [v for v in values if v > 0]
    narrow = values and max(values) / min(values) < 10
    ax.xaxis.set_minor_formatter(FuncFormatter(_tick) if narrow else NullFormatter())


def _step_front(ax, xs, ys, maximize_x: bool, color, label) -> None:
    """Draw a 2-D front (accuracy up) as a step line through its points, sorted along x."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    x = [xs[i] for i in order]
    y = [ys[i] for i in order]
    ax.step(x, y, where="pre" if maximize_x else "post", color=color, lw=1.5, label=label, zorder=3,
            marker="o", ms=9, mfc="none")  # rings mark the front's members (visible even for one point)


# long (~60 lines): one figure's layers (trials, fronts, marks, references) drawn on shared axes
def vs_complexity(datas, zoo, out: Path, key: str) -> Figure:
    """Accuracy vs FLOPs (or params): every trial, the Pareto front, pruned/failed marks, zoo references."""
    unit = {"flops": "FLOPs (multiply-adds, log scale)", "params": "parameters (log scale)"}[key]
    what = "FLOPs" if key == "flops" else "parameters"
    if not any(d.trials[key].notna().any() for d in datas):
        return Figure(f"accuracy_vs_{key}", f"Accuracy vs {what}", "No trial holds a net yet: nothing to draw.")
    several = len(datas) > 1
    fig, ax = subplots(figsize=(7.5, 4.8))
    fail_tf = blended_transform_factory(ax.transData, ax.transAxes)
    for k, data in enumerate(datas):
        color = COLORS[k % len(COLORS)]
        t = data.trials
        done = _complete(data)
        x, y = done[key].astype(float).tolist(), (100 * done["val_acc"].astype(float)).tolist()
        ax.scatter(x, y, color=color, label=_study_label(data, several), zorder=2, **dots(len(x)))
        for rung, name, rows in _lower_rungs(data):  # hollow and faint: results at a smaller budget
            style = dots(len(rows), alpha=0.45)
            ax.scatter(rows[key].astype(float), 100 * rows["val_acc"].astype(float), facecolors="none",
                       edgecolors=color, marker="os^D"[rung % 4], linewidths=0.8, zorder=1,
                       label=f"rung {rung}: {name}{' ' + data.name if several else ''}", **style)
        front = pareto_front(list(zip(y, x)), (True, False)) if x else []
        if front:
            _step_front(ax, [x[i] for i in front], [y[i] for i in front], False, color,
                        f"Pareto front{' ' + data.name if several else ''}")
        pruned = t[(t["state"] == PRUNED) & t["last_val_acc"].notna() & t[key].notna()]
        if len(pruned):
            ax.scatter(pruned[key].astype(float), 100 * pruned["last_val_acc"].astype(float), marker="x",
                       color=color, label=f"pruned (last epoch){' ' + data.name if several else ''}",
                       **dots(len(pruned), alpha=0.5))
        failed = t[(t["state"] == FAIL) & t[key].notna()]
        if len(failed):
            ax.scatter(failed[key].astype(float), [0.02] * len(failed), transform=fail_tf, marker="v", s=30,
                       color="crimson", label=f"failed{' ' + data.name if several else ''}", zorder=4)
    ref_tf = blended_transform_factory(ax.transData, ax.transAxes)
    xs_all = [float(v) for d in datas for v in d.trials[key].dropna()]
    if xs_all:  # unmeasured zoo nets far outside the trials' range would only stretch the axis
        lo, hi = min(xs_all) / 3, max(xs_all) * 3
        zoo = [z for z in zoo if z.val_acc is not None or lo <= float(getattr(z, key)) <= hi]
    measured = [z for z in zoo if z.val_acc is not None]
    for z in zoo:
        value = float(getattr(z, key))
        if z.val_acc is None:
            ax.axvline(value, color="0.55", ls=":", lw=1, zorder=1)
            ax.text(value, 0.98, f" {z.name}", rotation=90, va="top", ha="right", fontsize=7, color="0.35",
                    transform=ref_tf)
        else:
            ax.scatter([value], [100 * z.val_acc], marker="*", s=90, color="black", zorder=5)
            ax.annotate(z.name, (value, 100 * z.val_acc), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if zoo:
        ax.plot([], [], color="0.55", ls=":", label="zoo net (FLOPs only, accuracy not measured)")
    if measured:
        ax.scatter([], [], marker="*", s=90, color="black", label="zoo net (measured by nasx)")
    shown = [float(v) for d in datas for v in _complete(d)[key]] + [float(getattr(z, key)) for z in zoo]
    if not shown and xs_all:  # only failed nets: their marks (at the axis' foot) do not set the x range
        ax.set_xlim(min(xs_all) / 2, max(xs_all) * 2)
    log_axis(ax, shown or xs_all)
    ax.set_xlabel(unit)
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(True, which="both", alpha=0.25)
    legend_beside(ax)
    what = "FLOPs" if key == "flops" else "parameters"
    ax.set_title(f"Accuracy vs {what}")
    stem = f"accuracy_vs_{key}"
    caption = (f"Validation accuracy against {what} (log scale). Dots: complete trials; line: the Pareto front; "
               f"x: pruned trials at their last epoch; red triangles: failed trials; dotted lines/stars: zoo nets "
               f"at the study's input.")
    if any(_lower_rungs(d) for d in datas):
        caption += (" In a study with rungs, dots and front are the top rung's results; hollow markers are lower "
                    "rungs' results at their smaller budgets, not comparable with the top rung's.")
    return Figure(stem, f"Accuracy vs {what}", caption, _save(fig, out, stem))


def vs_throughput(datas, out: Path) -> Figure:
    """Accuracy vs measured training throughput, with the front (both maximized)."""
    stem, title = "accuracy_vs_throughput", "Accuracy vs measured throughput"
    several = len(datas) > 1
    have = [d for d in datas if (_complete(d)["images_per_s"].astype(float) > 0).any()]
    if not have:
        return Figure(stem, title, "No throughput was recorded in these studies.")
    fig, ax = subplots(figsize=(7.5, 4.8))
    for k, data in enumerate(datas):
        color = COLORS[k % len(COLORS)]
        done = _complete(data)
        done = done[done["images_per_s"].astype(float) > 0]
        x, y = done["images_per_s"].astype(float).tolist(), (100 * done["val_acc"].astype(float)).tolist()
        ax.scatter(x, y, color=color, label=_study_label(data, several), **dots(len(x)))
        front = pareto_front(list(zip(y, x)), (True, True))
        _step_front(ax, [x[i] for i in front], [y[i] for i in front], True, color,
                    f"Pareto front{' ' + data.name if several else ''}")
    log_axis(ax, [float(v) for d in have for v in _complete(d)["images_per_s"]])
    ax.set_xlabel("training throughput (images/s, measured, log scale)")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(True, which="both", alpha=0.25)
    legend_beside(ax)
    ax.set_title(title)
    caption = "Validation accuracy against the training images/s measured during each trial (FLOPs do not predict speed)."
    return Figure(stem, title, caption, _save(fig, out, stem))


def edf_pair(errors: Sequence[Sequence[float]], flops: Sequence[Sequence[float]], labels: Sequence[str], first: str,
             bins: int):
    """Plain and complexity-normalized EDFs of errors (%), one curve a sample, KS to the first (named `first`) in
    the legend; the normalization's log-spaced FLOPs bins are shared by all samples. Returns (figure, bin edges)."""
    edges = log_bins([f for fs in flops for f in fs], bins)
    weights = [complexity_weights(fs, edges) for fs in flops]
    fig, axes = subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, normalized in zip(axes, (False, True)):
        for k, errs in enumerate(errors):
            w = weights[k] if normalized else None
            xs, fs = edf(list(errs), w)
            label = labels[k]
            if k > 0:
                ks = ks_statistic(list(errors[0]), list(errs), weights[0] if normalized else None, w)
                label += f", KS={ks:.3f} vs {first}"
            ax.step([xs[0]] + xs, [0.0] + fs, where="post", color=COLORS[k % len(COLORS)], lw=1.6, label=label)
        ax.set_xlabel("validation error (%)")
        ax.set_title("complexity-normalized EDF" if normalized else "EDF")
        ax.grid(True, alpha=0.25)
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower right")
    axes[0].set_ylabel("cumulative share of models")
    return fig, edges


def edf_figure(datas, out: Path, bins: int = 10) -> Figure:
    """Plain and complexity-normalized error EDFs, one curve per study, KS to the first study in the legend."""
    stem, title = "error_edf", "Error EDFs"
    few = [d.name for d in datas if len(_complete(d)) < 2]
    if few:
        return Figure(stem, title, f"Left out: an EDF needs at least 2 complete trials per study "
                                   f"({', '.join(few)} {'has' if len(few) == 1 else 'have'} fewer).")
    errors = [(100 * (1 - _complete(d)["val_acc"].astype(float))).tolist() for d in datas]
    flops = [_complete(d)["flops"].astype(float).tolist() for d in datas]
    fig, edges = edf_pair(errors, flops, [f"{d.name} (n={len(e)})" for d, e in zip(datas, errors)], datas[0].name, bins)
    caption = (f"Empirical distribution of validation error (Radosavovic et al. 2019). Right: each model weighted by "
               f"1 / (models in its FLOPs bin), {len(edges) - 1} log-spaced bins from {edges[0]:.3g} to "
               f"{edges[-1]:.3g} FLOPs shared by all studies. KS: max |F1 - F2| over the pooled errors.")
    return Figure(stem, title, caption, _save(fig, out, stem))


@dataclass(frozen=True)
class Importances:
    """Parameter importances for validation accuracy (shares summing to 1), the method that gave them, and notes."""

    values: dict[str, float]
    method: str  # "fANOVA", "PED-ANOVA" or "" when none was computed
    note: str  # why there are none, or what was left out
    trials: int = 0  # complete trials the method saw
    scope: str = ""  # which trials, when not every complete one (a study with rungs: its lowest rung's)

    def describe(self) -> str:
        """The method in words, for captions and the page."""
        scope = f" {self.scope}" if self.scope else ""
        if self.method == "fANOVA":
            return (f"Optuna's fANOVA evaluator (seed 0) on the {self.trials} complete trials{scope}: each parameter's "
                    f"share of the variance of validation accuracy (few trials make these rough)")
        return (f"Optuna's PED-ANOVA evaluator on the {self.trials} complete trials{scope}: how far each parameter's "
                f"distribution among the top {PED_ANOVA_QUANTILE:.0%} by validation accuracy lies from its "
                f"distribution among all of them (shares of the total; fANOVA, the method up to "
                f"{FANOVA_MAX_TRIALS} complete trials, grows too slow beyond)")


def importance_rows(data) -> tuple[Any, str]:
    """The complete trials importances are computed on, and their scope in words ("" for every complete trial). In a
    study with rungs: the lowest rung's, the one budget every net trained at (a parameter would otherwise be
    credited with the budget's effect on accuracy)."""
    t = data.trials
    done = t[t["state"] == COMPLETE]
    if data.info is None or not data.info.rungs:
        return done, ""
    ladder = data.info.ladder
    return done[done["rung"] == 0], f"of rung 0 ({ladder.budgets[0].name if ladder else '?'}), where every net trained"


def param_importances(study, numbers: Optional[set[int]] = None, scope: str = "") -> Importances:
    """Importances of the sampled parameters for accuracy: fANOVA up to FANOVA_MAX_TRIALS complete trials,
    PED-ANOVA above (fANOVA's time grows with the trials: minutes at 1,000; PED-ANOVA takes seconds at 10,000).
    `numbers`: only these trials (copied into an in-memory study), described by `scope`."""
    import warnings

    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if numbers is not None:
        import optuna

        done = [t for t in done if t.number in numbers]
        study = optuna.create_study(directions=study.directions)  # in memory: what the evaluators read
        study.add_trials(done)
    n = len(done)
    if n < MIN_IMPORTANCE_TRIALS:
        return Importances({}, "", f"Too few complete trials for importances ({n} < {MIN_IMPORTANCE_TRIALS}).", n, scope)
    names = set().union(*(t.params for t in done))
    shared = set.intersection(*(set(t.params) for t in done))
    fanova = n <= FANOVA_MAX_TRIALS
    used = shared if fanova else names  # fANOVA needs a parameter in every trial; PED-ANOVA takes conditional ones
    if not any(len({json.dumps(t.params.get(k), default=str) for t in done}) > 1 for k in used):
        return Importances({}, "", "No sampled parameter varies across the complete trials (a fixed-candidate "
                                   "study has none).", n, scope)
    if fanova:
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances

        method, evaluator, target = "fANOVA", FanovaImportanceEvaluator(seed=0), lambda t: t.values[0]
    else:  # PED-ANOVA minimizes its target: the top quantile by accuracy is the lowest -accuracy
        from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

        method, target = "PED-ANOVA", lambda t: -t.values[0]
        evaluator = PedAnovaImportanceEvaluator(target_quantile=PED_ANOVA_QUANTILE)
    try:
        with warnings.catch_warnings():  # PED-ANOVA warns that it minimizes the target, as meant here
            warnings.simplefilter("ignore")
            result = get_param_importances(study, evaluator=evaluator, target=target)
    except ImportError:
        return Importances({}, method, "fANOVA importances need scikit-learn (pip install scikit-learn).", n, scope)
    except (ValueError, RuntimeError) as e:
        return Importances({}, method, f"{method} failed: {e}", n, scope)
    left_out = sorted(names - used)
    note = (f"Conditional parameters (not sampled in every trial) are left out: {', '.join(left_out)}."
            if left_out else "")
    return Importances({k: float(v) for k, v in result.items()}, method, note, n, scope)


def importance_figure(data, imp: Importances, out: Path) -> Figure:
    """Horizontal bars of the importances, the method named on the axis and in the caption."""
    stem, title = f"importance-{data.name}", f"Parameter importances ({data.name})"
    if not imp.values:
        return Figure(stem, title, imp.note)
    items = sorted(imp.values.items(), key=lambda kv: kv[1])[-15:]
    fig, ax = subplots(figsize=(7, 0.35 * len(items) + 1.3))
    ax.barh([k for k, _ in items], [v for _, v in items], color=COLORS[0])
    what = "share of variance" if imp.method == "fANOVA" else f"top {PED_ANOVA_QUANTILE:.0%} vs all, share"
    ax.set_xlabel(f"{imp.method} importance for validation accuracy ({what})")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.25)
    fig.tight_layout()
    caption = f"{imp.describe()}. {imp.note}".strip()
    return Figure(stem, title, caption, _save(fig, out, stem))


def error_vs_params(data, importances: dict[str, float], out: Path, rows: Optional[Any] = None, top: int = 4) -> Figure:
    """Validation error against each of the most important sampled parameters, over `rows` (the trials the
    importances were computed on; default: the study's points)."""
    stem, title = f"error_vs_params-{data.name}", f"Error vs the most important parameters ({data.name})"
    done = _complete(data) if rows is None else rows
    names = [k for k, _ in sorted(importances.items(), key=lambda kv: -kv[1])][:top]
    if not names:
        names = [c[len("param_"):] for c in done.columns if c.startswith("param_") and done[c].nunique() > 1][:top]
    if not names:
        return Figure(stem, title, "No sampled parameter varies across the complete trials.")
    cols = min(2, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, name in itertools.zip_longest(axes.flat, names):
        if name is None:
            ax.set_visible(False)
            continue
        sub = done[done[f"param_{name}"].notna()]
        error = 100 * (1 - sub["val_acc"].astype(float))
        values = sub[f"param_{name}"]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            x = values.astype(float).to_numpy()
            ax.scatter(x + spread(x, len(sub) > DENSE), error, **dots(len(sub), size=18))
            ax.xaxis.set_major_formatter(FuncFormatter(_tick))
        else:
            levels = sorted({str(v) for v in values})
            index = {level: i for i, level in enumerate(levels)}
            x = np.array([index[str(v)] for v in values], dtype=float)
            ax.scatter(x + spread(x, len(sub) > DENSE), error, **dots(len(sub), size=18))
            ax.set_xticks(range(len(levels)), levels, rotation=30, ha="right")
        share = f" (importance {importances[name]:.2f})" if name in importances else ""
        ax.set_xlabel(f"{name}{share}")
        ax.set_ylabel("validation error (%)")
        ax.grid(True, alpha=0.25)
    fig.suptitle(title)
    fig.subplots_adjust(hspace=0.45, wspace=0.25)  # fixed gaps: tight_layout's pass took a third of the figure's time
    caption = ("Each complete trial's validation error against the sampled value of a parameter." if rows is None else
               "The validation error of each trial the importances were computed on, against the sampled value of a "
               "parameter.")
    if len(done) > DENSE:
        caption += (f" Beyond {DENSE} trials, dots of a parameter with at most {FEW_LEVELS} values are spread "
                    f"sideways (up to a third of the gap between values) so that their density shows.")
    return Figure(stem, title, caption, _save(fig, out, stem))


def spread(x, wanted: bool):
    """Sideways offsets for dots at a few discrete values (at most FEW_LEVELS), a third of the smallest gap at
    most, from a fixed seed (the figure is the same each time); zeros when not wanted or for continuous values."""
    levels = np.unique(x)
    if not wanted or len(levels) < 2 or len(levels) > FEW_LEVELS:
        return np.zeros(len(x))
    gap = float(np.min(np.diff(levels)))
    return np.random.default_rng(0).uniform(-gap / 3, gap / 3, len(x))


def curves_figure(datas, out: Path, limit: int = 10) -> Figure:
    """Per-epoch validation accuracy of the Pareto-optimal trials."""
    stem, title = "pareto_curves", "Training curves of the Pareto-optimal trials"
    fig, ax = subplots(figsize=(7.5, 4.5))
    drawn, longest = 0, 1
    for k, data in enumerate(datas):
        front = _complete(data)
        front = front[front["pareto"]].sort_values("flops").drop_duplicates("spec_id").head(limit)
        styles = itertools.cycle(["-", "--", ":", "-."])
        for j, (_, row) in enumerate(front.iterrows()):
            curve = json.loads(row["curve"])
            if not curve:
                continue
            color = COLORS[(j if len(datas) == 1 else k) % len(COLORS)]
            prefix = f"{data.name} " if len(datas) > 1 else ""
            ax.plot(range(1, len(curve) + 1), [100 * c for c in curve], marker="o", ms=3, color=color,
                    ls=next(styles) if len(datas) > 1 else "-",
                    label=f"{prefix}#{int(row['number'])} {float(row['flops']) / 1e6:.3g}M FLOPs")
            drawn += 1
            longest = max(longest, len(curve))
    if not drawn:
        return Figure(stem, title, "No curve was recorded for the Pareto-optimal trials.")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    if longest <= 20:
        ax.set_xticks(range(1, longest + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, longest + 0.5)
    ax.grid(True, alpha=0.25)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title(title)
    caption = f"Validation accuracy after each epoch of the Pareto-optimal trials (at most {limit} per study, by FLOPs)."
    return Figure(stem, title, caption, _save(fig, out, stem))


def hv_figure(data, curve: Optional[HvCurve], out: Path) -> Figure:
    """The hypervolume of the study's front (tables.hv_vs_compute) as a step line against the device-seconds spent."""
    stem, title = f"hv_vs_compute-{data.name}", f"Hypervolume of the front against compute ({data.name})"
    if curve is None:
        return Figure(stem, title, "No complete trial at the study's top budget yet: no front, no hypervolume.")
    rows = curve.rows
    hours = rows["compute"].to_numpy(dtype=float) / 3600
    fig, ax = subplots(figsize=(7.5, 4.2))
    ax.step(np.concatenate([[0.0], hours]), np.concatenate([[0.0], rows["hypervolume"].to_numpy(dtype=float)]),
            where="post", color=COLORS[0], lw=1.6)
    ax.set_xlabel("compute spent (device-hours: the summed wall time of the trained trials, in completion order)")
    ax.set_ylabel("hypervolume of the front")
    ax.set_xlim(0, max(float(hours[-1]), 1e-9))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.25)
    ax.set_title(title)
    caption = (f"The hypervolume (moocore) of the Pareto front of the study's points after each trained trial "
               f"(complete, pruned or failed; a duplicate of a trained net costs nothing), in the order trials "
               f"completed; {len(rows)} trials, {float(rows['compute'].iloc[-1]) / 3600:.3g} device-hours. "
               f"{curve.describe()} Every step: hv_vs_compute.csv.")
    return Figure(stem, title, caption, _save(fig, out, stem))


def _tick(x: float, _pos=None) -> str:
    """Tick label: 2.5M, 10k, 1G."""
    return human(x, None)
