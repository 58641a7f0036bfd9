"""Reports: every figure and table from a small study, the CSVs, export, edf, and clear errors."""

from __future__ import annotations

import json
import re

import optuna
import pandas as pd
import pytest
import typer
from optuna.trial import TrialState
from typer.testing import CliRunner

import nasx
from nasx.cli.report import register
from nasx.report import pareto_table, write_report
from nasx.net.spec import load_spec
from nasx.study import StudyConfig, StudyError, open_storage, run_study
from nasx.study.record import Shelf
from nasx.train.budget import Budget
from study_fakes import curve_train, final_accuracy

TINY = dict(dataset="synthetic", space="resnet", flops=(1_000_000, 4_000_000), budget=Budget(3, 0.5),
            device="cpu", sampler="random", heartbeat=0.5)
FIGURES = ("accuracy_vs_flops", "accuracy_vs_params", "accuracy_vs_throughput", "error_edf", "importance-small",
           "error_vs_params-small", "pareto_curves", "hv_vs_compute-small")


def nan_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
              progress=None, continuation=None):
    """Every net diverges."""
    result = curve_train(spec, dataset, budget, device, seed, callback, config=config)
    result.reason, result.error = "nan", "loss is nan"
    return result


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """A small study, an all-failed one and an empty one, in one journal; and the small one's report."""
    root = tmp_path_factory.mktemp("report")
    storage = str(root / "s.journal")
    run_study(StudyConfig(**TINY, storage=storage, study="small", trials=8), train_fn=curve_train)
    run_study(StudyConfig(**TINY, storage=storage, study="broken", trials=2, max_trials=2), train_fn=nan_train)
    optuna.create_study(study_name="empty", storage=open_storage(storage), directions=["maximize", "minimize"])
    index = write_report(["small"], Shelf(storage), out=root / "out")
    return root, storage, index


def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def test_report_has_every_figure_and_table(studies):
    root, storage, index = studies
    out = index.parent
    assert index == root / "out" / "index.html"
    page = index.read_text()
    for stem in FIGURES:  # each figure written once, as the SVG the page shows
        svg = out / f"{stem}.svg"
        assert svg.stat().st_size > 10_000 and svg.read_text()[:200].lstrip().startswith("<?xml"), stem
        assert f"src='{stem}.svg'" in page and not (out / f"{stem}.png").exists()
    for heading in ("Pareto-optimal architectures", "Zoo references", "Studies"):
        assert heading in page
    assert "resnet20" in page and "not measured" in page  # zoo nets at the study's input, no accuracy invented
    assert storage.split("/")[-1] in page
    zoo = pd.read_csv(out / "zoo.csv")
    assert {"resnet20", "resnet110", "resnext29_8x64d"} <= set(zoo["name"]) and zoo["val_acc"].isna().all()
    # resnet20 at the synthetic set's 16 x 16 input: about a quarter of its 32 x 32 FLOPs
    r20 = int(zoo.loc[zoo["name"] == "resnet20", "flops"].iloc[0])
    assert r20 == nasx.complexity(nasx.zoo.get("resnet20").replace(resolution=16, num_classes=10)).flops


def test_report_formats_writes_each_figure_once_per_format_and_shows_the_first(studies, tmp_path):
    root, storage, _ = studies
    out = tmp_path / "both"
    result = CliRunner().invoke(app(), ["report", "small", "--storage", storage, "--out", str(out),
                                        "--formats", "png,svg"])
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    written = sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".svg"))
    assert written == sorted(f"{stem}.{fmt}" for stem in FIGURES for fmt in ("png", "svg"))
    for stem in FIGURES:
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert (out / f"{stem}.svg").read_text()[:200].lstrip().startswith("<?xml"), stem
        assert f"src='{stem}.png'" in page and f"(<a href='{stem}.svg'>SVG</a>)" in page, stem
    for formats, message in (("gif", "'gif': give one or more of svg, png"), ("svg,svg", "a format given twice"),
                             ("", "none given")):
        bad = CliRunner().invoke(app(), ["report", "small", "--storage", storage, "--out", str(tmp_path / "x"),
                                         "--formats", formats])
        assert bad.exit_code == 2 and message in bad.output and len(bad.output.strip().splitlines()) == 1
        assert not (tmp_path / "x").exists()


def test_trials_csv_has_one_row_per_trial_and_the_right_columns(studies):
    root, storage, index = studies
    df = pd.read_csv(index.parent / "trials.csv")
    trials = optuna.load_study(study_name="small", storage=open_storage(storage)).get_trials()
    assert len(df) == len(trials) and sorted(df["number"]) == [t.number for t in trials]
    for col in ("state", "spec_id", "params", "flops", "acts", "val_acc", "epochs_run", "wall_time", "images_per_s",
                "curve", "pareto"):
        assert col in df.columns, col
    sampled = {f"param_{k}" for t in trials for k in t.params}
    assert sampled and sampled <= set(df.columns)
    complete = df[df["state"] == "COMPLETE"]
    assert len(complete) == 8
    by_number = {t.number: t for t in trials}
    for _, row in complete.iterrows():
        t = by_number[int(row["number"])]
        assert row["val_acc"] == pytest.approx(t.values[0])
        assert row["flops"] == t.user_attrs["flops"] and row["params"] == t.user_attrs["params"]
        assert row["val_acc"] == pytest.approx(final_accuracy(nasx.NetSpec.from_dict(t.user_attrs["spec"])))
        assert json.loads(row["curve"])[-1] == pytest.approx(row["val_acc"], abs=1e-6)
        for name, value in t.params.items():
            assert str(row[f"param_{name}"]) == str(value) or row[f"param_{name}"] == pytest.approx(value)


def test_pareto_csv_is_the_front_with_commands(studies):
    root, storage, index = studies
    df = pd.read_csv(index.parent / "trials.csv")
    front = pd.read_csv(index.parent / "pareto.csv")
    done = df[df["state"] == "COMPLETE"]
    # brute force: no other complete trial is at least as accurate with no more FLOPs and better in one
    expected = {int(r.number) for r in done.itertuples()
                if not any((o.val_acc >= r.val_acc and o.flops <= r.flops) and (o.val_acc > r.val_acc or o.flops < r.flops)
                           for o in done.itertuples())}
    assert set(front["trial"]) == expected and len(front) >= 2
    assert list(front["flops"]) == sorted(front["flops"]) and list(front["val_acc"]) == sorted(front["val_acc"])
    for r in front.itertuples():
        assert r.command.startswith(f"nasx export small --trial {r.trial} --out net.yaml")
        assert "nasx train net.yaml --dataset synthetic --epochs 3" in r.command
        assert r.description in index.read_text()


def test_pareto_table_drops_duplicate_architectures_and_keeps_ties():
    rows = [("COMPLETE", 0, "a", 0.7, 10), ("COMPLETE", 1, "a", 0.7, 10), ("COMPLETE", 2, "b", 0.7, 10),
            ("COMPLETE", 3, "c", 0.6, 12), ("COMPLETE", 4, "d", 0.9, 30), ("PRUNED", 5, "e", None, 1)]
    df = pd.DataFrame(rows, columns=["state", "number", "spec_id", "val_acc", "flops"])
    assert list(pareto_table(df)["number"]) == [0, 2, 4]  # 1 repeats net a; 2 ties with a but is another net


def test_export_by_trial_and_best_round_trips(studies, tmp_path):
    root, storage, index = studies
    runner = CliRunner()
    trials = optuna.load_study(study_name="small", storage=open_storage(storage)).get_trials(states=(TrialState.COMPLETE,))
    t = trials[0]
    res = runner.invoke(app(), ["export", "small", "--trial", str(t.number), "--out", str(tmp_path / "net.yaml"),
                                "--storage", storage])
    assert res.exit_code == 0, res.output
    spec = load_spec(tmp_path / "net.yaml")
    assert spec.id == t.user_attrs["spec_id"] and nasx.complexity(spec).flops == t.user_attrs["flops"]
    best = max(trials, key=lambda x: (x.values[0], -x.values[1]))
    res = runner.invoke(app(), ["export", "small", "--best", "--out", str(tmp_path / "best.json"), "--storage", storage])
    assert res.exit_code == 0, res.output
    assert load_spec(tmp_path / "best.json").id == best.user_attrs["spec_id"]
    cap = sorted(x.values[1] for x in trials)[1]  # only the two cheapest qualify
    under = max((x for x in trials if x.values[1] <= cap), key=lambda x: x.values[0])
    res = runner.invoke(app(), ["export", "small", "--best", "--max-flops", str(int(cap)), "--out",
                                str(tmp_path / "cheap.yml"), "--storage", storage])
    assert res.exit_code == 0, res.output
    assert load_spec(tmp_path / "cheap.yml").id == under.user_attrs["spec_id"]
    res = runner.invoke(app(), ["export", "small", "--best", "--max-flops", "10", "--out", str(tmp_path / "x.yaml"),
                                "--storage", storage])
    assert res.exit_code == 2 and "no complete trial under 10 FLOPs" in res.output
    res = runner.invoke(app(), ["export", "small", "--trial", "999", "--out", str(tmp_path / "x.yaml"), "--storage", storage])
    assert res.exit_code == 2 and "no trial 999" in res.output


def _one_point_study(storage: str) -> None:
    """Three seeds of one net: every complete trial at the same FLOPs."""
    from nasx.study import Candidate

    spec = nasx.zoo.get("resnet20")
    run_study(StudyConfig(**TINY, storage=storage, study="point"),
              candidates=[Candidate(spec, seed=k) for k in range(3)], train_fn=curve_train)


def _running_study(storage: str) -> None:
    """Two complete trials and one left running by a worker that is gone."""
    run_study(StudyConfig(**TINY, storage=storage, study="running", trials=2), train_fn=curve_train)
    optuna.load_study(study_name="running", storage=open_storage(storage)).ask()


def _mixed_studies(storage: str) -> None:
    """Two studies on different datasets (and inputs), reported together."""
    run_study(StudyConfig(**{**TINY, "dataset": "synthetic:24"}, storage=storage, study="other", trials=3),
              train_fn=curve_train)


@pytest.mark.parametrize("names, notes", [
    (["empty"], ["Study empty has no trials yet"]),
    (["one"], ["Study one has one complete trial"]),
    (["broken"], ["Study broken has no complete trial yet", "first failure: nan: loss is nan"]),
    (["running"], ["Study running has 1 trial(s) still running"]),
    (["small", "other"], ["These studies use different datasets (synthetic, synthetic:24)"]),
    (["point"], []),
])
def test_a_report_is_written_for_a_study_in_any_state(studies, tmp_path, names, notes):
    """Empty, one trial, only failed, still running, mixed datasets, one point: a page, never a crash."""
    root, storage, index = studies
    builders = {"one": lambda: run_study(StudyConfig(**TINY, storage=storage, study="one", trials=1),
                                         train_fn=curve_train),
                "running": lambda: _running_study(storage), "other": lambda: _mixed_studies(storage),
                "point": lambda: _one_point_study(storage)}
    for name in names:
        if name in builders and not (root / f".built-{name}").exists():
            builders[name]()
            (root / f".built-{name}").touch()
    res = CliRunner().invoke(app(), ["report", *names, "--storage", storage, "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "r" / "index.html").read_text()
    for note in notes:
        assert note in page, note
    for name in ("trials.csv", "pareto.csv", "zoo.csv"):
        assert (tmp_path / "r" / name).is_file()
    assert "Not drawn:" not in page  # every figure was drawn or left out with its reason, none crashed


def test_unknown_studies_are_one_line_errors(studies, tmp_path):
    root, storage, index = studies
    res = CliRunner().invoke(app(), ["report", "nosuch", "--storage", storage, "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "unknown study 'nosuch'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r" / "index.html").exists()
    with pytest.raises(StudyError, match=r"unknown study 'x': no storage at .*x\.journal"):
        write_report(["x"], Shelf(folder=tmp_path))
    assert not (tmp_path / "x.journal").exists()  # looking must not create a journal


def test_password_never_reaches_the_page_or_the_error(tmp_path):
    res = CliRunner().invoke(app(), ["report", "s", "--storage", "sqlite:///" + str(tmp_path / "nope.db"),
                                     "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = CliRunner().invoke(app(), ["report", "s", "--storage", "postgresql://me:hunter2@127.0.0.1:1/db"])
    assert res.exit_code == 2 and "hunter2" not in res.output and "***" in res.output


def test_edf_command_trains_each_space_once_and_reports_both(tmp_path, monkeypatch):
    import nasx.train.trainer

    monkeypatch.setattr(nasx.train.trainer, "train", curve_train)  # the worker imports it at run time
    monkeypatch.chdir(tmp_path)
    args = ["edf", "--space", "resnet", "--space", "resnext", "-n", "4", "--flops", "1M:4M", "--epochs", "2",
            "--dataset", "synthetic", "--fraction", "0.5", "--device", "cpu", "--out", str(tmp_path / "edf")]
    res = CliRunner().invoke(app(), args)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "edf" / "trials.csv")
    assert df.groupby("study")["state"].apply(lambda s: (s == "COMPLETE").sum()).tolist() == [4, 4]
    assert set(df["study"]) == {"edf-resnet-synthetic-1000000-4000000-e2-n4-s0",
                                "edf-resnext-synthetic-1000000-4000000-e2-n4-s0"}
    assert re.search(r"KS=\d\.\d{3} vs edf-resnet", (tmp_path / "edf" / "error_edf.svg").read_text())
    res = CliRunner().invoke(app(), args)  # resumable: nothing left to train
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "edf" / "trials.csv")) == 8


