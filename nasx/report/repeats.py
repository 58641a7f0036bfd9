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
from ..stats.noise import front_probabilities
from ..study.record import TrialRecord
from ..study.repeat import MARGIN, PHASE, TAG, StudyNet, repeats_name, seed_values, study_nets
from ..units import human
from .tables import StudyData

__all__ = ["RepeatRow", "RepeatsSection", "repeat_rows", "repeats_sections", "CSV_COLUMNS", "LEVEL"]

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
    p_front: float

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
        if self.n < 2:
            return math.nan
        return student_t_quantile((1 + LEVEL) / 2, self.n - 1) * self.std / math.sqrt(self.n)


def repeat_rows(nets: Sequence[StudyNet], values: Mapping[int, Sequence[tuple[int, float]]],
                phases: Optional[Mapping[int, int]] = None) -> list[RepeatRow]:
    """The nets with more than one seed's result, by FLOPs; P(front) over every net of the study (a net not repeated
    counts with its one result)."""
    index = [i for i, n in enumerate(nets) if len(values[n.number]) > 1]
    probs = front_probabilities([[a for _, a in values[n.number]] for n in nets], [n.flops for n in nets], index)
    rows = [RepeatRow(nets[i].number, nets[i].spec_id, nets[i].description, nets[i].flops,
                      tuple(values[nets[i].number]), (phases or {}).get(nets[i].number), p)
            for i, p in zip(index, probs)]
    return sorted(rows, key=lambda r: (r.flops, r.trial))


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
            f"of the mean. P(front): the probability that the net is non-dominated when each net's accuracy is one of "
            f"its seeds' results drawn uniformly and independently (a net not repeated keeps its one result): the mean "
            f"over its seeds' accuracies a of the product over the other nets of (1 - the share of their results that "
            f"dominate (a, its FLOPs)); exact, no sampling. Every seed's accuracy: repeats.csv.")
    header = ("trial", "architecture", "FLOPs", "why", "seeds", "mean", "std", f"{LEVEL:.0%} interval",
              "accuracy per seed", "P(front)")
    table = []
    for r in rows:
        interval = (f"{100 * (r.mean - r.half_width):.2f} - {100 * (r.mean + r.half_width):.2f}%"
                    if math.isfinite(r.half_width) else "-")
        table.append([str(r.trial), e(r.description), human(r.flops), e(_WHY.get(r.phase, "-")), str(r.n),
                      f"{100 * r.mean:.2f}%", f"{100 * r.std:.2f}" if math.isfinite(r.std) else "-", interval,
                      e(", ".join(f"s{s}: {100 * a:.2f}" for s, a in r.seeds)), f"{r.p_front:.3f}"])
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
            ax.annotate(f"#{r.trial} P={r.p_front:.2f}", (r.flops, 100 * r.mean), textcoords="offset points",
                        xytext=(5, 3), fontsize=7)
        log_axis(ax, [float(n.flops) for n in nets])
        ax.set_xlabel("FLOPs (multiply-adds, log scale)")
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(loc="lower right")
        ax.set_title(title)
        caption = (f"Black: the mean validation accuracy of each repeated net over its seeds, with the {LEVEL:.0%} "
                   f"Student t interval of the mean; blue: each seed's result; grey: the study's other nets at their "
                   f"one seed. Labels: trial and P(on the front) under seed noise.")
        return Figure(stem, title, caption, save(fig, out, stem))
