"""The page of a matched-complexity ablation: per setting mean ± std over seeds, a paired verdict, a plot.

Reads the stored study `ablation-<name>` (records only) and writes ablation.csv, ablation.png/.svg and
index.html in the nasx page style. The verdict says in words whether error falls or rises with the
varied setting at matched FLOPs, or whether the differences are within seed noise
(`nasx.stats.trend_verdict`: the slope of error against log2(setting) in a seed fixed-effects regression
over every run, with its t interval; the mean of per-seed slopes beside it).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Optional, Sequence

from ..experiments.ablate import PAPER_TABLE3
from ..stats import LOF_LEVEL, paired_comparison, trend_verdict
from ..study.config import StudyError
from ..study.record import COMPLETE, Shelf, TrialRecord
from ..units import human
from .page import html_page, html_table
from .page import read_studies
from .tables import ReportError

__all__ = ["ablation_rows", "ablation_table", "verdict_for", "write_ablation_report"]

NUMERIC_AXES = ("cardinality", "width", "depth", "bottleneck-ratio")


def ablation_rows(records: Sequence[TrialRecord]) -> list[dict[str, Any]]:
    """One row per ablation run (a candidate tagged with its setting); a run that was interrupted or lost and
    queued again is left out (its retry is the run)."""
    retried = {r.retry_of for r in records if r.retry_of is not None}
    rows = []
    for r in records:
        t = r.tags
        if "setting" not in t or r.number in retried:
            continue
        rows.append({"setting": t["setting"], "order": t.get("order", 0), "state": r.state,
                     "complete": r.state == COMPLETE, "seed": r.seed, "cardinality": t.get("cardinality"),
                     "group_width": t.get("group_width"), "depths": t.get("depths"), "widths": t.get("widths"),
                     "value": t.get("value"), "params": r.params, "flops": r.flops, "deviation": t.get("deviation"),
                     "is_base": t.get("is_base", False), "val_acc": r.outcome.val_acc, "test_acc": r.outcome.test_acc,
                     "images_per_s": r.outcome.images_per_s, "vary": t.get("vary"), "device": r.device,
                     "dataset": r.dataset, "budget": r.budget, "template": t.get("template"),
                     "num_classes": (r.spec or {}).get("num_classes")})
    return rows


def ablation_table(rows: Sequence[dict[str, Any]]):
    """One row per setting: its structure, params, FLOPs (as trained), deviation, mean images/s and
    mean / sample std (ddof=1; 0 with one seed) of validation and test accuracy over its complete seeds."""
    import pandas as pd

    columns = ["setting", "cardinality", "group_width", "depths", "widths", "value", "params", "flops",
               "flops_deviation", "images_per_s", "seeds", "val_acc_mean", "val_acc_std", "test_acc_mean",
               "test_acc_std", "val_err_mean", "test_err_mean", "is_base"]
    if not rows:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame(rows)
    out = []
    for setting, group in sorted(df.groupby("setting", sort=False), key=lambda kv: kv[1]["order"].iloc[0]):
        first = group.iloc[0]
        done = group[group["complete"]]

        def stat(col: str, fn: str) -> float:
            values = done[col].dropna().astype(float)
            if values.empty:
                return float("nan")
            if fn == "std":
                return float(values.std(ddof=1)) if len(values) > 1 else 0.0
            return float(values.mean())

        out.append({"setting": setting, "cardinality": first["cardinality"], "group_width": first["group_width"],
                    "depths": "-".join(map(str, first["depths"] or [])),
                    "widths": "-".join(map(str, first["widths"] or [])), "value": first["value"],
                    "params": first["params"], "flops": first["flops"], "flops_deviation": first["deviation"],
                    "images_per_s": stat("images_per_s", "mean"), "seeds": int(len(done)),
                    "val_acc_mean": stat("val_acc", "mean"), "val_acc_std": stat("val_acc", "std"),
                    "test_acc_mean": stat("test_acc", "mean"), "test_acc_std": stat("test_acc", "std"),
                    "is_base": bool(first["is_base"])})
    table = pd.DataFrame(out)
    table["val_err_mean"] = 100 * (1 - table["val_acc_mean"])
    table["test_err_mean"] = 100 * (1 - table["test_acc_mean"])
    return table[columns]


def _axis_value(row: dict[str, Any], vary: str) -> Optional[float]:
    value = row["cardinality"] if vary == "cardinality" else row["value"]
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def verdict_for(rows: Sequence[dict[str, Any]], vary: str, split: str = "val") -> tuple[Optional[Any], list[list[str]]]:
    """The trend verdict of error (points) against the varied setting over every complete run, and paired
    comparisons of each setting with the template (or the first setting) on the seeds both have: (verdict or None,
    table rows)."""
    if vary not in NUMERIC_AXES:
        return None, []
    by_setting: dict[float, dict[int, float]] = {}
    names: dict[float, str] = {}
    for r in rows:
        x, acc = _axis_value(r, vary), r[f"{split}_acc"]
        if x is None or not r["complete"] or acc is None or r["seed"] is None:
            continue
        by_setting.setdefault(x, {})[int(r["seed"])] = 100 * (1 - float(acc))
        names[x] = str(r["setting"])
    if len(by_setting) < 2:
        return None, []
    seeds = sorted(set.union(*(set(v) for v in by_setting.values())))
    if len(seeds) < 2:
        return None, []
    values = {x: [by_setting[x].get(s, float("nan")) for s in seeds] for x in sorted(by_setting)}
    label = "cardinality" if vary == "cardinality" else vary.replace("-", " ")
    verdict = trend_verdict(values, quantity="error", setting=label, unit="points")
    base_x = next((_axis_value(r, vary) for r in rows if r["is_base"]), None)
    base_x = base_x if base_x in values else min(values)
    table = []
    for x, errs in values.items():
        if x == base_x:
            continue
        both = [(a, b) for a, b in zip(errs, values[base_x]) if a == a and b == b]
        c = paired_comparison([a for a, _ in both], [b for _, b in both])
        table.append([html.escape(names[x]), html.escape(names[base_x]), f"{c.mean_diff:+.2f}",
                      "n/a" if c.low != c.low else f"{c.low:+.2f} .. {c.high:+.2f}", str(c.n),
                      "yes" if c.significant else "no"])
    return verdict, table


def _plot(table, vary: str, title: str, out_dir: Path, chance: Optional[float] = None) -> str:
    """Error (%) against the axis, mean over seeds with ±1 std bars; writes ablation.png/.svg, returns the PNG name."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=120)
    ax = fig.subplots()
    numeric = vary in NUMERIC_AXES
    if vary == "cardinality":
        x = table["cardinality"].astype(float).to_numpy()
    elif numeric:
        x = table["value"].astype(float).to_numpy()
    else:
        x = list(range(len(table)))
    for key, label, marker, shift in (("val", "validation", "o", -0.03), ("test", "test", "s", 0.03)):
        mean = 100 * (1 - table[f"{key}_acc_mean"].astype(float))
        std = 100 * table[f"{key}_acc_std"].astype(float)
        xs = [v * (1 + shift) for v in x] if numeric else [v + shift * 3 for v in x]
        ax.errorbar(xs, mean, yerr=std, marker=marker, capsize=4, label=f"{label} error (mean \u00b1 std over seeds)")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label=f"chance ({chance:.0f}% error)")
    names = list(table["setting"])
    if numeric:
        ax.set_xscale("log", base=2)
        ax.set_xticks(x)
        ax.set_xticklabels(names if vary == "cardinality" else [f"{v:g}" for v in x])
        axis_label = {"cardinality": "cardinality (setting C x group width d", "width": "stage-width multiplier (",
                      "depth": "depth multiplier (", "bottleneck-ratio": "bottleneck ratio w_b / width ("}[vary]
        ax.set_xlabel(f"{axis_label}{', ' if vary == 'cardinality' else ''}matched complexity)")
    else:
        ax.set_xticks(x)
        ax.set_xticklabels(names)
        ax.set_xlabel("setting")
    ax.minorticks_off()
    ax.set_ylabel("top-1 error (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "ablation.svg")
    fig.savefig(out_dir / "ablation.png")
    return "ablation.png"


def _paper_context(table) -> list[tuple[str, float]]:
    """Table 3 rows whose (cardinality, group width) the ablation contains."""
    rows = []
    for _, r in table.iterrows():
        key = (r["cardinality"], r["group_width"])
        if key in PAPER_TABLE3:
            rows.append((r["setting"], PAPER_TABLE3[key]))
    return rows


def write_ablation_report(name: str, storage: Optional[str] = None, out: Optional[str | Path] = None,
                          command: Optional[str] = None) -> Path:
    """Read the stored study `ablation-<name>` (in `storage`, default its journal in studies/) and write
    ablation.csv, ablation.png/.svg and index.html into `out` (default reports/ablation-<name>/); returns that
    folder."""
    study_name = f"ablation-{name}"
    url = Shelf(storage).url(study_name)
    try:
        data, = read_studies([study_name], Shelf(url))
    except StudyError:
        raise ReportError(f"no study {study_name!r} in {url}; run the ablation first") from None
    rows = ablation_rows(data.records)
    table = ablation_table(rows)
    if table.empty:
        raise ReportError(f"study {study_name!r} holds no ablation runs")
    out_dir = Path(out) if out is not None else Path("reports") / study_name
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "ablation.csv", index=False, float_format="%.6g")
    vary = rows[0]["vary"] or "cardinality"
    budget = rows[0]["budget"] or {}
    title = (f"{study_name}\n{rows[0]['dataset']}, {budget.get('epochs', '?')} epoch(s) on "
             f"{budget.get('fraction', '?')} of the training split, {int(table['seeds'].max())} seed(s) a setting")
    classes = next((r["num_classes"] for r in rows if r["num_classes"]), None)
    png = _plot(table, vary, title, out_dir, chance=None if not classes else 100 * (1 - 1 / classes))
    context = _paper_context(table) if vary == "cardinality" else []
    if context:
        import csv

        with open(out_dir / "paper-context.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["setting", "paper_imagenet_resnext50_top1_err_pct (Xie et al. 2017, Table 3; "
                                        "not measured here)"])
            writer.writerows(context)
    verdict, paired = verdict_for(rows, vary)
    failed = sum(1 for r in rows if not r["complete"])
    (out_dir / "index.html").write_text(_page(study_name, table, rows[0], png, context, command, failed, verdict,
                                              paired), encoding="utf-8")
    return out_dir


def _page(study_name: str, table, meta: dict, png: str, context, command: Optional[str], failed: int,
          verdict: Any, paired: list[list[str]]) -> str:
    e = html.escape

    def pct(mean, std) -> str:
        return "n/a" if mean != mean else f"{100 * mean:.2f} \u00b1 {100 * std:.2f}"

    budget = meta.get("budget") or {}
    parts = [f"<p>Template {e(str(meta.get('template')))}; dataset {e(str(meta.get('dataset')))}; budget "
             f"{e(str(budget.get('epochs')))} epoch(s) on {e(str(budget.get('fraction')))} of the training split; "
             f"device {e(str(meta.get('device')))}. FLOPs: fvcore's convention (multiply-adds), as trained. "
             f"Accuracies: mean \u00b1 sample std over complete seeds"
             f"{f'; {failed} run(s) did not complete' if failed else ''}.</p>"]
    if command:
        parts.append(f"<p>Command: <code>{e(command)}</code></p>")
    if verdict is not None:
        beside = ("n/a" if verdict.per_seed_low != verdict.per_seed_low else
                  f"{verdict.per_seed_mean:+.2f} points per doubling, 95% CI {verdict.per_seed_low:+.2f}.."
                  f"{verdict.per_seed_high:+.2f}")
        lof = ("n/a" if verdict.lack_of_fit_p != verdict.lack_of_fit_p else f"{verdict.lack_of_fit_p:.2f}")
        model = (f"<b>Model used: setting random effect</b> (lack of fit p {lof} < {LOF_LEVEL:g}: the settings "
                 f"deviate from the line by more than run noise, as when settings differ for reasons other than the "
                 f"knob): each setting's mean with the seed offsets taken out, then the least-squares line through "
                 f"those means and its Student t interval on settings - 2 = {verdict.df} degrees of freedom, wider "
                 f"because the settings' own scatter is the error the slope must beat."
                 if verdict.model == "setting random effect" else
                 f"<b>Model used: seed fixed effects</b> (lack of fit p {lof} >= {LOF_LEVEL:g}: the settings do not "
                 f"deviate from the line beyond run noise): one least-squares regression over all {verdict.n_runs} "
                 f"complete runs, error = (one offset per seed) + slope x log2(setting), and the slope's Student t "
                 f"interval on its {verdict.df} residual degrees of freedom (runs - seeds - 1).")
        parts.append(f"<h2>Verdict</h2><p class='verdict'>{e(verdict.text)}</p><p>Validation error. Lack of fit: the "
                     f"F test of one mean per setting (plus the seed offsets) against the line. {model} Each run is "
                     f"its own training: its noise is independent once the seed's offset is taken out. The rule's "
                     f"false-trend rate under planted nulls of 3 seeds x 5 settings, with and without an offset per "
                     f"setting, is measured in docs/ablations.md. Error "
                     f"falls (rises) when the interval lies below (above) 0; an interval that includes 0 means the "
                     f"differences are within seed noise. Beside it, not the verdict: the mean of each seed's own "
                     f"slope over the settings every seed has, {e(beside)} (a t interval over {verdict.n_seeds} slopes, "
                     f"on {verdict.n_seeds - 1} degrees of freedom).</p>")
        if paired:
            parts.append("<h3>Paired by seed, against the template</h3>" + html_table(
                ["setting", "vs", "mean difference in error (points)", "95% interval", "seeds", "beyond noise"],
                paired))
    elif len(table) > 1:
        parts.append("<p class='note'>No verdict: it needs at least 2 settings with at least 2 common complete "
                     "seeds on a numeric axis.</p>")
    rows = [[e(str(r["setting"])) + (" (template)" if r["is_base"] else ""), e(str(r["cardinality"])),
             e(str(r["group_width"])), e(r["depths"]), e(r["widths"]), f"{int(r['params']):,}",
             f"{int(r['flops']):,} ({human(r['flops'])})", f"{r['flops_deviation']:+.1%}", f"{r['images_per_s']:.0f}",
             str(r["seeds"]), pct(r["val_acc_mean"], r["val_acc_std"]), pct(r["test_acc_mean"], r["test_acc_std"])]
            for _, r in table.iterrows()]
    parts.append(html_table(["setting", "cardinality", "group width", "depths", "widths", "params", "FLOPs",
                             "FLOPs vs target", "images/s (measured)", "seeds", "val acc % (mean \u00b1 std)",
                             "test acc % (mean \u00b1 std)"], rows))
    parts.append(f"<figure><img alt='error vs setting' src='{e(png)}'><figcaption>Error against the setting "
                 f"(<a href='ablation.svg'>SVG</a>)</figcaption></figure>")
    if context:
        parts.append("<h2>Context: the paper's ImageNet numbers (not measured here)</h2>"
                     "<p>Xie et al. 2017, Table 3: ImageNet-1K top-1 error of ResNeXt-50 (224x224, full training) at "
                     "the same (cardinality, group width). A different dataset, net and budget: read it as the trend "
                     "the paper found, not as a number to compare the columns above with.</p>"
                     + html_table(["setting", "paper ImageNet top-1 error %"],
                                  [[e(s), f"{v:.1f}"] for s, v in context]))
    return html_page(study_name, parts)
