"""The fidelity page: per proxy and per zero-cost baseline (FLOPs, params), rank agreement with the reference
(table), proxy-vs-reference scatter per budget, and cost against Kendall's tau naming the cheapest proxy whose
tau interval lies above a threshold; CSVs beside it."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Optional

from ..experiments.fidelity import MIN_TAU, FidelityResult, load_fidelity, measure
from .figures import RC, subplots, log_axis, save
from .page import html_page, html_table

__all__ = ["write_fidelity_report", "against_baselines"]


def _num(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def _interval(ci: tuple[float, float]) -> str:
    return "n/a" if any(v != v for v in ci) else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _regret(p) -> str:
    """Expected regret in points, with its range over the orders of tied nets when the ties make one."""
    lo, hi = p.regret_range
    if p.regret != p.regret:
        return "n/a"
    return f"{100 * p.regret:.2f}" + (f" ({100 * lo:.2f}-{100 * hi:.2f})" if hi > lo else "")


def _top_k(p) -> str:
    lo, hi = p.top_k_range
    if p.top_k != p.top_k:
        return "n/a"
    return f"{p.top_k:.0%}" + (f" ({lo:.0%}-{hi:.0%})" if hi > lo else "") + f" (k={p.k})"


def _scatter(result: FidelityResult, out: Path) -> Optional[str]:
    import matplotlib

    proxies = [p for p in result.proxies if p.nets >= 2]
    if not proxies:
        return None
    with matplotlib.rc_context(RC):
        cols = min(3, len(proxies))
        rows = math.ceil(len(proxies) / cols)
        fig, axes = subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
        table = result.nets
        for ax, p in zip(axes.flat, proxies):
            both = table[[p.budget, result.reference]].dropna()
            ax.scatter(100 * both[p.budget], 100 * both[result.reference], s=18, color="C0")
            ax.set_xlabel(f"proxy {p.budget}: val acc %")
            ax.set_ylabel(f"reference {result.reference}: val acc %")
            ax.set_title(f"{p.budget}: tau {_num(p.tau)} {_interval(p.tau_ci)}")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(proxies):]:
            ax.set_visible(False)
        fig.tight_layout()
        return save(fig, out, "proxy_vs_reference")


def _cost_vs_tau(result: FidelityResult, out: Path, min_tau: float) -> Optional[str]:
    import matplotlib

    proxies = [p for p in result.proxies if p.tau == p.tau and p.seconds_per_net == p.seconds_per_net]
    if not proxies:
        return None
    cheapest = result.cheapest(min_tau)
    with matplotlib.rc_context(RC):
        fig, ax = subplots(figsize=(6.0, 4.0))
        for p in proxies:
            lo, hi = p.tau_ci
            err = None if lo != lo else [[max(0.0, p.tau - lo)], [max(0.0, hi - p.tau)]]  # float noise at tau = +-1
            chosen = cheapest is not None and p.budget == cheapest.budget
            ax.errorbar([p.seconds_per_net], [p.tau], yerr=err, fmt="o", color="C3" if chosen else "C0", capsize=3)
            ax.annotate(p.budget + ("  <- cheapest with its interval above" if chosen else ""), (p.seconds_per_net, p.tau),
                        textcoords="offset points", xytext=(6, 4), fontsize=8)
        ax.axhline(min_tau, color="0.4", ls="--", lw=1)
        for i, b in enumerate(result.baselines):
            if b.tau == b.tau:
                ax.axhline(b.tau, color=f"C{i + 1}", ls=":", lw=1)
                ax.text(ax.get_xlim()[1], b.tau, f"{b.budget} (no training) ", ha="right", va="bottom", fontsize=8,
                        color=f"C{i + 1}")
        ax.text(ax.get_xlim()[0], min_tau, f" threshold tau = {min_tau:g}", va="bottom", fontsize=8, color="0.3")
        log_axis(ax, [p.seconds_per_net for p in proxies])
        ax.set_xlabel(f"measured seconds per net ({result.device or 'device'}); the reference: "
                      f"{result.reference_seconds:.0f} s")
        ax.set_ylabel(f"Kendall tau vs reference {result.reference}")
        lows = [p.tau_ci[0] for p in proxies if p.tau_ci[0] == p.tau_ci[0]]
        lows += [b.tau for b in result.baselines if b.tau == b.tau]
        ax.set_ylim(min(-0.1, min(lows) - 0.05) if lows else -0.1, 1.05)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return save(fig, out, "cost_vs_tau")


def write_fidelity_report(name: str, storage: Optional[str] = None, out: Optional[str | Path] = None,
                          min_tau: float = MIN_TAU, top_k: Optional[int] = None,
                          command: Optional[str] = None, note: Optional[str] = None) -> Path:
    """Measure the stored fidelity run `name` and write index.html, fidelity.csv, nets.csv and the figures
    into `out` (default reports/fidelity-<name>/); returns that folder."""
    data = load_fidelity(name, storage)
    result = measure(data, top_k=top_k)
    out_dir = Path(out) if out is not None else Path("reports") / f"fidelity-{name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    pd.DataFrame([p.row() for p in (*result.proxies, *result.baselines, *result.ceiling)]).to_csv(out_dir / "fidelity.csv", index=False, float_format="%.6g")
    result.nets.to_csv(out_dir / "nets.csv", index=False, float_format="%.6g")
    scatter = _scatter(result, out_dir)
    cost = _cost_vs_tau(result, out_dir, min_tau)
    (out_dir / "index.html").write_text(_page(result, data, scatter, cost, min_tau, command, note), encoding="utf-8")
    return out_dir


def verdict(result: FidelityResult, min_tau: float) -> str:
    """The cheapest proxy whose tau interval's lower bound reaches the threshold and that beats the baselines,
    or that none does and why."""
    best = result.cheapest(min_tau)
    bars = "; ".join(f"ranking by {b.budget} gives tau {_num(b.tau)} {_interval(b.tau_ci)}" for b in result.baselines)
    bars = f" For comparison, {bars}." if bars else ""
    roof = "; ".join(f"{c.budget}: tau {_num(c.tau)} {_interval(c.tau_ci)}" for c in result.ceiling)
    bars += (f" The reference's own seed-to-seed agreement, the ceiling a proxy can reach: {roof}." if roof else "")
    if best is None:
        lows = ", ".join(f"{p.budget} {_num(p.tau)} {_interval(p.tau_ci)}" for p in result.proxies)
        return (f"No proxy's 95% interval of Kendall tau lies above {min_tau:g} against {result.reference} "
                f"(tau [interval]: {lows}), or beats the zero-cost baselines: none can be trusted to keep the "
                f"reference's ranking.{against_baselines(result)}{bars}")
    speed = (f", {result.reference_seconds / best.seconds_per_net:.1f}x cheaper than the reference"
             if result.reference_seconds == result.reference_seconds else "")
    return (f"The cheapest proxy whose 95% interval of Kendall tau lies above {min_tau:g} is {best.budget}: tau "
            f"{_num(best.tau)} {_interval(best.tau_ci)}, top-{best.k} overlap {_top_k(best).rsplit(' (k=', 1)[0]}, "
            f"regret {_regret(best)} points, {best.seconds_per_net:.0f} s a net{speed}.{against_baselines(result)}{bars}")


def against_baselines(result: FidelityResult) -> str:
    """Each proxy against ranking by FLOPs and by params alone, by the paired intervals of the differences: one
    sentence per baseline, "better", "worse" or "no evidence either way" (from the tau difference's interval)."""
    out = []
    for label in dict.fromkeys(v.baseline for p in result.proxies for v in p.versus):
        rows = [(p.budget, v) for p in result.proxies for v in p.versus if v.baseline == label]
        kinds = {v.verdict for _, v in rows}
        if kinds == {"better"}:
            head = f"Every proxy ranks better than {label}"
        elif kinds == {"worse"}:
            head = f"Every proxy ranks worse than {label}"
        elif kinds == {"no evidence either way"}:
            head = f"Against {label}, no evidence either way for any proxy"
        else:
            head = f"Against {label}"
        detail = "; ".join(f"{b} {v.text().split(': ', 1)[1]}" for b, v in rows)
        out.append(f" {head} (paired 95% intervals of the differences over the same nets: {detail}).")
    return "".join(out)


def _page(result: FidelityResult, data: Any, scatter: Optional[str], cost: Optional[str], min_tau: float,
          command: Optional[str], note: Optional[str]) -> str:
    e = html.escape
    n_nets = len(result.nets)
    parts = [f"<p>{n_nets} nets on {e(result.dataset or '?')}, device {e(result.device or '?')}; reference budget "
             f"<b>{e(result.reference)}</b> ({result.reference_seconds:.0f} s a net). Accuracies are on the validation "
             f"split held out of the training split; the test split is not read. Storage {e(data.storage)}.</p>"]
    if command:
        parts.append(f"<p>Command: <code>{e(command)}</code></p>")
    if note:
        parts.append(f"<p>{e(note)}</p>")
    parts.append(f"<h2>Verdict</h2><p class='verdict'>{e(verdict(result, min_tau))}</p>")
    missing = {b: m for b, m in result.missing.items() if m}
    if missing:
        parts.append("<p class='note'>Not complete yet: " + e(", ".join(f"{b}: {m} net(s)" for b, m in missing.items()))
                     + "; the numbers below use the nets complete under both budgets. Run the same command to "
                       "finish.</p>")
    kinds = {"baseline": " (baseline: no training)", "ceiling": " (ceiling: the reference, another seed)"}
    rows = [[e(p.budget) + kinds.get(p.kind, ""),
             f"{p.cost:.3g}", _num(p.seconds_per_net, 1), str(p.nets), _num(p.tau), _interval(p.tau_ci),
             _num(p.rho), _interval(p.rho_ci), _top_k(p), _regret(p),
             "<br>".join(e(v.text()) for v in p.versus) or "—"]
            for p in (*result.proxies, *result.baselines, *result.ceiling)]
    parts.append(html_table(["proxy", "relative work", "seconds per net", "nets", "Kendall tau", "95% CI",
                             "Spearman rho", "95% CI", "top-k overlap (range)", "regret, points (range)",
                             "against the baselines: tau and regret differences [paired 95% CI]: verdict"], rows))
    parts.append(f"<p>Relative work: epochs x fraction x (resolution / native)^2 (1 = one pass over the training split "
                 f"at full size). Intervals: paired bootstrap over nets (2,000 resamples, percentile; its measured "
                 f"coverage is in docs/fidelity.md). Regret: the reference accuracy of the reference's best net minus "
                 f"that of the proxy's best net; top-k overlap: the share of the proxy's k best among the reference's k "
                 f"best. Both are expected over the orders of tied nets (a tie broken uniformly at random), with the "
                 f"least and most any order gives in brackets when ties make them differ. Baselines: the same nets "
                 f"ranked by FLOPs alone and by parameters alone (more taken as better), at no training cost; each "
                 f"proxy is compared with them on the same nets by paired bootstrap intervals (nets resampled with "
                 f"their three values) of the tau difference and of the regret difference: \"better\" when the tau "
                 f"difference's interval lies above 0, \"worse\" below, else \"no evidence either way\" (the "
                 f"interval's coverage is in docs/fidelity.md); a proxy must be better than both. A ceiling row (with --ceiling-seeds) is the reference trained again with another "
                 f"seed, measured against the reference: no proxy can be expected to agree with the reference better "
                 f"than the reference agrees with itself. Verdict rule: the cheapest proxy (seconds per net) whose "
                 f"interval's lower bound reaches {min_tau:g} and that is better than both baselines.</p>")
    if scatter:
        parts.append(f"<figure><img alt='proxy vs reference' src='{e(scatter)}'><figcaption>Validation accuracy under "
                     f"each proxy against the reference, one point a net (<a href='proxy_vs_reference.svg'>SVG</a>)"
                     f"</figcaption></figure>")
    if cost:
        parts.append(f"<figure><img alt='cost vs tau' src='{e(cost)}'><figcaption>Measured cost against Kendall tau "
                     f"(95% bootstrap interval); dashed: the threshold {min_tau:g} (<a href='cost_vs_tau.svg'>SVG</a>)"
                     f"</figcaption></figure>")
    budgets = [b for b in [*(p.budget for p in result.proxies), result.reference, *(c.budget for c in result.ceiling)]
               if b in result.nets]
    net_rows = []
    for _, r in result.nets.iterrows():
        counts = [f"{int(r[c]):,}" if c in r and r[c] == r[c] else "" for c in ("flops", "params")]
        net_rows.append([str(r["net"]), e(str(r.get("description", ""))), *counts,
                         *[_num(100 * r[b], 2) for b in budgets]])
    parts.append("<h2>Nets</h2>" + html_table(["net", "structure", "FLOPs", "params",
                                               *[f"{b} val acc %" for b in budgets]], net_rows))
    return html_page(f"fidelity-{result.name}", parts)
