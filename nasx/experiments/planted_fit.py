"""The planted benchmark fitted to a measured fidelity run: the proxy-noise scale S whose planted Kendall taus (a
cheap budget against one seed of the top budget) come nearest the measured ones, with a bootstrap interval over the
measured nets, and the top budget's seed-to-seed tau, planted against measured.

Only proxies that cut the data share are fitted (the planted model has work, not image side); proxies at another
side are reported beside, at their work."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .simulate import PlantedBenchmark

__all__ = ["MeasuredTaus", "NoiseFit", "measured_taus", "planted_taus", "fit_proxy_noise", "GRID"]

GRID = tuple(round(0.1 * k, 1) for k in range(0, 81))  # S from 0 to 8 in steps of 0.1 (at 8, tau at 1/9 is ~0.05)


@dataclass(frozen=True)
class MeasuredTaus:
    """A fidelity run as the fit reads it: per proxy its work (cost over the reference's), whether it trains at the
    data's side, and each net's accuracy; the reference's accuracy per seed; nets complete under all of them."""

    works: tuple[float, ...]
    native_side: tuple[bool, ...]
    names: tuple[str, ...]
    proxy_acc: Any  # array (proxies, nets)
    reference_acc: Any  # array (seeds, nets)

    def taus(self, rows: Optional[Any] = None) -> tuple[np.ndarray, float]:
        """Each proxy's Kendall tau against each reference seed, averaged over the seeds, and the reference's mean
        seed-to-seed tau (NaN with one seed), over the nets `rows` (default all; a bootstrap passes resampled ones)."""
        from scipy.stats import kendalltau

        idx = np.arange(self.proxy_acc.shape[1]) if rows is None else np.asarray(rows)
        proxy, ref = self.proxy_acc[:, idx], self.reference_acc[:, idx]
        taus = np.array([np.mean([kendalltau(p, r).statistic for r in ref]) for p in proxy])
        pairs = [kendalltau(ref[a], ref[b]).statistic for a in range(len(ref)) for b in range(a + 1, len(ref))]
        return taus, float(np.mean(pairs)) if pairs else float("nan")


def measured_taus(data: Any) -> MeasuredTaus:
    """The proxies and reference seeds of a stored fidelity run (nasx.experiments.fidelity.load_fidelity), over the
    nets complete under every one of them."""
    from ..study.record import COMPLETE

    reference = next(b for b, role in data.roles.items() if role == "reference")

    def accuracies(records: Sequence[Any]) -> dict[str, float]:
        return {r.spec_id: float(r.outcome.val_acc) for r in records
                if r.state == COMPLETE and r.outcome.val_acc is not None and r.spec_id is not None}

    proxies = sorted((b for b, role in data.roles.items() if role == "proxy"), key=lambda b: data.costs[b])
    columns = [accuracies(data.budgets[b]) for b in proxies]
    seeds = [accuracies(data.budgets[reference])]
    nets = sorted(set.intersection(*(set(c) for c in columns + seeds)))
    # the reference's other seeds where they cover those nets (a ceiling run still training adds none)
    seeds += [s for s in (accuracies(data.ceiling[k]) for k in sorted(data.ceiling)) if set(nets) <= set(s)]
    if len(nets) < 4 or not proxies:
        raise ValueError(f"fidelity run {data.name!r}: {len(nets)} nets complete under every budget and "
                         f"{len(proxies)} proxies; the fit needs 4 nets and one proxy")
    from ..train.budget import Budget

    return MeasuredTaus(works=tuple(data.costs[b] / data.costs[reference] for b in proxies),
                        native_side=tuple(Budget.parse(b).resolution is None for b in proxies),
                        names=tuple(proxies),
                        proxy_acc=np.array([[c[n] for n in nets] for c in columns]),
                        reference_acc=np.array([[s[n] for n in nets] for s in seeds]))


def planted_taus(make: Callable[..., PlantedBenchmark], works: Sequence[float], grid: Sequence[float] = GRID,
                 nets: int = 600, seed: int = 0) -> np.ndarray:
    """Array (grid, works): the planted Kendall tau at each work against one seed of the top budget, per S in
    `grid`, over the same `nets` nets drawn once (as `PlantedBenchmark.proxy_tau` draws them)."""
    from scipy.stats import kendalltau

    bench, keys = _drawn(make, nets, seed)
    rows = []
    for s in grid:
        b = dataclasses.replace(bench, proxy_noise=float(s))
        top = [b.observe(k, 1.0, 0)[0] for k in keys]
        rows.append([kendalltau([b.observe(k, w, 0)[0] for k in keys], top).statistic for w in works])
    return np.array(rows)


def _drawn(make: Callable[..., PlantedBenchmark], nets: int, seed: int) -> tuple[PlantedBenchmark, list[str]]:
    bench = make(proxy_noise=1.0)
    rng = np.random.default_rng(seed)
    return bench, [k for k in (bench.new_net(rng) for _ in range(nets)) if k is not None]


@dataclass(frozen=True)
class NoiseFit:
    """S (least squares of planted minus measured tau over the fitted proxies) and its bootstrap percentile
    interval over the nets; measured and planted taus per proxy; the top budget's seed-to-seed tau, measured and
    planted."""

    scale: float
    interval: tuple[float, float]
    names: tuple[str, ...]
    works: tuple[float, ...]
    fitted: tuple[bool, ...]
    measured: tuple[float, ...]
    planted: tuple[float, ...]
    ceiling_measured: float
    ceiling_planted: float
    nets: int
    boots: int
    at_edge: float  # share of bootstrap fits at the grid's end (the interval is then cut there)


def _best(curve: np.ndarray, grid: Sequence[float], measured: np.ndarray) -> float:
    return float(grid[int(np.argmin(((curve - measured) ** 2).sum(axis=1)))])


def fit_proxy_noise(data: MeasuredTaus, make: Callable[..., PlantedBenchmark], grid: Sequence[float] = GRID,
                    nets: int = 600, boots: int = 1000, level: float = 0.95, seed: int = 0) -> NoiseFit:
    """Fit S to the data-share proxies of `data`: planted taus on the grid (`planted_taus`), the S nearest the
    measured taus, then the same fit on `boots` resamples of the nets (percentile interval at `level`)."""
    fitted = np.array(data.native_side)
    if not fitted.any():
        raise ValueError("no proxy trains at the data's side: the planted model has work, not image side")
    works = [w for w, f in zip(data.works, fitted) if f]
    curve = planted_taus(make, works, grid, nets, seed)
    measured, ceiling = data.taus()
    scale = _best(curve, grid, measured[fitted])
    rng = np.random.default_rng(seed)
    n = data.proxy_acc.shape[1]
    draws = np.array([_best(curve, grid, data.taus(rng.integers(0, n, n))[0][fitted]) for _ in range(boots)])
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    planted_all = planted_taus(make, data.works, (scale,), nets, seed)[0]
    return NoiseFit(scale=scale, interval=(float(lo), float(hi)), names=data.names, works=data.works,
                    fitted=tuple(bool(f) for f in fitted), measured=tuple(float(t) for t in measured),
                    planted=tuple(float(t) for t in planted_all), ceiling_measured=ceiling,
                    ceiling_planted=_seed_tau(make, nets, seed), nets=n, boots=boots,
                    at_edge=float(np.mean((draws == grid[0]) | (draws == grid[-1]))))


def _seed_tau(make: Callable[..., PlantedBenchmark], nets: int, seed: int) -> float:
    """The planted top budget's seed-to-seed Kendall tau (seeds 0 and 1 of the nets `planted_taus` draws; S plays
    no part at the top budget)."""
    from scipy.stats import kendalltau

    bench, keys = _drawn(make, nets, seed)
    return float(kendalltau([bench.observe(k, 1.0, 0)[0] for k in keys],
                            [bench.observe(k, 1.0, 1)[0] for k in keys]).statistic)
