"""The planted benchmark's proxy-noise scale fitted to a fidelity run: recovered from runs planted at a known S, the
interval's coverage, and a stored fidelity run read into taus."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from nasx.experiments.planted_fit import GRID, MeasuredTaus, fit_proxy_noise, planted_taus
from nasx.experiments.simulate import PlantedBenchmark
from nasx.space import load_space

WORKS = (0.04, 1 / 15, 1 / 9)


def _make():
    return partial(PlantedBenchmark, load_space("resnext").corner("cpu"), (10e6, 30e6))


def _planted_run(make, scale: float, nets: int, seed: int, ref_seeds: int = 2) -> MeasuredTaus:
    """A fidelity run drawn from the planted benchmark at `scale`: nets other than the fit's own (another draw)."""
    bench = make(proxy_noise=scale)
    rng = np.random.default_rng(10_000 + seed)
    keys = [bench.new_net(rng) for _ in range(nets)]
    return MeasuredTaus(works=WORKS + (0.0625,), native_side=(True,) * 3 + (False,), names=("a", "b", "c", "r16"),
                        proxy_acc=np.array([[bench.observe(k, w, 0)[0] for k in keys] for w in WORKS + (0.0625,)]),
                        reference_acc=np.array([[bench.observe(k, 1.0, s)[0] for k in keys]
                                                for s in range(ref_seeds)]))


def test_planted_taus_fall_with_the_noise_scale_and_rise_with_the_work():
    curve = planted_taus(_make(), WORKS, grid=(0.0, 1.0, 3.0), nets=300)
    assert curve.shape == (3, 3)
    assert curve[0, 2] > curve[1, 2] > curve[2, 2]  # more noise, worse ranking
    assert curve[1, 0] < curve[1, 2]  # less work, worse ranking
    assert 0.25 < curve[1, 2] < 0.5  # the documented 0.37 at S = 1, w = 1/9 (300 nets)


@pytest.mark.heavy
def test_fit_recovers_a_planted_scale_from_a_large_run():
    make = _make()
    fits = {}
    for scale in (0.5, 2.0):
        fit = fits[scale] = fit_proxy_noise(_planted_run(make, scale, 1000, seed=1), make, grid=GRID[::2], nets=1000,
                                            boots=40)
        assert abs(fit.scale - scale) <= 0.3, fit
        assert fit.interval[0] < fit.interval[1]
        assert fit.fitted == (True, True, True, False)  # the other side's proxy is reported, not fitted
    assert fits[2.0].interval[0] > fits[0.5].interval[1]
    assert abs(fit.ceiling_measured - fit.ceiling_planted) < 0.1  # the same model: the same seed-to-seed tau


def test_a_small_run_fits_on_its_data_share_proxies_with_an_interval():
    make = _make()
    fit = fit_proxy_noise(_planted_run(make, 1.0, 24, seed=3), make, grid=GRID[::4], nets=200, boots=50)
    assert fit.fitted == (True, True, True, False) and fit.nets == 24 and fit.boots == 50
    assert fit.interval[0] <= fit.scale <= fit.interval[1] and fit.interval[1] - fit.interval[0] > 0.2
    assert len(fit.planted) == 4 and all(-1 <= t <= 1 for t in fit.measured)


@pytest.mark.heavy
def test_fit_interval_covers_the_planted_scale_at_24_nets():
    """Coverage of the 95% bootstrap interval for fidelity runs of 24 nets, 2 reference seeds, planted at S = 1 and
    S = 2 (the run's size in docs/rungs.md); the figure docs/simulate.md states."""
    make = _make()
    covered, total = 0, 0
    for scale in (1.0, 2.0):
        for rep in range(60):
            fit = fit_proxy_noise(_planted_run(make, scale, 24, seed=rep), make, grid=GRID[::2], nets=300,
                                  boots=200, seed=rep)
            covered += fit.interval[0] <= scale <= fit.interval[1]
            total += 1
    print(f"coverage {covered}/{total}")  # 114/120 on 2026-12-08 (docs/simulate.md)
    assert covered / total >= 0.85


def test_the_committed_fidelity_run_gives_the_taus_its_page_states():
    from pathlib import Path

    from nasx.experiments.fidelity import load_fidelity
    from nasx.experiments.planted_fit import measured_taus

    journal = Path(__file__).parents[2] / "reports/examples/fidelity-resnext-cpu/fidelity-resnext-cpu.journal"
    data = measured_taus(load_fidelity("resnext-cpu", str(journal)))
    taus, ceiling = data.taus()
    assert data.names == ("e1-f0.0625", "e1-f0.125-r24", "e1-f0.125") and data.native_side == (True, False, True)
    assert data.works == pytest.approx((0.125, 0.1406, 0.25), abs=1e-3) and data.proxy_acc.shape == (3, 16)
    assert [round(t, 2) for t in taus] == [0.19, 0.31, 0.22]  # its README's table
    assert ceiling != ceiling  # one reference seed: no seed-to-seed tau


@pytest.mark.heavy
def test_simulate_fits_the_noise_to_a_stored_fidelity_run(tmp_path):
    from pathlib import Path

    from typer.testing import CliRunner

    from nasx.cli.app import app

    journal = Path(__file__).parents[2] / "reports/examples/fidelity-resnext-cpu/fidelity-resnext-cpu.journal"
    result = CliRunner().invoke(app, ["simulate", "--noise-from", "resnext-cpu", "--storage", str(journal),
                                      "--seeds", "1", "--compute", "300", "--strategies", "random,rungs",
                                      "--out", str(tmp_path / "sim")])
    assert result.exit_code == 0, result.output
    assert "proxy noise fitted to fidelity run resnext-cpu (16 nets): S = " in result.output
    assert "proxy noise fitted" in (tmp_path / "sim" / "index.html").read_text()
