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

from ..analysis import complexity_weights, edf, log_bins
from ..refine import Evaluation, RefineRun, Round
from ..study.config import redact
from .figures import COLORS, RC, _subplots, edf_pair, save
from .page import fmt, html_page, html_table

__all__ = ["write_refine_report", "evaluation_rows", "round_letter", "space_letters"]

CSV = "candidates.csv"


def round_letter(k: int) -> str:
    """A, B, C, ... for the 1st, 2nd, 3rd space (the papers' names for successive spaces)."""
    return string.ascii_uppercase[(k - 1) % 26]


def space_letters(run: RefineRun) -> dict[int, str]:
    """Round index -> the letter of the space it sampled: a new letter per space, the same one for a round that
    sampled the space of an earlier round again (its nets pooled with theirs)."""
    letters: dict[int, str] = {}
    for r in run.rounds:
        first = r.judged[0][0] if r.judged else r.index
        letters[r.index] = letters.get(first) or round_letter(len(set(letters.values())) + 1)
    return letters


def _following(run: RefineRun, r: Round) -> str:
    """The letter of the space round r's refinement wrote."""
    letter = space_letters(run)[r.index]
    return round_letter(string.ascii_uppercase.index(letter) + 2) if r.refinement.kept else letter


def _judged_rounds(r: Round) -> str:
    return " ".join(str(j) for j, _, _ in r.judged) or str(r.index)


def evaluation_rows(run: RefineRun) -> list[dict[str, Any]]:
    """Every evaluation of every round, flat (the CSV); judged_rounds and judged_nets say which nets the round's
    refinement judged (its own, or those of every round of the same space, pooled)."""
    return [{"round": r.index, "study": r.study, "judged_rounds": _judged_rounds(r), "judged_nets": r.refinement.nets,
             **e.row()} for r in run.rounds for e in r.refinement.evaluations]


def _step(ax, errors: Sequence[float], weights: Optional[Sequence[float]], color, label: str, style: str = "-") -> None:
    xs, fs = edf([100 * e for e in errors], weights)
    ax.step([xs[0]] + xs, [0.0] + fs, where="post", color=color, lw=1.6, ls=style, label=label)


def _edf_rounds(run: RefineRun, out: Path) -> str:
    """Plain and complexity-normalized error EDFs of each round's own nets (its sample of its space), one curve per
    round (a pooled round may have none of its own left: no curve); returns the PNG."""
    rounds = [r for r in run.rounds if r.errors]
    letters = space_letters(run)
    labels = [f"{letters[r.index]}: round {r.index} (n={len(r.errors)}"
              + (f", the space of round {r.judged[0][0]} again" if r.pooled else "") + ")" for r in rounds]
    bins = max(1, min(10, min(len(r.flops) for r in rounds) // 10))
    with matplotlib.rc_context(RC):
        fig, _ = edf_pair([[100 * e for e in r.errors] for r in rounds], [list(r.flops) for r in rounds], labels,
                          "round 1", bins)
        return save(fig, out, "edf_rounds")


def _kept_figure(r: Round, out: Path) -> Optional[str]:
    """For each kept restriction of a round: the normalized EDF of the nets that satisfy it and of the rest."""
    kept = r.refinement.kept
    if not kept:
        return None
    with matplotlib.rc_context(RC):
        fig, axes = _subplots(1, len(kept), figsize=(4.2 * len(kept), 3.8), squeeze=False, sharey=True)
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
    letter, following = space_letters(run)[r.index], _following(run, r)
    space = r.space + (f" (corner {r.corner})" if r.corner else "")
    again = f" (the space of round {r.judged[0][0]} again, sampled with this round's seed)" if r.pooled else ""
    parts = [f"<h2>Round {r.index}: space {letter} \u2192 {following}"
             f"{'' if ref.kept else ' (unchanged)'}</h2>",
             f"<p>Space {letter}{again}: <code>{h(space)}</code>; study <code>{h(r.study)}</code> "
             f"({'trained by this run' if r.trained else 'an existing study, refined as it is'}), {len(r.errors)} "
             f"usable nets. <b>Judged on {h(r.judged_text())}</b>"
             + (f"; left out: {h(', '.join(f'{n} {w}' for w, n in ref.excluded.items()))}" if ref.excluded else "")
             + ". "
             f"Space {following}: <a href='{h(r.file.name)}'>{h(r.file.name)}</a>"
             + (f", landing in the band in {ref.in_band:.0%} of its draws" if ref.in_band is not None else "")
             + ".</p>"]
    kept = ref.kept
    if kept:
        parts.append("<p>Kept, in order: " + "; ".join(f"<code>{h(e.restriction.text)}</code>" for e in kept) + ".</p>")
    elif r.index < run.rounds[-1].index:
        parts.append(f"<p class='verdict'>No restriction kept: the space is unchanged, so round {r.index + 1} sampled "
                     f"it again and judged the samples pooled.</p>")
    else:
        parts.append("<p class='verdict'>No restriction kept: the space is unchanged (another round would sample it "
                     "again and judge the samples pooled).</p>")
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
             f"satisfy it. A round that keeps no restriction leaves the space as it was: the next round samples it "
             f"again (with its own seed) and its refinement judges the nets of every sample of that space pooled, "
             f"so the evidence grows; after a kept restriction a round judges its own nets only.</p>"]
    if command:
        parts.append(f"<p>Command: <code>{h(command)}</code></p>")
    for line in run.notes:
        parts.append(f"<p class='note'>{h(line)}</p>")
    if run.rounds:
        png = _edf_rounds(run, out)
        names = " \u2192 ".join(dict.fromkeys(space_letters(run).values()))
        parts.append(f"<h2>Error EDFs of each round's space ({h(names)})</h2><figure><img alt='EDFs of the rounds' "
                     f"src='{png}'><figcaption>Validation error of each round's own i.i.d. sample (a round that "
                     f"sampled a space again keeps its letter). Right: weighted by 1 / (nets in its FLOPs bin), "
                     f"log-spaced bins shared by all rounds. KS: max |F1 \u2212 F2| against round 1 "
                     f"(<a href='edf_rounds.svg'>SVG</a>)</figcaption></figure>")
    for r in run.rounds:
        parts += _round_section(run, r, out)
    (out / "index.html").write_text(html_page(f"refine-{run.name}", parts), encoding="utf-8")
    return out
