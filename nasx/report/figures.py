"""The report's figures (matplotlib's object API, no pyplot): accuracy vs FLOPs/params/throughput, error EDFs, importances, curves.

Each function draws one figure from the studies' trial tables and saves it as PNG and SVG; it returns a
`Figure` naming the file, or one with no file and a caption that says why the figure was left out.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import matplotlib
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory

from ..stats import complexity_weights, edf, ks_statistic, log_bins, pareto_front

__all__ = ["Figure", "all_figures", "param_importances", "MIN_IMPORTANCE_TRIALS"]

MIN_IMPORTANCE_TRIALS = 4
COLORS = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
RC = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "figure.dpi": 100}


@dataclass(frozen=True)
class Figure:
    """A written figure (file: the PNG beside index.html) or a left-out one (file None, caption says why)."""

    stem: str
    title: str
    caption: str
    file: Optional[str] = None


def _subplots(*args: Any, figsize: tuple[float, float], **kwargs: Any):
    """A figure and its axes, drawn without pyplot: no backend is chosen, no global figure list is touched."""
    fig = MplFigure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def save(fig, out: Path, stem: str) -> str:
    """Write fig as stem.png (150 dpi) and stem.svg; close it; return the PNG's name."""
    fig.savefig(out / f"{stem}.png", dpi=150, bbox_inches="tight")
    fig.savefig(out / f"{stem}.svg", bbox_inches="tight")
    return f"{stem}.png"


def all_figures(datas: Sequence[Any], zoo: Sequence[Any], out: Path) -> list[Figure]:
    """Every figure of the report, in page order; one that cannot be drawn is a Figure that says why."""
    with matplotlib.rc_context(RC):
        figs = [_guarded(vs_complexity, datas, zoo, out, "flops", stem="accuracy_vs_flops", title="Accuracy vs FLOPs"),
                _guarded(vs_complexity, datas, zoo, out, "params", stem="accuracy_vs_params",
                         title="Accuracy vs parameters"),
                _guarded(vs_throughput, datas, out, stem="accuracy_vs_throughput", title="Accuracy vs measured throughput"),
                _guarded(edf_figure, datas, out, stem="error_edf", title="Error EDFs")]
        for data in datas:
            importances, note = param_importances(data.study)
            figs.append(_guarded(importance_figure, data, importances, note, out, stem=f"importance-{data.name}",
                                 title=f"Parameter importances ({data.name})"))
            figs.append(_guarded(error_vs_params, data, importances, out, stem=f"error_vs_params-{data.name}",
                                 title=f"Error vs the most important parameters ({data.name})"))
        figs.append(_guarded(curves_figure, datas, out, stem="pareto_curves",
                             title="Training curves of the Pareto-optimal trials"))
    return figs


def _guarded(draw: Any, *args: Any, stem: str, title: str) -> Figure:
    """draw(*args), or a Figure that says why it was left out: a report is written whatever state the study is in."""
    try:
        return draw(*args)
    except Exception as e:  # noqa: BLE001 - a figure that cannot be drawn must not cost the page
        return Figure(stem, title, f"Not drawn: {type(e).__name__}: {e}")


def _complete(data):
    return data.trials[data.trials["state"] == "COMPLETE"]


def _study_label(data, several: bool) -> str:
    return data.name if several else "complete trials"


def human(x: float, _pos=None) -> str:
    """Tick label: 2.5M, 10k, 1G."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:g}{unit}"
    return f"{x:g}"


def log_axis(ax, values: Sequence[float]) -> None:
    """A log x-axis with 10M-style labels; minor ticks labelled too when the data span less than a decade."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(human))
    values = [v for v in values if v > 0]
    narrow = values and max(values) / min(values) < 10
    ax.xaxis.set_minor_formatter(FuncFormatter(human) if narrow else NullFormatter())


def _step_front(ax, xs, ys, maximize_x: bool, color, label) -> None:
    """Draw a 2-D front (accuracy up) as a step line through its points, sorted along x."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    x = [xs[i] for i in order]
    y = [ys[i] for i in order]
    ax.step(x, y, where="pre" if maximize_x else "post", color=color, lw=1.5, label=label, zorder=3,
            marker="o", ms=9, mfc="none")  # rings mark the front's members (visible even for one point)


def vs_complexity(datas, zoo, out: Path, key: str) -> Figure:
    """Accuracy vs FLOPs (or params): every trial, the Pareto front, pruned/failed marks, zoo references."""
    unit = {"flops": "FLOPs (multiply-adds, log scale)", "params": "parameters (log scale)"}[key]
    what = "FLOPs" if key == "flops" else "parameters"
    if not any(d.trials[key].notna().any() for d in datas):
        return Figure(f"accuracy_vs_{key}", f"Accuracy vs {what}", "No trial holds a net yet: nothing to draw.")
    several = len(datas) > 1
    fig, ax = _subplots(figsize=(7.5, 4.8))
    fail_tf = blended_transform_factory(ax.transData, ax.transAxes)
    for k, data in enumerate(datas):
        color = COLORS[k % len(COLORS)]
        t = data.trials
        done = _complete(data)
        x, y = done[key].astype(float).tolist(), (100 * done["val_acc"].astype(float)).tolist()
        ax.scatter(x, y, s=22, color=color, alpha=0.75, label=_study_label(data, several), zorder=2)
        front = pareto_front(list(zip(y, x)), (True, False)) if x else []
        if front:
            _step_front(ax, [x[i] for i in front], [y[i] for i in front], False, color,
                        f"Pareto front{' ' + data.name if several else ''}")
        pruned = t[(t["state"] == "PRUNED") & t["last_val_acc"].notna() & t[key].notna()]
        if len(pruned):
            ax.scatter(pruned[key].astype(float), 100 * pruned["last_val_acc"].astype(float), marker="x", s=22,
                       color=color, alpha=0.5, label=f"pruned (last epoch){' ' + data.name if several else ''}")
        failed = t[(t["state"] == "FAIL") & t[key].notna()]
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
    log_axis(ax, [float(v) for d in datas for v in _complete(d)[key]] + [float(getattr(z, key)) for z in zoo])
    ax.set_xlabel(unit)
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    what = "FLOPs" if key == "flops" else "parameters"
    ax.set_title(f"Accuracy vs {what}")
    stem = f"accuracy_vs_{key}"
    caption = (f"Validation accuracy against {what} (log scale). Dots: complete trials; line: the Pareto front; "
               f"x: pruned trials at their last epoch; red triangles: failed trials; dotted lines/stars: zoo nets "
               f"at the study's input.")
    return Figure(stem, f"Accuracy vs {what}", caption, save(fig, out, stem))


def vs_throughput(datas, out: Path) -> Figure:
    """Accuracy vs measured training throughput, with the front (both maximized)."""
    stem, title = "accuracy_vs_throughput", "Accuracy vs measured throughput"
    several = len(datas) > 1
    have = [d for d in datas if (_complete(d)["images_per_s"].astype(float) > 0).any()]
    if not have:
        return Figure(stem, title, "No throughput was recorded in these studies.")
    fig, ax = _subplots(figsize=(7.5, 4.8))
    for k, data in enumerate(datas):
        color = COLORS[k % len(COLORS)]
        done = _complete(data)
        done = done[done["images_per_s"].astype(float) > 0]
        x, y = done["images_per_s"].astype(float).tolist(), (100 * done["val_acc"].astype(float)).tolist()
        ax.scatter(x, y, s=22, color=color, alpha=0.75, label=_study_label(data, several))
        front = pareto_front(list(zip(y, x)), (True, True))
        _step_front(ax, [x[i] for i in front], [y[i] for i in front], True, color,
                    f"Pareto front{' ' + data.name if several else ''}")
    log_axis(ax, [float(v) for d in have for v in _complete(d)["images_per_s"]])
    ax.set_xlabel("training throughput (images/s, measured, log scale)")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title(title)
    caption = "Validation accuracy against the training images/s measured during each trial (FLOPs do not predict speed)."
    return Figure(stem, title, caption, save(fig, out, stem))


def edf_pair(errors: Sequence[Sequence[float]], flops: Sequence[Sequence[float]], labels: Sequence[str], first: str,
             bins: int):
    """Plain and complexity-normalized EDFs of errors (%), one curve a sample, KS to the first (named `first`) in
    the legend; the normalization's log-spaced FLOPs bins are shared by all samples. Returns (figure, bin edges)."""
    edges = log_bins([f for fs in flops for f in fs], bins)
    weights = [complexity_weights(fs, edges) for fs in flops]
    fig, axes = _subplots(1, 2, figsize=(10, 4.2), sharey=True)
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
    fig.tight_layout()
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
    return Figure(stem, title, caption, save(fig, out, stem))


def param_importances(study) -> tuple[dict[str, float], str]:
    """fANOVA importances of the sampled parameters for accuracy, or ({}, why not)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < MIN_IMPORTANCE_TRIALS:
        return {}, f"Too few complete trials for fANOVA importances ({len(done)} < {MIN_IMPORTANCE_TRIALS})."
    names = set().union(*(t.params for t in done))
    shared = set.intersection(*(set(t.params) for t in done))
    varied = {n for n in shared if len({json.dumps(t.params[n], default=str) for t in done}) > 1}
    if not varied:
        return {}, "No sampled parameter varies across the complete trials (a fixed-candidate study has none)."
    try:
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances

        result = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0),
                                       target=lambda t: t.values[0])
    except ImportError:
        return {}, "fANOVA importances need scikit-learn (pip install scikit-learn)."
    except (ValueError, RuntimeError) as e:
        return {}, f"fANOVA failed: {e}"
    left_out = sorted(names - shared)
    note = (f"Conditional parameters (not sampled in every trial) are left out: {', '.join(left_out)}."
            if left_out else "")
    return {k: float(v) for k, v in result.items()}, note


def importance_figure(data, importances: dict[str, float], note: str, out: Path) -> Figure:
    """Horizontal bars of the fANOVA importances."""
    stem, title = f"importance-{data.name}", f"Parameter importances ({data.name})"
    if not importances:
        return Figure(stem, title, note)
    items = sorted(importances.items(), key=lambda kv: kv[1])[-15:]
    fig, ax = _subplots(figsize=(7, 0.35 * len(items) + 1.3))
    ax.barh([k for k, _ in items], [v for _, v in items], color=COLORS[0])
    ax.set_xlabel("fANOVA importance for validation accuracy (share of variance)")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.25)
    fig.tight_layout()
    n = len(_complete(data))
    caption = (f"Optuna's fANOVA evaluator (seed 0) on the {n} complete trials, target: validation accuracy "
               f"(few trials make these rough). " + note).strip()
    return Figure(stem, title, caption, save(fig, out, stem))


def error_vs_params(data, importances: dict[str, float], out: Path, top: int = 4) -> Figure:
    """Validation error against each of the most important sampled parameters."""
    stem, title = f"error_vs_params-{data.name}", f"Error vs the most important parameters ({data.name})"
    done = _complete(data)
    names = [k for k, _ in sorted(importances.items(), key=lambda kv: -kv[1])][:top]
    if not names:
        names = [c[len("param_"):] for c in done.columns if c.startswith("param_") and done[c].nunique() > 1][:top]
    if not names:
        return Figure(stem, title, "No sampled parameter varies across the complete trials.")
    cols = min(2, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = _subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, name in itertools.zip_longest(axes.flat, names):
        if name is None:
            ax.set_visible(False)
            continue
        sub = done[done[f"param_{name}"].notna()]
        error = 100 * (1 - sub["val_acc"].astype(float))
        values = sub[f"param_{name}"]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            ax.scatter(values.astype(float), error, s=18, alpha=0.75)
            ax.xaxis.set_major_formatter(FuncFormatter(human))
        else:
            levels = sorted({str(v) for v in values})
            ax.scatter([levels.index(str(v)) for v in values], error, s=18, alpha=0.75)
            ax.set_xticks(range(len(levels)), levels, rotation=30, ha="right")
        share = f" (importance {importances[name]:.2f})" if name in importances else ""
        ax.set_xlabel(f"{name}{share}")
        ax.set_ylabel("validation error (%)")
        ax.grid(True, alpha=0.25)
    fig.suptitle(title)
    fig.tight_layout()
    caption = "Each complete trial's validation error against the sampled value of a parameter."
    return Figure(stem, title, caption, save(fig, out, stem))


def curves_figure(datas, out: Path, limit: int = 10) -> Figure:
    """Per-epoch validation accuracy of the Pareto-optimal trials."""
    stem, title = "pareto_curves", "Training curves of the Pareto-optimal trials"
    fig, ax = _subplots(figsize=(7.5, 4.5))
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
    return Figure(stem, title, caption, save(fig, out, stem))
