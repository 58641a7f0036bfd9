"""The repeats section of a study's page: the nets trained again under more seeds (`nasx repeat`, companion study
`<study>-repeats`), their mean accuracy with a 95% t interval, each seed's accuracy and each net's probability of
being on the front under seed noise; `repeats.csv` holds every seed's accuracy in long form."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..stats.intervals import student_t_quantile
from ..stats.noise import FLOPS_TOLERANCE, MeanFront, front_probabilities, mean_front_probabilities, pooled_std
from ..study.record import TrialRecord
from ..study.repeat import MARGIN, PHASE, TAG, StudyNet, repeats_name, seed_values, study_nets
from ..units import human
from .tables import StudyData

__all__ = ["RepeatRow", "RepeatsSection", "repeat_rows", "mean_fronts", "repeats_sections", "CSV_COLUMNS", "LEVEL"]

LEVEL = 0.95
CSV_COLUMNS = ("study", "trial", "spec_id", "seed", "val_acc")
_WHY = {1: "on the front", 2: f"within {MARGIN:g} sigma"}


@dataclass(frozen=True)
class RepeatRow:
    """One repeated net: its trial, counts, each seed's accuracy, mean, std, t interval and P(on the front)."""

    trial: int
    spec_id: str
    description: str
    flops: int
    seeds: tuple[tuple[int, float], ...]  # (seed, validation accuracy), by seed
    phase: Optional[int]  # 1: on the front; 2: within seed noise of it
    p_front: float  # the share of seed draws (one result per net, drawn uniformly) in which it is non-dominated
    selection_seed: Optional[int] = None  # the seed of the run it was selected on (the study's)
    mean_front: Optional[MeanFront] = None  # P(its true mean accuracy is on the front), from the fresh seeds

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def mean(self) -> float:
        return sum(a for _, a in self.seeds) / self.n

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (ddof 1)."""
        m = self.mean
        return math.sqrt(sum((a - m) ** 2 for _, a in self.seeds) / (self.n - 1)) if self.n > 1 else math.nan

    @property
    def half_width(self) -> float:
        """Half the 95% Student t interval of the mean (n - 1 degrees of freedom); NaN for one seed."""
        return _half_width([a for _, a in self.seeds])

    @property
    def fresh(self) -> tuple[float, ...]:
        """The results of the seeds it was not selected on (the repeats): free of the winner's curse."""
        return tuple(a for s, a in self.seeds if s != self.selection_seed)

    @property
    def fresh_mean(self) -> float:
        return sum(self.fresh) / len(self.fresh) if self.fresh else math.nan

    @property
    def fresh_half_width(self) -> float:
        return _half_width(self.fresh)


def _half_width(values: Sequence[float]) -> float:
    """Half the 95% Student t interval of the mean of values (n - 1 degrees of freedom); NaN below 2 values."""
    n = len(values)
    if n < 2:
        return math.nan
    m = sum(values) / n
    sd = math.sqrt(sum((a - m) ** 2 for a in values) / (n - 1))
    return student_t_quantile((1 + LEVEL) / 2, n - 1) * sd / math.sqrt(n)


def repeat_rows(nets: Sequence[StudyNet], values: Mapping[int, Sequence[tuple[int, float]]],
                phases: Optional[Mapping[int, int]] = None) -> list[RepeatRow]:
    """The nets with more than one seed's result, by FLOPs; P(front) over every net of the study (a net not repeated
    counts with its one result)."""
    index = [i for i, n in enumerate(nets) if len(values[n.number]) > 1]
    probs = front_probabilities([[a for _, a in values[n.number]] for n in nets], [n.flops for n in nets], index)
    means = mean_fronts(nets, values, index)
    rows = [RepeatRow(nets[i].number, nets[i].spec_id, nets[i].description, nets[i].flops,
                      tuple(values[nets[i].number]), (phases or {}).get(nets[i].number), p, nets[i].seed, q)
            for i, p, q in zip(index, probs, means)]
    return sorted(rows, key=lambda r: (r.flops, r.trial))


def mean_fronts(nets: Sequence[StudyNet], values: Mapping[int, Sequence[tuple[int, float]]],
                which: Sequence[int]) -> list[Optional[MeanFront]]:
    """P(true mean on the front) of the nets at `which`: a repeated net's mean over its fresh seeds (not the one it was
    selected on), any other net's one result; sigma pooled over the repeated nets' seeds (None without it)."""
    fresh = [[a for s, a in values[n.number] if s != n.seed] for n in nets]
    groups = [[a for _, a in values[n.number]] for n in nets if len(values[n.number]) > 1]
    sigma = pooled_std(groups)
    if math.isnan(sigma):
        return [None] * len(which)
    use = [f if f else [n.val_acc] for f, n in zip(fresh, nets)]
    return mean_front_probabilities([sum(u) / len(u) for u in use], [len(u) for u in use], sigma,
                                    sum(len(g) - 1 for g in groups), [n.flops for n in nets], which)


@dataclass(frozen=True)
class RepeatsSection:
    """One study's repeats on the page: a title, the rule in words, the figure and the table (cells are HTML)."""

    study: str
    title: str
    text: str
    figure: Any  # figures.Figure
    header: tuple[str, ...]
    rows: list[list[str]]
    csv_rows: list[dict]


def _load(data: StudyData) -> Optional[list[TrialRecord]]:
    """The records of the study's companion `<study>-repeats` in the study's storage, or None if it has none."""
    companion = data.companion(repeats_name(data.name))
    return None if companion is None else list(companion.records)


def repeats_sections(datas: Sequence[StudyData], out: Path) -> list[RepeatsSection]:
    """The repeats section of each study that has repeats (figure written under `out`); writes repeats.csv when
    any has."""
    import pandas as pd

    sections = []
    for data in datas:
        records = _load(data)
        if not records:
            continue
        nets = study_nets(data)
        rows = repeat_rows(nets, seed_values(nets, records),
                           {r.tags[TAG]: r.tags.get(PHASE) for r in records if TAG in r.tags})
        if rows:
            sections.append(_section(data, nets, rows, out))
    if sections:
        pd.DataFrame([r for s in sections for r in s.csv_rows], columns=list(CSV_COLUMNS)).to_csv(
            out / "repeats.csv", index=False)
    return sections


def _section(data: StudyData, nets: Sequence[StudyNet], rows: Sequence[RepeatRow], out: Path) -> RepeatsSection:
    e = html.escape
    top = " at its top rung" if data.info is not None and data.info.rungs else ""
    text = (f"The nets of {data.name}'s front{top} (non-dominated in validation accuracy up, FLOPs down) were trained "
            f"again under seeds s+1 ... s+K (s: the seed of their first run), in the companion study "
            f"{repeats_name(data.name)} on the same split and budget; then every other net whose accuracy lies within "
            f"{MARGIN:g} sigma of the front's accuracy at its FLOPs (the best seed-mean accuracy among front nets with "
            f"at most its FLOPs; sigma: the pooled seed standard deviation of the front's nets) was trained under the "
            f"same seeds. Mean and std over seeds (std with n - 1); the interval is the {LEVEL:.0%} Student t interval "
            f"of the mean. A net was chosen on its first seed's result, its luckiest draw among the nets it beat (the "
            f"winner's curse): the mean without that seed, over the repeats alone, is the unbiased one, shown beside "
            f"the mean with it. P(mean on front): the probability that the net's true mean accuracy is non-dominated, "
            f"under the posterior of the true means given the repeats' means (a net not repeated: its one result), "
            f"with the pooled seed standard deviation (its own uncertainty included); a net dominates another when it "
            f"is more accurate at no more than {1 + FLOPS_TOLERANCE:.2f}x its FLOPs, so the cheapest net too must "
            f"beat the nets within {FLOPS_TOLERANCE:.0%} of its FLOPs; in brackets the 95% interval of its Monte "
            f"Carlo estimate (calibration: docs/repeats.md). Seed-draw share: the share of draws of one seed result "
            f"per net (uniformly, independently; a net not repeated keeps its one result) in which the net is "
            f"non-dominated: a statement about one training run, not about the mean. Every seed's accuracy: "
            f"repeats.csv.")
    header = ("trial", "architecture", "FLOPs", "why", "seeds", "mean", "std", f"{LEVEL:.0%} interval",
              "mean without its selection seed (95% interval)", "accuracy per seed", "P(mean on front)",
              "seed-draw share on the front")
    table = []
    for r in rows:
        interval = (f"{100 * (r.mean - r.half_width):.2f} - {100 * (r.mean + r.half_width):.2f}%"
                    if math.isfinite(r.half_width) else "-")
        fresh = ("-" if not r.fresh else f"{100 * r.fresh_mean:.2f}%" + (
            f" ({100 * (r.fresh_mean - r.fresh_half_width):.2f} - {100 * (r.fresh_mean + r.fresh_half_width):.2f}%)"
            if math.isfinite(r.fresh_half_width) else ""))
        q = r.mean_front
        table.append([str(r.trial), e(r.description), human(r.flops), e(_WHY.get(r.phase, "-")), str(r.n),
                      f"{100 * r.mean:.2f}%", f"{100 * r.std:.2f}" if math.isfinite(r.std) else "-", interval,
                      fresh, e(", ".join(f"s{s}: {100 * a:.2f}" for s, a in r.seeds)),
                      "-" if q is None else f"{q.p:.2f} ({q.low:.2f}-{q.high:.2f})", f"{r.p_front:.3f}"])
    csv_rows = [{"study": data.name, "trial": r.trial, "spec_id": r.spec_id, "seed": s, "val_acc": a}
                for r in rows for s, a in r.seeds]
    try:
        figure = _figure(data, nets, rows, out)
    except Exception as err:  # noqa: BLE001 - a figure that cannot be drawn must not cost the page
        from .figures import Figure

        figure = Figure(f"repeats-{data.name}", "Repeated nets", f"Not drawn: {type(err).__name__}: {err}")
    return RepeatsSection(data.name, f"Repeats under more seeds ({data.name})", text, figure, header, table, csv_rows)


def _figure(data: StudyData, nets: Sequence[StudyNet], rows: Sequence[RepeatRow], out: Path):
    """Mean accuracy of each repeated net with its t interval, its seeds' results, and the study's other nets."""
    import matplotlib
    from matplotlib.figure import Figure as MplFigure

    from .figures import RC, Figure, log_axis, save

    stem, title = f"repeats-{data.name}", f"Repeated nets: mean and {LEVEL:.0%} t interval over seeds"
    with matplotlib.rc_context(RC):
        fig = MplFigure(figsize=(7.5, 4.8))
        ax = fig.subplots()
        repeated = {r.trial for r in rows}
        others = [n for n in nets if n.number not in repeated]
        ax.scatter([n.flops for n in others], [100 * n.val_acc for n in others], s=12, color="0.7",
                   label="other nets (one seed)", zorder=1)
        ax.scatter([r.flops for r in rows for _ in r.seeds], [100 * a for r in rows for _, a in r.seeds], s=10,
                   color="tab:blue", alpha=0.45, label="each seed", zorder=2)
        ax.errorbar([r.flops for r in rows], [100 * r.mean for r in rows],
                    yerr=[100 * r.half_width if math.isfinite(r.half_width) else 0.0 for r in rows], fmt="o",
                    color="black", ms=5, capsize=3, label=f"mean, {LEVEL:.0%} t interval", zorder=3)
        for r in rows:
            ax.annotate(f"#{r.trial} P={r.mean_front.p if r.mean_front else math.nan:.2f}", (r.flops, 100 * r.mean), textcoords="offset points",
                        xytext=(5, 3), fontsize=7)
        log_axis(ax, [float(n.flops) for n in nets])
        ax.set_xlabel("FLOPs (multiply-adds, log scale)")
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(loc="lower right")
        ax.set_title(title)
        caption = (f"Black: the mean validation accuracy of each repeated net over its seeds, with the {LEVEL:.0%} "
                   f"Student t interval of the mean; blue: each seed's result; grey: the study's other nets at their "
                   f"one seed. Labels: trial and P(its true mean on the front).")
        return Figure(stem, title, caption, save(fig, out, stem))
