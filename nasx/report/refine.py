"""The page of a refinement (`nasx refine`): each round's candidates and decisions, the EDFs of every round's
space on one axis (A -> B -> C, as in Radosavovic et al. 2019, 2020), the refined space files, a CSV.

Draws what `nasx.experiments.refine.run_refine` returns (decisions recomputed from stored records, never trained here).
"""

from __future__ import annotations

import csv
import html
import math
import string
from pathlib import Path
from typing import Any, Optional, Sequence

import matplotlib

from ..stats import MC_LEVEL, bin_index, edf, log_bins, stratified_weights
from ..experiments.refine import Evaluation, RefineRun, Round
from ..study.config import redact
from .figures import COLORS, RC, subplots, edf_pair, save
from ..units import human
from .page import html_page, html_table
from ..study.record import COMPLETE

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
        fig, axes = subplots(1, len(kept), figsize=(4.2 * len(kept), 3.8), squeeze=False, sharey=True)
        for ax, e in zip(axes[0], kept):
            edges = log_bins(list(e.subset_flops + e.rest_flops), max(1, min(10, e.nets // 10)))
            wa, wb = stratified_weights([bin_index(f, edges) for f in e.subset_flops],
                                        [bin_index(f, edges) for f in e.rest_flops])  # the test's weights
            _step(ax, e.subset_errors, list(wa), COLORS[0], f"satisfy it (n={e.satisfy})")
            _step(ax, e.rest_errors, list(wb), COLORS[1], f"the rest (n={e.nets - e.satisfy})", "--")
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
    tested = e.tested and e.permutations > 0
    interval = (f"{e.p_low:.5f}..{e.p_high:.5f} ({e.permutations})" + (" <b>borderline</b>" if e.borderline else "")
                if tested else "—")
    sizes = f"{e.ess_subset:.1f} / {e.ess_rest:.1f}" if tested else "—"
    return [str(e.step), f"<code>{h(e.restriction.text)}</code>", f"{e.satisfy} of {e.nets}", f"{e.removed:.0%}",
            structures, sizes, str(e.left_out) if tested else "—", _num(e.shift, "+.2f"), _num(e.t, ".2f"),
            _num(e.ks, ".3f"), _num(e.ks_all, ".3f"), _num(e.mean_diff, "+.2f"), _num(e.p_value, ".5f"), interval,
            _num(e.threshold if e.tested else None, ".5f"), "—" if e.in_band is None else f"{e.in_band:.0%}", verdict]


HEADER = ["step", "restriction", "nets satisfying", "nets removed (share actually removed)", "structures removed",
          "effective sizes (satisfy / rest)", "nets left out (one-sided FLOPs bins)",
          "error vs rest at the same FLOPs (points)", "t", "KS vs rest", "KS vs all",
          "normalized mean error vs rest (points)", "p (one-sided, within-bin permutation)",
          f"p's {MC_LEVEL:.1%} Monte Carlo interval (permutations)", "p needed", "in band", "decision"]


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


def _multiplicity(run: RefineRun) -> str:
    """The paragraph that says which error rate the run's decisions control."""
    o = run.options
    if o.correction == "spending":
        fwer = o.run_error(max(1, len(run.rounds)))
        return (f"<p class='verdict'>Multiplicity: the family is every candidate of every step of every round "
                f"(pooled rounds look again at earlier nets). Round k may spend \u03b1 / 2<sup>k</sup> and its step s "
                f"\u03b1 / 2<sup>k</sup> / 2<sup>s</sup>, split equally over the m candidates the step tests "
                f"(Bonferroni): p needed = {o.alpha:g} / 2<sup>k+s</sup> / m. By the union bound, this run's "
                f"family-wise error rate, the chance that its {len(run.rounds)} round(s) keep any restriction with "
                f"no effect, is at most {fwer:.4f} (< \u03b1 = {o.alpha:g} for any number of rounds and steps): each "
                f"sequential permutation p-value is itself a valid p-value, whatever the permutation seed.</p>")
    if o.correction == "bonferroni":
        return (f"<p class='verdict'>Multiplicity: Bonferroni within each step only (p needed = {o.alpha:g} / m); "
                f"the family-wise error rate across the steps and rounds of this run is not controlled (up to "
                f"{o.alpha:g} per step and round).</p>")
    return (f"<p class='verdict'>Multiplicity: no correction: each candidate is tested at {o.alpha:g}; the "
            f"family-wise error rate is not controlled.</p>")


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
    first = next((rec for r in run.rounds for rec in r.records if rec.state == COMPLETE), None)
    budget = (first.budget if first is not None else None) or {}
    band = f"{human(run.band[0])}..{human(run.band[1])} FLOPs" if run.band else "the space's band"
    parts = [f"<p>{len(run.rounds)} round(s) of {run.samples} nets each, sampled i.i.d. in {band}; dataset "
             f"{h(str(first.dataset if first else '?'))}, {h(str(budget.get('epochs', '?')))} epoch(s) on "
             f"{h(str(budget.get('fraction', '?')))} of the training split, device "
             f"{h(str(first.device if first else '?'))}; "
             f"studies in <code>{h(redact(run.storage))}</code>. The refined space: "
             f"<a href='refined.yaml'>refined.yaml</a> (loadable by <code>nasx sample</code>, <code>explore</code>, "
             f"<code>edf</code>; its header records each kept restriction and its evidence).</p>",
             f"<p>Method: error is 1 \u2212 validation accuracy of complete nets (the test split is never read). A "
             f"candidate restriction (a tie, a range cut or its complement, a dropped choice, from the space file) "
             f"splits the nets into those that satisfy it and the rest. The nets are binned by FLOPs (log-spaced); "
             f"a bin that holds nets of one side only has nothing to be compared with, so its nets are left out (the "
             f"table counts them); over the shared bins each side is weighted by 1 / (its nets in the bin), so every "
             f"shared bin weighs the same on both sides (complexity-normalized EDF, Radosavovic et al. 2019); the "
             f"table gives each side's effective sample size (Kish, (\u03a3w)\u00b2 / \u03a3w\u00b2) and the KS "
             f"of the two EDFs (shown, not tested). The test targets the shift refine looks for: the OLS t of "
             f"membership in error ~ FLOPs bin + log FLOPs (one slope within bins) + member, i.e. the error of the "
             f"nets that satisfy it minus the rest's at the same FLOPs; its one-sided p-value permutes the labels "
             f"within each FLOPs bin (the statistic is adjusted for the FLOPs trend inside a bin, so wide bins do "
             f"not leak: docs/refine.md, Calibration). Permutations are drawn in doubling batches ({o.n_perm}, then "
             f"{2 * o.n_perm}, ...; seed {o.perm_seed}) until 20 are at least as extreme as the observed split "
             f"(Besag-Clifford: p = 20 / drawn) or until 20 / (p needed) are drawn (p = (1 + b) / (1 + drawn))"
             + ("" if o.max_perm is None else f", at most {o.max_perm}: where the cap stops it short with p's "
                f"Monte Carlo interval holding the p needed the candidate is undecided and not kept")
             + f". Either p is valid under any seed; a decision whose {MC_LEVEL:.1%} Clopper-Pearson interval "
             f"holds the p needed is marked <b>borderline</b> (another permutation seed may decide it otherwise). "
             f"Greedy: in each step the strongest candidate (most negative t) that is better (lower error at the "
             f"same FLOPs), significant, removes at least {o.min_removed:.0%} of the nets and leaves a space "
             f"that lands in the band in at least {o.min_in_band:.0%} of its draws is kept; the next step tests the "
             f"rest among the nets that satisfy it. A round that keeps no restriction leaves the space as it was: "
             f"the next round samples it again (with its own seed) and its refinement judges the nets of every "
             f"sample of that space pooled, so the evidence grows; after a kept restriction a round judges its own "
             f"nets only.</p>", _multiplicity(run)]
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
