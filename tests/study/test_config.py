"""A study's budget is one `Budget` (StudyConfig.budget): partial where the user gave only some parts, filled for the
machine by `resolve`; study files give it as `budget:` or by its parts; the stored config holds Budget.to_dict()."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import nasx.study
from nasx.cli.app import app
from nasx.study import StudyConfig, StudyError, load_config, resolve
from nasx.study.config import BUDGET_KEYS, CPU_BUDGET
from nasx.train.budget import Budget, Ladder


@pytest.fixture(autouse=True)
def two_cores(monkeypatch):
    monkeypatch.setattr(nasx.study.config, "cpu_cores", lambda: 2)


@pytest.mark.parametrize("given, cuda, whole", [
    (None, False, Budget(1, 0.5, batch_size=128)),  # the CPU default study
    (Budget(None, None, resolution=24), False, Budget(1, 0.5, resolution=24, batch_size=128)),
    (Budget(2, None), False, Budget(2, 0.5)),  # sized by the user: the trainer's batch
    (Budget(None, 0.25, batch_size=64), False, Budget(1, 0.25, batch_size=64)),
    (None, True, Budget(5, 1.0)),
    (Budget(None, 0.5, resolution=24), True, Budget(5, 0.5, resolution=24)),
    (Budget(3, None, batch_size=256), True, Budget(3, 1.0, batch_size=256)),
])
def test_resolve_fills_the_parts_of_a_partial_budget_the_user_left_out(given, cuda, whole):
    cfg, _ = resolve(StudyConfig(budget=given, device="cpu"), cuda=cuda, gpus=1)
    assert cfg.budget == whole and cfg.budget.whole and cfg.budgets == (whole,)
    assert cfg.to_dict()["budget"] == whole.to_dict() and not set(BUDGET_KEYS) & set(cfg.to_dict())


def test_resolve_takes_the_top_rung_as_the_budget_with_the_study_s_batch():
    ladder = Ladder.parse("e1-f0.125,e1-f0.5-r24")
    cfg, _ = resolve(StudyConfig(rungs=ladder, budget=Budget.given(batch_size=64), device="cpu"), cuda=True, gpus=1)
    assert cfg.budget == Budget(1, 0.5, resolution=24, batch_size=64) and cfg.rungs.names == \
        "e1-f0.125-b64,e1-f0.5-r24-b64"
    with pytest.raises(StudyError, match="the top rung e1-f0.5-r24 is the study's budget; leave out epochs"):
        StudyConfig(rungs=ladder, budget=Budget(2, None)).check()


def test_an_unresolved_budget_is_refused_where_a_whole_one_is_needed():
    with pytest.raises(StudyError, match=r"^budget e\?-f0\.5: epochs and fraction are not chosen yet"):
        StudyConfig(budget=Budget(None, 0.5)).budgets
    with pytest.raises(StudyError, match=r"^budget: 'e1-f0\.5' must be a nasx\.train\.budget\.Budget"):
        StudyConfig(budget="e1-f0.5").check()


@pytest.mark.parametrize("text", [
    "epochs: 2\nfraction: 0.25\nresolution: 24\nbatch_size: 64\n",  # users' files: the parts
    "budget: e2-f0.25-r24-b64\n",
    "budget: {epochs: 2, fraction: 0.25, resolution: 24, batch_size: 64}\n",  # the stored form
])
def test_a_study_file_gives_the_budget_by_its_parts_or_as_one_key(text, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("dataset: synthetic\n" + text)
    assert load_config(path).budget == Budget(2, 0.25, resolution=24, batch_size=64)
    assert load_config(path, budget=Budget.given(epochs=3)).budget == Budget(3, 0.25, resolution=24, batch_size=64)


def test_a_study_file_with_some_parts_leaves_the_rest_to_the_machine_and_both_forms_are_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("dataset: synthetic\nfraction: 0.25\n")
    assert load_config(path).budget == Budget(None, 0.25)
    path.write_text("dataset: synthetic\nbudget: e1-f0.5\nfraction: 0.25\n")
    with pytest.raises(StudyError, match=r"s\.yaml: budget: give it as budget: e1-f0\.5 or by its parts \(fraction\)"):
        load_config(path)
    path.write_text("dataset: synthetic\nbudget: {epochs: 1, batch: 2}\n")
    with pytest.raises(StudyError, match=r"s\.yaml: budget: batch: unknown part \(known: epochs, fraction"):
        load_config(path)
    path.write_text("dataset: synthetic\nepoch: 1\n")
    with pytest.raises(StudyError, match=r"unknown setting \(known: .*batch_size, budget, .*epochs, .*fraction"):
        load_config(path)


def test_the_budget_flags_and_the_proxy_flag_build_the_same_budget(tmp_path, monkeypatch):
    seen = []

    def stop(cfg, **_):
        seen.append(cfg.budget)
        raise StudyError("stopped before any work")

    monkeypatch.setattr(nasx.study, "explore", stop)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    base = ["explore", "--dataset", "synthetic", "--no-report"]
    (tmp_path / "s.yaml").write_text("dataset: synthetic\nepochs: 1\nfraction: 0.25\nbatch_size: 32\n")
    for args in (["--proxy", "e2-f0.25-r16-b64"],
                 ["--epochs", "2", "--fraction", "0.25", "--resolution", "16", "--batch-size", "64"],
                 ["--config", "s.yaml", "--epochs", "2", "--resolution", "16", "--batch-size", "64"],
                 ["--config", "s.yaml", "--proxy", "e2-f0.25-r16-b64"],
                 ["--epochs", "2"], ["--config", "s.yaml", "--proxy", "e2-f0.25-r16"], []):
        result = runner.invoke(app, base + args)
        assert result.exit_code == 2 and "stopped before any work" in result.output, result.output
    assert seen == [Budget(2, 0.25, 16, 64)] * 4 + [Budget(2, None), Budget(2, 0.25, 16, 32), None]
    assert CPU_BUDGET == Budget(1, 0.5, batch_size=128)
