"""nasx.experiments.ablate and `nasx ablate`: matched-complexity settings (Xie et al. 2017, Tables 2 and 4), a tiny run, the report."""

from __future__ import annotations

import math
import statistics

import optuna
import pytest
import typer
from typer.testing import CliRunner

from nasx.net import zoo
from nasx.experiments.ablate import AblationError, default_template, eq4_params, plan, run_ablation, settings
from nasx.study.record import TrialRecord
from nasx.report.ablation import ablation_rows, ablation_table, verdict_for
from nasx.report import ReportError, write_ablation_report
from nasx.cli.ablate import register
from nasx.net.complexity import complexity
from nasx.net.spec import AggregatedBlock, NetSpec, Stage, Stem
from nasx.study import StudyConfig, open_storage
from nasx.train.budget import Budget
from nasx.train import TrainResult

from study_fakes import curve_train, final_accuracy

# Xie et al. 2017, Table 2 (the expected values of the generator, never its input)
PAPER_PAIRS = [(1, 64), (2, 40), (4, 24), (8, 14), (32, 4)]
# the five nets' FLOPs against resnet50's, fvcore's convention (quoted in issue 7)
QUOTED_DEVIATIONS = [0.0, 0.009, 0.018, 0.045, 0.036]


def tiny_template() -> NetSpec:
    """ResNeXt-29's layout, one block a stage, each striding 2, 96/192/384 wide, 4x12d (16.6 MFLOPs)."""
    stages = tuple(Stage(depth=1, width=w, stride=2, block=AggregatedBlock(cardinality=4, group_width=12 * 2**i))
                   for i, w in enumerate((96, 192, 384)))
    return NetSpec(stem=Stem("cifar", 16), stages=stages, num_classes=10, resolution=32)


# ---------------------------------------------------------------------------------------------
# Settings


@pytest.mark.parametrize("base", ["resnet50", "resnext50_32x4d"])
def test_resnext50_cardinality_settings_are_table2(base):
    got = settings(zoo.get(base), "cardinality")
    assert [(s.cardinality, s.group_width) for s in got] == PAPER_PAIRS
    # torchvision's structure: group width doubles per stage at fixed cardinality
    for s in got:
        assert [st.block.group_width for st in s.spec.stages] == [s.group_width * 2**i for i in range(4)]
        assert [st.block.cardinality for st in s.spec.stages] == [s.cardinality] * 4
    by_pair = {(s.cardinality, s.group_width): s for s in got}
    assert by_pair[(32, 4)].params == 25_028_904 == complexity("resnext50_32x4d").params
    assert by_pair[(32, 4)].flops == complexity("resnext50_32x4d").flops
    assert by_pair[(1, 64)].params == complexity("resnet50").params == 25_557_032
    resnet50 = complexity("resnet50").flops
    for s, quoted in zip(got, QUOTED_DEVIATIONS):
        dev = s.flops / resnet50 - 1
        assert abs(dev) <= 0.05
        assert dev == pytest.approx(quoted, abs=0.001)
        assert s.deviation == pytest.approx(s.flops / complexity(base).flops - 1)
        assert abs(s.deviation) <= 0.05
    assert [s.is_base for s in got] == ([True, False, False, False, False] if base == "resnet50"
                                        else [False, False, False, False, True])


def test_eq4_is_the_papers_formula():
    for c, d in PAPER_PAIRS:
        assert eq4_params(256, c, d) == c * (256 * d + 3 * 3 * d * d + d * 256)
    assert eq4_params(256, 1, 64) == 69_632 and eq4_params(256, 32, 4) == 70_144


def test_cifar_templates_within_tolerance():
    base = default_template("resnext")
    assert complexity(base).flops == 781_264_896  # ResNeXt-29 layout, 32x4d
    got = settings(base, "cardinality")
    assert [(s.cardinality, s.group_width) for s in got] == PAPER_PAIRS  # same first-stage width 256 as ResNeXt-50
    for s in got:
        assert abs(complexity(s.spec).flops / complexity(base).flops - 1) <= 0.05
        assert [st.depth for st in s.spec.stages] == [3, 3, 3]
    # ResNeXt-29 8x64d itself (5.4 GFLOPs; counted, never trained here)
    big = plan(zoo.get("resnext29_8x64d"), "cardinality", values=[1, 2, 4, 8, 16])
    assert big.settings and all(abs(s.deviation) <= 0.05 for s in big.settings)
    assert {s.cardinality for s in big.settings} == {1, 2, 4, 8, 16}
    assert next(s for s in big.settings if s.is_base).spec == zoo.get("resnext29_8x64d")


@pytest.mark.parametrize("vary", ["width", "depth", "bottleneck-ratio"])
@pytest.mark.parametrize("base", ["default", "resnet50"])
def test_other_axes_match_complexity(vary, base):
    template = default_template() if base == "default" else zoo.get(base)
    target = complexity(template).flops
    p = plan(template, vary)
    assert len(p.settings) >= 3
    assert len({s.spec.id for s in p.settings}) == len(p.settings)
    for s in p.settings:
        assert abs(complexity(s.spec).flops / target - 1) <= 0.05
        assert s.deviation == pytest.approx(complexity(s.spec).flops / target - 1)
    if vary == "depth":  # the knob really moves: depths differ between settings
        assert len({s.depths for s in p.settings}) == len(p.settings)
    if vary == "width":
        assert len({s.widths for s in p.settings}) == len(p.settings)
    if vary == "bottleneck-ratio":
        ratios = [NetSpec.bottleneck_width(s.spec.stages[0]) / s.spec.stages[0].width for s in p.settings]
        assert ratios == sorted(ratios) and ratios[-1] > 2 * ratios[0]


def test_scale_factor_2_is_table4():
    base = zoo.get("resnet101")
    p = plan(base, "scale", factor=2)
    names = [s.name for s in p.settings]
    assert names == ["1x (template)", "deeper", "wider", "cardinality"]
    target = 2 * complexity(base).flops
    by = {s.name: s for s in p.settings}
    assert by["1x (template)"].spec == base and by["1x (template)"].deviation == 0
    for name in ("deeper", "wider", "cardinality"):
        assert abs(by[name].flops / target - 1) <= 0.05
    assert sum(by["deeper"].depths) > sum(base_depth for base_depth in (3, 4, 23, 3))
    assert by["wider"].group_width > 64 and by["wider"].cardinality == 1
    assert (by["cardinality"].cardinality, by["cardinality"].group_width) == (2, 64)  # Table 4's 2x64d
    # the CIFAR default: every setting it keeps is within the tolerance of 2x
    cifar = plan(default_template(), "scale", factor=2)
    t2 = 2 * complexity(default_template()).flops
    assert all(abs(s.flops / t2 - 1) <= 0.05 for s in cifar.settings if not s.is_base)
    assert {"deeper", "wider"} <= {s.name for s in cifar.settings}


def test_explicit_values_outside_tolerance_raise():
    with pytest.raises(AblationError, match=r"outside \+-1%"):
        plan(tiny_template(), "cardinality", values=[1], tolerance=0.01)
    with pytest.raises(AblationError, match="not divisible"):
        plan(tiny_template(), "cardinality", values=[64])
    with pytest.raises(AblationError, match="--vary"):
        plan(tiny_template(), "sideways")
    with pytest.raises(AblationError, match="bottleneck blocks"):
        plan(zoo.get("resnet18"), "cardinality")


# ---------------------------------------------------------------------------------------------
# A tiny ablation and its report


def seeded_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                 progress=None, continuation=None):
    """The curve trainer, plus 1 point of accuracy per seed and a test accuracy 0.05 below validation."""
    r = curve_train(spec, dataset, budget, device, seed, callback, config=config)
    bump = 0.01 * seed
    return TrainResult(**{**r.__dict__, "val_acc": [a + bump for a in r.val_acc], "final_val_acc": r.final_val_acc + bump,
                          "test_acc": (r.final_val_acc + bump - 0.05) if test else None,
                          "images_per_s": 1000.0 + seed})


def tiny_config(tmp_path) -> StudyConfig:
    return StudyConfig(dataset="synthetic", budget=Budget(1, 0.5), device="cpu", workers=1,
                       storage=str(tmp_path / "abl.journal"))


def test_tiny_ablation_table_and_plot(tmp_path):
    p = plan(tiny_template(), "cardinality", values=[1, 2, 4])
    assert [s.cardinality for s in p.settings] == [1, 2, 4]
    summary = run_ablation(p, name="tiny", seeds=2, config=tiny_config(tmp_path), train_fn=seeded_train)
    assert summary.snapshot.complete == 6
    storage = str(tmp_path / "abl.journal")
    trials = optuna.load_study(study_name="ablation-tiny", storage=open_storage(storage)).get_trials()
    assert sorted((t.user_attrs["tag_setting"], t.user_attrs["seed"]) for t in trials) == sorted(
        (s.name, k) for s in p.settings for k in (0, 1))
    assert all("test_acc" in t.user_attrs for t in trials)

    out = write_ablation_report("tiny", storage=storage, out=tmp_path / "report")
    import pandas as pd

    table = pd.read_csv(out / "ablation.csv")
    assert list(table["setting"]) == [s.name for s in p.settings]
    assert list(table["cardinality"]) == [1, 2, 4]
    assert list(table["seeds"]) == [2, 2, 2]
    for s, (_, row) in zip(p.settings, table.iterrows()):
        # the study adapts the spec to the 16x16 synthetic images before training
        trained = s.spec.replace(resolution=16)
        vals = [final_accuracy(trained) + 0.01 * k for k in (0, 1)]
        assert row["val_acc_mean"] == pytest.approx(statistics.mean(vals), rel=1e-5)
        assert row["val_acc_std"] == pytest.approx(statistics.stdev(vals), rel=1e-4)
        assert row["val_acc_std"] == pytest.approx(0.01 / math.sqrt(2), rel=1e-4)
        assert row["test_acc_mean"] == pytest.approx(statistics.mean(vals) - 0.05, rel=1e-5)
        assert row["images_per_s"] == pytest.approx(1000.5)
        assert row["flops"] == complexity(trained).flops
        assert row["params"] == complexity(trained).params
        assert row["flops_deviation"] == pytest.approx(s.deviation, abs=1e-6)
    png = (out / "ablation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    svg = (out / "ablation.svg").read_text()
    assert "cardinality" in svg and "error" in svg
    page = (out / "index.html").read_text()
    assert "ablation.png" in page and "1x" in page
    assert "ImageNet" not in page  # none of Table 2's pairs in this ablation: no paper context

    # resumable: a second run trains nothing new
    again = run_ablation(p, name="tiny", seeds=2, config=tiny_config(tmp_path), train_fn=seeded_train)
    assert again.snapshot.complete == 6
    assert len(optuna.load_study(study_name="ablation-tiny", storage=open_storage(storage)).get_trials()) == 6


def T(setting, order, seed, val, state, number=0):
    """An ablation run's record."""
    return TrialRecord.of(number, state, seed=seed, val_acc=val, test_acc=val, params=1, flops=2, images_per_s=10.0,
                       tags={"setting": setting, "order": order, "cardinality": order + 1, "group_width": 4,
                             "depths": [1], "widths": [8], "deviation": 0.0, "vary": "cardinality"})


def test_a_run_queued_again_counts_once():
    runs = [T("a", 0, 0, 0.2, "FAIL", number=0), T("a", 0, 0, 0.3, "COMPLETE", number=1)]
    runs[1] = TrialRecord(**{**runs[1].__dict__, "retry_of": 0})
    rows = ablation_rows(runs)
    assert len(rows) == 1 and rows[0]["val_acc"] == 0.3


def test_table_ignores_failed_runs_and_single_seed_has_zero_std():
    table = ablation_table(ablation_rows([T("b", 1, 0, 0.5, "COMPLETE"), T("a", 0, 0, 0.2, "COMPLETE"),
                                          T("a", 0, 1, 0.4, "COMPLETE"), T("b", 1, 1, 0.9, "FAIL")]))
    assert list(table["setting"]) == ["a", "b"]
    assert list(table["seeds"]) == [2, 1]
    assert table["val_acc_mean"].tolist() == pytest.approx([0.3, 0.5])
    assert table["val_acc_std"].tolist() == pytest.approx([statistics.stdev([0.2, 0.4]), 0.0])
    assert table["val_err_mean"].tolist() == pytest.approx([70.0, 50.0])


def test_paper_context_is_labelled_and_separate(tmp_path):
    # a template whose first stage is 256 wide gives Table 2's pairs: the paper's ImageNet numbers appear,
    # labelled, in their own table and CSV, never in the measured columns
    base = NetSpec(stem=Stem("cifar", 16), num_classes=10, resolution=32, stages=(
        Stage(depth=1, width=256, stride=4, block=AggregatedBlock(cardinality=1, group_width=64)),))
    p = plan(base, "cardinality", values=[1, 32])
    assert [(s.cardinality, s.group_width) for s in p.settings] == [(1, 64), (32, 4)]
    run_ablation(p, name="ctx", seeds=1, config=tiny_config(tmp_path), train_fn=seeded_train)
    out = write_ablation_report("ctx", storage=str(tmp_path / "abl.journal"), out=tmp_path / "r")
    page = (out / "index.html").read_text()
    measured, context = page.split("<h2>Context")
    assert "23.9" not in measured and "22.2" not in measured
    assert "23.9" in context and "22.2" in context and "not measured here" in context
    ctx_csv = (out / "paper-context.csv").read_text()
    assert "Table 3" in ctx_csv and "1x64d,23.9" in ctx_csv
    assert "23.9" not in (out / "ablation.csv").read_text()


def test_a_missing_ablation_study_says_to_run_it_first(tmp_path):
    with pytest.raises(ReportError, match=r"^no study 'ablation-gone' in .*; run the ablation first$"):
        write_ablation_report("gone", storage=str(tmp_path / "abl.journal"), out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("effect, direction", [(-5.0, "falls"), (5.0, "rises"), (0.02, "flat")])
def test_the_verdict_follows_a_planted_effect_against_seed_noise(effect, direction):
    """Error (points) = 30 + effect per doubling of cardinality + seed noise of about 0.5 point."""
    import numpy as np

    rng = np.random.default_rng(0)
    records = []
    for order, cardinality in enumerate((1, 2, 4, 8)):
        for seed in range(3):
            err = 30 + effect * math.log2(cardinality) + rng.normal(0, 0.5)
            records.append(T(f"{cardinality}x", cardinality - 1, seed, 1 - err / 100, "COMPLETE"))
    verdict, paired = verdict_for(ablation_rows(records), "cardinality")
    assert verdict.direction == direction, verdict.text
    assert len(paired) == 3 and ("within seed noise" in verdict.text) == (direction == "flat")


def test_a_failed_run_drops_one_row_of_the_verdict_and_one_pair_of_its_comparison():
    """The verdict fits every complete run (the seed fixed-effects regression); a comparison with the template
    pairs the seeds both settings have."""
    import numpy as np

    from nasx.stats import trend_verdict

    rng = np.random.default_rng(3)
    records, errors = [], {}
    for order, cardinality in enumerate((1, 2, 4, 8)):
        for seed in range(3):
            err = 30 - 2.0 * math.log2(cardinality) + rng.normal(0, 0.5)
            failed = (cardinality, seed) == (4, 1)
            records.append(T(f"{cardinality}x", cardinality - 1, seed, 1 - err / 100, "FAIL" if failed else "COMPLETE"))
            errors.setdefault(cardinality, []).append(math.nan if failed else err)
    verdict, paired = verdict_for(ablation_rows(records), "cardinality")
    assert (verdict.n_runs, verdict.n_seeds) == (11, 3)
    # the line's residual df is runs - seeds - 1 = 7; where the settings deviate from it, settings - 2 = 2
    assert verdict.df == {"seed fixed effects": 7, "setting random effect": 2}[verdict.model]
    want = trend_verdict(errors, setting="cardinality")
    assert (verdict.slope, verdict.low, verdict.high) == pytest.approx((want.slope, want.low, want.high))
    assert verdict.direction == "falls", verdict.text
    seeds = {row[0]: row[4] for row in paired}  # against the first setting (no template among the records)
    assert seeds == {"2x": "3", "4x": "2", "8x": "3"}


# ---------------------------------------------------------------------------------------------
# CLI


def cli_app() -> typer.Typer:
    from nasx.cli.common import OneLineErrors

    app = typer.Typer(cls=OneLineErrors)  # nasx's command group: typer's own refusals as one line
    register(app)

    @app.callback()
    def main() -> None:
        pass

    return app


def test_cli_dry_run_prints_settings_and_deviations():
    result = CliRunner().invoke(cli_app(), ["ablate", "--space", "resnext", "--base", "resnet50", "--vary", "cardinality",
                                            "--dry-run"])
    assert result.exit_code == 0, result.output
    for name, dev in zip(["1x64d", "2x40d", "4x24d", "8x14d", "32x4d"], ["+0.0%", "+0.9%", "+1.8%", "+4.5%", "+3.6%"]):
        line = next(x for x in result.output.splitlines() if x.startswith(name))
        assert line.rstrip().endswith(dev), line
    assert "25,028,904" in result.output


def test_cli_default_template_and_scale():
    result = CliRunner().invoke(cli_app(), ["ablate", "--vary", "scale", "--factor", "2", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "deeper" in result.output and "wider" in result.output and "2x the template" in result.output


@pytest.mark.parametrize("args, message", [
    (["--base", "resnet18", "--vary", "cardinality"], "bottleneck blocks"),
    (["--base", "no-such-net"], "not a zoo name"),
    (["--space", "vgg"], "no default template"),
    (["--base", "resnet50", "--values", "1,x"], "expected numbers"),
    (["--base", "resnet50", "--vary", "scale", "--factor", "0"], "--factor"),
])
def test_cli_errors_are_one_line(args, message):
    result = CliRunner().invoke(cli_app(), ["ablate", *args, "--dry-run"])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_runs_tiny_ablation(tmp_path, monkeypatch):
    import nasx.experiments.ablate as ablate

    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(tiny_template().to_yaml())
    real = ablate.run_ablation
    monkeypatch.setattr(ablate, "run_ablation", lambda *a, **k: real(*a, **{**k, "train_fn": seeded_train}))
    result = CliRunner().invoke(cli_app(), [
        "ablate", "--base", str(spec_file), "--values", "1,2", "--seeds", "2", "--dataset", "synthetic",
        "--epochs", "1", "--fraction", "0.5", "--device", "cpu", "--name", "t", "--storage",
        str(tmp_path / "t.journal"), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "6 complete" in result.output  # 1, 2 and the template's own cardinality 4
    assert (tmp_path / "rep" / "ablation.csv").is_file() and (tmp_path / "rep" / "index.html").is_file()


def test_the_cpu_template_gives_five_cardinalities_at_matched_flops():
    from nasx.experiments.ablate import CPU_CARDINALITIES, cpu_template

    p = plan(cpu_template(), "cardinality", values=list(CPU_CARDINALITIES))
    assert [s.name for s in p.settings] == ["1x11d", "2x7d", "4x4d", "8x2d", "16x1d"]
    assert all(abs(s.deviation) <= 0.05 for s in p.settings)
    assert complexity(cpu_template()).flops == 21_494_912
