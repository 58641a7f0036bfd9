"""The trial record: the one owner of the stored keys, its round trip, old studies, and the one fit of a net
to its data (a 1-channel dataset at another resolution, through the real trainer, stored = trained = exported)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from typer.testing import CliRunner

import nasx
from nasx.net.complexity import complexity
from nasx.study import record
from nasx.study.record import Outcome, RecordError, StudyInfo, TrialRecord
from nasx.train.budget import Budget
from nasx.study import StudyConfig, open_storage, run_study
from nasx.train import Trainer, train

from conftest import FASHION_DIR

NASX = Path(nasx.__file__).resolve().parent


def test_only_the_record_module_touches_user_attributes():
    """A grep of the library for the ways Optuna's user attributes are read or written: record.py only."""
    offenders = []
    for path in sorted(NASX.rglob("*.py")):
        if path.name == "record.py" and path.parent == NASX / "study":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("user_attrs", "set_user_attr", "set_trial_user_attr"):
                offenders.append(f"{path.relative_to(NASX)}:{node.lineno} .{node.attr}")
    assert not offenders, offenders


def frozen(state=TrialState.COMPLETE, **attrs):
    return optuna.trial.create_trial(state=state, values=[0.5, 100] if state == TrialState.COMPLETE else None,
                                     params={"x": 0.25}, distributions={"x": FloatDistribution(0, 1)}, user_attrs=attrs)


def test_a_record_round_trips_through_user_attributes():
    spec = nasx.zoo.get("resnet20")
    rec = TrialRecord.of(3, "COMPLETE", spec=spec.to_dict(), spec_id=spec.id, flops=1, curve=(0.1, 0.2), seed=4,
                      tags={"setting": "32x4d"}, candidate_key="k")
    back = TrialRecord.from_trial(frozen(**rec.to_attrs()))
    assert back.outcome.curve == (0.1, 0.2) and back.tags == {"setting": "32x4d"} and back.net == spec
    assert {k: v for k, v in back.to_attrs().items()} == rec.to_attrs()
    assert back.choices == {"x": 0.25} and back.values == (0.5, 100)


def test_records_written_by_the_earlier_version_load():
    """The stored keys of studies written before the record module existed (same names, tag_ prefix)."""
    old = {"spec": nasx.zoo.get("resnet20").to_dict(), "spec_id": "abc", "flops": 5, "params": 6, "acts": 7,
           "description": "d", "curve": [0.1], "train_loss": [2.0], "val_acc": 0.1, "wall_time": 1.0,
           "images_per_s": 2.0, "epochs_run": 1, "reason": "completed", "peak_memory_bytes": None, "seed": 0,
           "dataset": "cifar10", "split_hash": "h", "device": "cpu:x", "versions": {"nasx": "0.1.0"}, "worker": 0,
           "budget": {"epochs": 1, "fraction": 0.02}, "heartbeat": 1.0, "tag_setting": "1x64d"}
    rec = TrialRecord.from_trial(frozen(**old))
    assert rec.outcome.val_acc == 0.1 and rec.tags == {"setting": "1x64d"} and rec.budget["fraction"] == 0.02
    info = StudyInfo.from_attrs({"space": "resnext", "dataset": "cifar10", "epochs": 1, "fraction": 0.02,
                                 "objectives": ["accuracy", "flops"], "val_size": 1000, "seed": 0})
    assert info.space_hash is None and info.differences(info) == []


class _Live:
    """A live trial's one write method, as the worker uses it."""

    def __init__(self):
        self.user_attrs: dict = {}

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value


def test_an_outcome_is_stored_flat_under_the_keys_of_earlier_versions_and_read_back_whole():
    """One Outcome written in one call: the same keys and values the worker wrote field by field before."""
    rec_fields = {f.name for f in dataclasses.fields(TrialRecord)}
    assert not rec_fields & {f.name for f in dataclasses.fields(Outcome)}  # one owner: the record holds one Outcome
    outcome = Outcome(curve=(0.25, 0.5), train_loss=(2.0, 1.5), val_acc=0.5, wall_time=3.5, images_per_s=120.0,
                      epochs_run=2, reason="completed", peak_memory_bytes=2048, trained_spec_id="abc")
    live = _Live()
    record.write_outcome(live, outcome, duplicate_of=7)
    assert live.user_attrs == {"curve": [0.25, 0.5], "train_loss": [2.0, 1.5], "val_acc": 0.5, "wall_time": 3.5,
                               "images_per_s": 120.0, "epochs_run": 2, "reason": "completed",
                               "peak_memory_bytes": 2048, "trained_spec_id": "abc", "duplicate_of": 7}
    back = TrialRecord.from_trial(frozen(**live.user_attrs, spec_id="abc", seed=0))
    assert back.outcome == outcome and back.duplicate_of == 7 and back.spec_id == "abc"
    assert TrialRecord(0, "WAITING").outcome == Outcome()
    assert TrialRecord.of(3, "COMPLETE", val_acc=0.5, seed=1) == TrialRecord(3, "COMPLETE", seed=1,
                                                                            outcome=Outcome(val_acc=0.5))
    row = back.row(["val_acc", "spec_id", "duplicate_of"])  # a table's columns: the outcome's beside the record's
    assert {k: row[k] for k in ("val_acc", "spec_id", "duplicate_of")} == {"val_acc": 0.5, "spec_id": "abc",
                                                                          "duplicate_of": 7}


def test_a_retry_copies_the_record_whole_but_what_the_lost_run_wrote():
    spec = nasx.zoo.get("resnet20")
    lost = TrialRecord.of(5, "RUNNING", spec=spec.to_dict(), spec_id=spec.id, flops=9, seed=3, dataset="cifar10",
                       budget={"epochs": 2, "fraction": 0.1}, candidate=spec.to_dict(), candidate_key="k",
                       tags={"setting": "a"}, retries=1, retry_of=2, curve=(0.1,), reason="interrupted",
                       fail_reason="lost", owner="h:1", process="p", heartbeat=1.0, worker=0, device="cpu:x",
                       progress={"epoch": 1}, versions={"nasx": "x"})
    attrs = lost.retry_attrs()
    assert attrs == {"spec": spec.to_dict(), "spec_id": spec.id, "flops": 9, "seed": 3, "dataset": "cifar10",
                     "budget": {"epochs": 2, "fraction": 0.1}, "candidate": spec.to_dict(), "candidate_key": "k",
                     "tag_setting": "a", "retries": 2, "retry_of": 5}
    retry = TrialRecord.from_trial(frozen(TrialState.WAITING, **attrs))
    assert retry.outcome == Outcome() and retry.owner is None and retry.tags == {"setting": "a"}
    assert TrialRecord(4, "RUNNING").retry_attrs() == {"retry_of": 4, "retries": 1}


def test_a_study_info_that_kept_the_corner_in_its_proxy_loads_as_the_space_s_corner():
    """Studies written when the corner was stored with the proxy (batch size, resolution) still resume: the corner
    is read as the space's, the budget as one Budget, and the info compares equal to the one a study of the same
    settings makes now."""
    base = {"space": "resnext", "dataset": "cifar10", "epochs": 1, "fraction": 0.5, "objectives": ["accuracy", "flops"],
            "val_size": 2000, "seed": 0, "space_hash": "h"}
    old = StudyInfo.from_attrs({**base, "proxy": {"batch_size": 128, "corner": "cpu", "resolution": 24}})
    now = StudyInfo("resnext", "cifar10", Budget(1, 0.5, resolution=24, batch_size=128), ("accuracy", "flops"), 2000,
                    0, "h", corner="cpu")
    assert old == now and old.differences(now) == []
    assert StudyInfo.from_attrs(now.to_attrs()) == now and now.to_attrs()["corner"] == "cpu"
    assert now.to_attrs()["budget"] == {"epochs": 1, "fraction": 0.5, "resolution": 24, "batch_size": 128}
    whole = StudyInfo.from_attrs({**base, "proxy": {"batch_size": 128}})
    assert whole.corner is None and [d[0] for d in whole.differences(now)] == ["budget", "corner"]
    assert StudyInfo.from_attrs({"space": "resnext"}).budget is None  # an early study without epochs: no budget


def test_an_unknown_key_is_one_line_that_says_what_to_do():
    with pytest.raises(RecordError, match="holds colour, which this version of nasx does not know; upgrade"):
        TrialRecord.from_trial(frozen(colour="red"))


def test_fakes_follow_the_trainers_signature():
    """The contract: every stand-in the study tests pass as train_fn has `train`'s parameters (a Trainer)."""
    import importlib.util

    import study_fakes

    def module(path: str):
        """A test module by its path under tests/ (each folder is its own import root)."""
        spec = importlib.util.spec_from_file_location(Path(path).stem, Path(__file__).resolve().parents[1] / path)
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded

    test_ablate, test_report, test_study = (module(p) for p in ("experiments/test_ablate.py", "report/test_report.py",
                                                                 "study/test_study.py"))

    def shape(fn):
        return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values()]

    want = shape(train)
    assert want == [(n, k) for n, k in shape(Trainer.__call__)[1:]]
    fakes = [study_fakes.curve_train, study_fakes.slow_train, study_fakes.sleepy_train, study_fakes.hang_once_train,
             study_fakes.faulty_train, study_fakes.rung_train, study_fakes.slow_rung_train, study_fakes.continue_train,
             study_fakes.slow_continue_train, test_study.interrupting_train, test_report.nan_train, test_ablate.seeded_train]
    for fake in fakes:
        assert shape(fake)[:len(want)] == want, fake.__name__
        assert all(p.default is not inspect.Parameter.empty for p in list(inspect.signature(fake).parameters.values())[len(want):])


@pytest.mark.slow
def test_a_fashion_mnist_study_stores_counts_and_exports_the_net_it_trained(tmp_path, monkeypatch):
    """fashion-mnist is 28x28x1; the resnet space is written for 32x32x3. The one fit makes the stored spec,
    its id, its FLOPs, the module the real trainer built and the exported file the same 1-channel net."""
    if not FASHION_DIR.is_dir():
        pytest.skip(f"no Fashion-MNIST at {FASHION_DIR}")
    monkeypatch.chdir(tmp_path)
    cfg = StudyConfig(space="resnet", dataset="fashion-mnist", data_dir=str(FASHION_DIR), trials=1,
                      budget=Budget(1, 0.01), val_size=500, flops=(2_000_000, 6_000_000), device="cpu", sampler="random",
                      storage=str(tmp_path / "f.journal"), study="fm")
    summary = run_study(cfg)
    assert summary.snapshot.complete == 1
    study = optuna.load_study(study_name="fm", storage=open_storage(cfg.storage_url))
    rec = next(r for r in map(TrialRecord.from_trial, study.get_trials()) if r.state == "COMPLETE")
    spec = rec.net
    assert (spec.in_channels, spec.resolution, spec.num_classes) == (1, 28, 10)
    cx = complexity(spec)
    assert rec.spec_id == spec.id == rec.outcome.trained_spec_id
    assert (rec.flops, rec.params, rec.acts) == (cx.flops, cx.params, cx.acts)
    assert 2_000_000 <= rec.flops <= 6_000_000
    from nasx.cli.app import app

    res = CliRunner().invoke(app, ["export", "fm", "--best", "--out", str(tmp_path / "net.yaml"), "--storage",
                                   cfg.storage_url])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["count", str(tmp_path / "net.yaml"), "--format", "json"])
    counted = json.loads(res.stdout)
    assert (counted["id"], counted["flops"], counted["params"]) == (rec.spec_id, rec.flops, rec.params)
    res = CliRunner().invoke(app, ["report", "fm", "--storage", cfg.storage_url, "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    row = __import__("pandas").read_csv(tmp_path / "r" / "trials.csv").query("state == 'COMPLETE'").iloc[0]
    assert (row["spec_id"], int(row["flops"])) == (rec.spec_id, rec.flops)


def test_study_info_carries_a_schema_and_one_upgrade_reads_the_versions_before_it():
    """The stored info names its schema; an info stored before the key (schema 0: the corner in the proxy, fields
    the earliest studies lacked) reads as the current schema stores it, and a newer schema is one line."""
    from nasx.study.record import SCHEMA, upgrade

    now = StudyInfo("resnext", "cifar10", Budget(1, 0.5, batch_size=128), ("accuracy", "flops"), 2000, 0, "h", "cpu")
    stored = now.to_attrs()
    assert stored["schema"] == SCHEMA == 3 and stored["rungs"] == [] and stored["eta"] is None
    assert stored["continuation"] is False and stored["budget"] == {"epochs": 1, "fraction": 0.5, "batch_size": 128}
    assert StudyInfo.from_attrs(stored) == now
    zero = {"space": "resnext", "dataset": "cifar10", "epochs": 1, "fraction": 0.5, "objectives": ["accuracy", "flops"],
            "val_size": 2000, "seed": 0, "space_hash": "h", "proxy": {"batch_size": 128, "corner": "cpu"}}
    assert upgrade(zero) == stored
    assert StudyInfo.from_attrs(zero) == now and now.differences(StudyInfo.from_attrs(zero)) == []
    bare = StudyInfo.from_attrs({"space": "resnext"})
    assert (bare.dataset, bare.objectives, bare.seed, bare.budget, bare.schema) == ("?", ("accuracy", "flops"), 0,
                                                                                   None, SCHEMA)
    two = {k: v for k, v in stored.items() if k != "budget"} | {"schema": 2, "epochs": 1, "fraction": 0.5,
                                                                 "proxy": {"batch_size": 128}}  # budget in pieces
    one = {k: v for k, v in two.items() if k != "continuation"} | {"schema": 1}  # before continuation was stored
    assert upgrade(two) == upgrade(one) == stored and StudyInfo.from_attrs(one) == now
    with pytest.raises(RecordError, match=r"^the study was written by a newer nasx \(study info schema 4; this "
                                          r"version reads up to 3\); upgrade nasx$"):
        StudyInfo.from_attrs({**stored, "schema": 4})
    with pytest.raises(RecordError, match="not a version nasx wrote"):
        upgrade({**stored, "schema": "1"})
