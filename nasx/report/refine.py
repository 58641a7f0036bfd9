"""The page of a refinement (`nasx refine`): each round's candidates and decisions, the EDFs of every round's
space on one axis (A -> B -> C, as in Radosavovic et al. 2019, 2020), the refined space files, a CSV.

Draws what `nasx.refine.run_refine` returns (decisions recomputed from stored records, never trained here).
"""

from __future__ import annotations

import csv
import html
import math
import string
from pathlib import Path
from typing import Any, Optional, Sequence

import matplotlib

from ..analysis import complexity_weights, edf, ks_statistic, log_bins
from ..refine import Evaluation, RefineRun, Round
from ..study.config import redact
from .figures import COLORS, RC, save
from .page import fmt, html_page, html_table

__all__ = ["write_refine_report", "evaluation_rows", "round_letter"]

CSV = "candidates.csv"


def round_letter(k: int) -> str:
    """A, B, C, ... for rounds 1, 2, 3 (the papers' names for successive spaces)."""
    return string.ascii_uppercase[(k - 1) % 26]


def evaluation_rows(run: RefineRun) -> list[dict[str, Any]]:
    """Every evaluation of every round, flat (the CSV)."""
    return [{"round": r.index, "study": r.study, **e.row()} for r in run.rounds for e in r.refinement.evaluations]


def _figure(figsize: tuple[float, float], *args: Any, **kwargs: Any):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def _step(ax, errors: Sequence[float], weights: Optional[Sequence[float]], color, label: str, style: str = "-") -> None:
    xs, fs = edf([100 * e for e in errors], weights)
    ax.step([xs[0]] + xs, [0.0] + fs, where="post", color=color, lw=1.6, ls=style, label=label)


def _edf_rounds(run: RefineRun, out: Path) -> str:
    """Plain and complexity-normalized error EDFs of each round's nets, one curve per round; returns the PNG."""
    rounds = run.rounds
    flops = [list(r.refinement.flops) for r in rounds]
    edges = log_bins([f for fs in flops for f in fs], max(1, min(10, min(len(fs) for fs in flops) // 10)))
    weights = [complexity_weights(fs, edges) for fs in flops]
    with matplotlib.rc_context(RC):
        fig, axes = _figure((10, 4.2), 1, 2, sharey=True)
        for ax, normalized in zip(axes, (False, True)):
            for i, r in enumerate(rounds):
                errors = list(r.refinement.errors)
                w = weights[i] if normalized else None
                label = f"{round_letter(r.index)}: round {r.index} (n={len(errors)})"
                if i > 0:
                    first = list(rounds[0].refinement.errors)
                    ks = ks_statistic(first, errors, weights[0] if normalized else None, w)
                    label += f", KS {ks:.3f} vs A"
                _step(ax, errors, w, COLORS[i % len(COLORS)], label)
            ax.set_xlabel("validation error (%)")
            ax.set_title("complexity-normalized EDF" if normalized else "EDF")
            ax.grid(True, alpha=0.25)
            ax.set_ylim(0, 1.02)
            ax.legend(loc="lower right")
        axes[0].set_ylabel("cumulative share of models")
        fig.tight_layout()
        return save(fig, out, "edf_rounds")


def _kept_figure(r: Round, out: Path) -> Optional[str]:
    """For each kept restriction of a round: the normalized EDF of the nets that satisfy it and of the rest."""
    kept = r.refinement.kept
    if not kept:
        return None
    with matplotlib.rc_context(RC):
        fig, axes = _figure((4.2 * len(kept), 3.8), 1, len(kept), squeeze=False, sharey=True)
        for ax, e in zip(axes[0], kept):
            edges = log_bins(list(e.subset_flops + e.rest_flops), max(1, min(10, e.nets // 10)))
            _step(ax, e.subset_errors, complexity_weights(list(e.subset_flops), edges), COLORS[0],
                  f"satisfy it (n={e.satisfy})")
            _step(ax, e.rest_errors, complexity_weights(list(e.rest_flops), edges), COLORS[1],
                  f"the rest (n={e.nets - e.satisfy})", "--")
            ax.set_title(f"step {e.step}: {e.restriction.text}\nKS {e.ks:.3f}, p {e.p_value:.4f}", fontsize=8)
            ax.set_xlabel("validation error (%)")
            ax.grid(True, alpha=0.25)
            ax.set_ylim(0, 1.02)
            ax.legend(loc="lower right")
        axes[0][0].set_ylabel("cumulative share (normalized)")
        fig.tight_layout()
        return save(fig, out, f"round-{r.index}-kept")


def _num(x: Optional[float], spec: str) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _cells(e: Evaluation) -> list[str]:
    h = html.escape
    structures = "— (widths are solved)" if e.removed_structures is None else f"{e.removed_structures:.0%}"
    verdict = f"<b>{h(e.verdict)}</b>" if e.kept else h(e.verdict)
    return [str(e.step), f"<code>{h(e.restriction.text)}</code>", f"{e.satisfy} of {e.nets}", f"{e.removed:.0%}",
            structures, _num(e.ks, ".3f"), _num(e.ks_all, ".3f"), _num(e.mean_diff, "+.2f"), _num(e.p_value, ".4f"),
            _num(e.threshold if e.tested else None, ".4f"), "—" if e.in_band is None else f"{e.in_band:.0%}", verdict]


HEADER = ["step", "restriction", "nets satisfying", "nets removed", "structures removed", "KS vs rest",
          "KS vs all", "mean error vs rest (points)", "p (permutation)", "p needed", "in band", "decision"]


def _round_section(run: RefineRun, r: Round, out: Path) -> list[str]:
    h = html.escape
    ref = r.refinement
    letter, following = round_letter(r.index), round_letter(r.index + 1)
    space = r.space + (f" (corner {r.corner})" if r.corner else "")
    parts = [f"<h2>Round {r.index}: space {letter} \u2192 {following}</h2>",
             f"<p>Space {letter}: <code>{h(space)}</code>; study <code>{h(r.study)}</code> "
             f"({'trained by this run' if r.trained else 'an existing study, refined as it is'}); "
             f"{ref.nets} nets judged" + (f", left out: {h(', '.join(f'{n} {w}' for w, n in ref.excluded.items()))}"
                                          if ref.excluded else "") + ". "
             f"Space {following}: <a href='{h(r.file.name)}'>{h(r.file.name)}</a>"
             + (f", landing in the band in {ref.in_band:.0%} of its draws" if ref.in_band is not None else "")
             + ".</p>"]
    kept = ref.kept
    if kept:
        parts.append("<p>Kept, in order: " + "; ".join(f"<code>{h(e.restriction.text)}</code>" for e in kept) + ".</p>")
    else:
        parts.append("<p class='verdict'>No restriction kept: the space is unchanged.</p>")
    shown = kept + [e for e in ref.final_step() if not e.kept]
    parts.append(f"<p>The kept restrictions at the step they were kept, then every candidate of the last step "
                 f"(tested among the nets that satisfy all kept ones); every step is in <a href='{CSV}'>{CSV}</a>.</p>")
    parts.append(html_table(HEADER, [_cells(e) for e in shown]))
    png = _kept_figure(r, out)
    if png:
        parts.append(f"<figure><img alt='kept restrictions of round {r.index}' src='{h(png)}'><figcaption>"
                     f"Complexity-normalized error EDFs of the nets that satisfy each kept restriction and of the "
                     f"rest, at the step it was kept (<a href='{h(Path(png).stem)}.svg'>SVG</a>)</figcaption></figure>")
    return parts


def write_refine_report(run: RefineRun, command: Optional[str] = None) -> Path:
    """Write index.html, edf_rounds.png/.svg, the kept restrictions' figures and candidates.csv into the run's
    folder (beside its round-<k>.yaml and refined.yaml); returns the folder."""
    out = run.out
    out.mkdir(parents=True, exist_ok=True)
    rows = evaluation_rows(run)
    with open(out / CSV, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["round"])
        writer.writeheader()
        writer.writerows(rows)
    h = html.escape
    o = run.options
    first = next((rec for r in run.rounds for rec in r.records if rec.state == "COMPLETE"), None)
    budget = (first.budget if first is not None else None) or {}
    band = f"{fmt(run.band[0])}..{fmt(run.band[1])} FLOPs" if run.band else "the space's band"
    parts = [f"<p>{len(run.rounds)} round(s) of {run.samples} nets each, sampled i.i.d. in {band}; dataset "
             f"{h(str(first.dataset if first else '?'))}, {h(str(budget.get('epochs', '?')))} epoch(s) on "
             f"{h(str(budget.get('fraction', '?')))} of the training split, device "
             f"{h(str(first.device if first else '?'))}; "
             f"studies in <code>{h(redact(run.storage))}</code>. The refined space: "
             f"<a href='refined.yaml'>refined.yaml</a> (loadable by <code>nasx sample</code>, <code>explore</code>, "
             f"<code>edf</code>; its header records each kept restriction and its evidence).</p>",
             f"<p>Method: error is 1 \u2212 validation accuracy of complete nets (the test split is never read). A "
             f"candidate restriction (a tie, a range cut, a dropped choice, from the space file) splits the nets into "
             f"those that satisfy it and the rest; each side is weighted so that every FLOPs bin weighs the same "
             f"(complexity-normalized EDF, Radosavovic et al. 2019), and the two EDFs are compared by the KS "
             f"statistic with a {o.n_perm}-permutation p-value. Greedy: in each step the most significant candidate "
             f"that is better (its EDF above the rest's), has p \u2264 {o.alpha:g}"
             f"{' / m (Bonferroni over the m candidates tested in the step)' if o.correction == 'bonferroni' else ''}, "
             f"removes at least {o.min_removed:.0%} of the nets and leaves a space that lands in the band in at "
             f"least {o.min_in_band:.0%} of its draws is kept; the next step tests the rest among the nets that "
             f"satisfy it.</p>"]
    if command:
        parts.append(f"<p>Command: <code>{h(command)}</code></p>")
    for line in run.notes:
        parts.append(f"<p class='note'>{h(line)}</p>")
    if run.rounds:
        png = _edf_rounds(run, out)
        names = " \u2192 ".join(round_letter(r.index) for r in run.rounds)
        parts.append(f"<h2>Error EDFs of each round's space ({h(names)})</h2><figure><img alt='EDFs of the rounds' "
                     f"src='{png}'><figcaption>Validation error of each round's i.i.d. sample. Right: weighted by "
                     f"1 / (nets in its FLOPs bin), log-spaced bins shared by all rounds. KS: max |F1 \u2212 F2| "
                     f"against round 1 (<a href='edf_rounds.svg'>SVG</a>)</figcaption></figure>")
    for r in run.rounds:
        parts += _round_section(run, r, out)
    (out / "index.html").write_text(html_page(f"refine-{run.name}", parts), encoding="utf-8")
    return out
