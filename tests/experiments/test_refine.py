"""nasx.experiments.refine and `nasx refine`: planted structure is found and kept, no-effect restrictions are rejected, the
refined file is a space that loads and samples in band, rounds run as resumable fixed studies, and nothing reads
the test split."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nasx.cli.app import app
from nasx.study.record import TrialRecord
from nasx.experiments.refine import MIN_NETS, RefineError, RefineOptions, refine, run_refine, space_mapping
from nasx.report import write_refine_report
from nasx.space import load_space, parse_space
from nasx.space.edit import candidates
from nasx.space.sampling import in_band_share, sample
from nasx.study import Candidate, StudyConfig, run_study
from nasx.study.store import open_study
from nasx.train.budget import Budget
from nasx.train import TrainResult

from study_fakes import curve_train

# Aggregated nets whose file does NOT tie the widths (nor the depths): the planted structure must be found
PLANTED = """\
name: planted
input: {resolution: 32, channels: 3, classes: 10}
constraints: {flops: [5M, 20M]}
stem: {kind: cifar, width: 16}
head: {kind: linear}
stages:
  count: {int: [2, 3]}
  depth: {int: [1, 3]}
  width: {log_int: [16, 256]}
  branch: aggregated
  stride: {per_stage: [1, 2]}
  aggregated:
    cardinality: {power_of_two: [1, 4]}
    bottleneck_ratio: {choice: [0.5, 1]}
    shortcut: projection
ties: {cardinality: same, bottleneck_ratio: same}
"""
BAND = (5_000_000, 20_000_000)


def luck(spec) -> float:
    """Noise in [0, 1) from the spec's id: independent of every structural choice."""
    return int(hashlib.sha256(spec.id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def widths_non_decreasing(spec) -> bool:
    widths = [s.width for s in spec.stages]
    return all(a <= b for a, b in zip(widths, widths[1:]))


def planted_width(spec) -> float:
    """Validation accuracy that depends only on whether the stage widths are non-decreasing (plus noise)."""
    return (0.7 if widths_non_decreasing(spec) else 0.5) + 0.1 * luck(spec)


def planted_depth(spec) -> float:
    """... only on whether every stage has at least 2 blocks."""
    return (0.7 if min(s.depth for s in spec.stages) >= 2 else 0.5) + 0.1 * luck(spec)


def no_effect(spec) -> float:
    return 0.5 + 0.2 * luck(spec)


@pytest.fixture(scope="module")
def planted_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "planted.yaml"
    path.write_text(PLANTED)
    return path


@pytest.fixture(scope="module")
def drawn(planted_file):
    return sample(load_space(planted_file), np.random.default_rng(0), 80, flops=BAND)


def records(drawn, accuracy, test_acc=None) -> list[TrialRecord]:
    return [TrialRecord.of(i, "COMPLETE", spec=s.spec.to_dict(), spec_id=s.spec.id, flops=s.complexity.flops,
                        val_acc=accuracy(s.spec), test_acc=None if test_acc is None else test_acc(s.spec))
            for i, s in enumerate(drawn)]


def kept(refinement) -> list[str]:
    return [e.restriction.text for e in refinement.kept]


# ---------------------------------------------------------------------------------------------
# refine(): pure, on synthetic records with planted errors


def test_planted_width_order_is_found_kept_and_written(planted_file, drawn, tmp_path):
    data, _ = space_mapping(planted_file)
    assert "width" not in data["ties"]
    r = refine(records(drawn, planted_width), data, source="planted")
    assert kept(r) == ["ties.width: non_decreasing"]
    e = r.kept[0]
    assert e.step == 1 and e.better and e.ks == pytest.approx(1.0) and e.p_value <= e.threshold < 0.05
    assert e.satisfy == sum(widths_non_decreasing(s.spec) for s in drawn) and e.nets == 80
    assert e.removed == pytest.approx(1 - e.satisfy / 80) and e.mean_diff < -15
    assert e.in_band is not None and e.in_band >= 0.5
    # restrictions with no effect are tested and rejected: in step 1 (before the tie) and in step 2 (after it)
    for step in (1, 2):
        depth = next(x for x in r.evaluations if x.step == step and x.restriction.text == "ties.depth: non_decreasing")
        assert depth.tested and not depth.kept and depth.verdict != "kept"
    assert r.steps == 2 and not any(x.kept for x in r.final_step())
    assert all(x.nets == e.satisfy for x in r.final_step())  # step 2 judges only the nets that satisfy the tie
    # the refined file: the input's mapping with the one tie added, a header with the evidence, loadable
    assert r.refined["ties"] == {**data["ties"], "width": "non_decreasing"}
    assert {k: v for k, v in r.refined.items() if k != "ties"} == {k: v for k, v in data.items() if k != "ties"}
    path = r.write(tmp_path / "refined.yaml")
    text = path.read_text()
    assert "# kept restrictions, in order:" in text and "1. ties.width: non_decreasing" in text
    assert re.search(r"error -\d+\.\d\d points vs the rest at the same FLOPs \(t -\d+\.\d\d, one-sided p 0\.0000\d <= "
                     r"0\.000\d\d, 99\.9% Monte Carlo interval 0\.00000\.\.0\.000\d\d, \d+ within-bin permutations\), "
                     r"KS 1\.000", text)
    assert "test split never read" in text
    loaded = load_space(path)
    assert loaded.tied("width") == "non_decreasing"
    assert yaml.safe_load(text) == r.refined  # round trip through YAML ...
    assert loaded.content_hash == parse_space(r.refined, "x").content_hash  # ... and through the space parser
    again = tmp_path / "again.yaml"  # and a file written from the loaded mapping is the same space
    again.write_text(yaml.safe_dump(loaded.data, sort_keys=False))
    assert load_space(again).content_hash == loaded.content_hash
    # it samples in band, and every sample satisfies the kept restriction
    assert in_band_share(loaded, BAND) >= 0.5
    run = sample(loaded, np.random.default_rng(1), 30, flops=BAND)
    assert run.acceptance >= 0.5 and all(widths_non_decreasing(s.spec) for s in run)


def test_planted_depth_cut_is_found_and_nothing_else(planted_file, drawn):
    data, _ = space_mapping(planted_file)
    r = refine(records(drawn, planted_depth), data, source="planted")
    assert kept(r) == ["stages.depth: 1..3 -> 2..3 (lower cut)"]
    assert r.refined["stages"]["depth"] == {"int": [2, 3]}
    assert r.in_band >= 0.5


def test_no_effect_keeps_nothing_and_the_space_is_unchanged(planted_file, drawn):
    data, _ = space_mapping(planted_file)
    r = refine(records(drawn, no_effect), data, source="planted")
    assert kept(r) == [] and r.steps == 1
    tested = [e for e in r.evaluations if e.tested]
    assert len(tested) >= 8 and all(not e.kept for e in r.evaluations)
    assert r.refined == data
    assert "no restriction kept" in r.yaml()


def test_a_dropped_branch_takes_its_section_with_it(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(PLANTED.replace("branch: aggregated", "branch: {choice: [aggregated, residual]}")
                    .replace("    shortcut: projection\n", "    shortcut: projection\n  residual:\n"
                             "    kind: {choice: [basic, bottleneck]}\n"))
    drawn = sample(load_space(path), np.random.default_rng(0), 60, flops=BAND)
    has_residual = lambda spec: any(s.block.branch == "residual" for s in spec.stages)  # noqa: E731
    data, _ = space_mapping(path)
    r = refine(records(drawn, lambda s: (0.5 if has_residual(s) else 0.7) + 0.1 * luck(s)), data, source="mixed")
    assert kept(r) == ["stages.branch: drop residual"]
    assert r.refined["stages"]["branch"] == "aggregated" and "residual" not in r.refined["stages"]
    assert load_space(r.write(tmp_path / "out.yaml")).branches() == ("aggregated",)


def test_the_test_split_is_never_read(planted_file, drawn):
    data, _ = space_mapping(planted_file)
    plain = refine(records(drawn, planted_width), data, source="planted")
    # a test accuracy that says the opposite changes nothing
    misleading = refine(records(drawn, planted_width, test_acc=lambda s: 1.0 - planted_width(s)), data,
                        source="planted")
    assert [e.row() for e in misleading.evaluations] == [e.row() for e in plain.evaluations]
    for module in ("experiments/refine.py", "report/refine.py", "space/edit.py", "stats/edf.py"):
        assert "test_acc" not in (Path(__file__).parents[2] / "nasx" / module).read_text()


def test_too_few_nets_and_foreign_nets_are_one_line_errors(planted_file, drawn):
    data, _ = space_mapping(planted_file)
    with pytest.raises(RefineError, match=f"at least {MIN_NETS} complete nets"):
        refine(records(drawn[:MIN_NETS - 1], no_effect), data, source="planted")
    pending = [TrialRecord(i, "WAITING") for i in range(5)]
    with pytest.raises(RefineError, match="5 not complete"):
        refine(pending + records(drawn[:3], no_effect), data, source="planted")
    other, _ = space_mapping("resnext", "cpu")  # nets of another space are not judged against it
    with pytest.raises(RefineError, match=r"not members of the space\).*first: trial 0"):
        refine(records(drawn[:20], no_effect), other, source="resnext (corner cpu)")
    with pytest.raises(RefineError, match="correction"):
        RefineOptions(correction="holm").check()


def test_candidates_come_from_the_file():
    data, space = space_mapping("resnext", "cpu")
    assert "corners" not in data and space.content_hash == load_space("resnext").corner("cpu").content_hash
    got = {c.text: c for c in candidates(data, space, [])}
    # width, cardinality and bottleneck ratio are tied in the file already: only the depth ties are candidates
    assert [t for t in got if t.startswith("ties.")] == ["ties.depth: non_decreasing", "ties.depth: same"]
    drops = sorted(t for t in got if "drop" in t)
    assert drops == [f"stages.aggregated.bottleneck_ratio: drop {v}" for v in (0.5, 1, 2)]
    for c in got.values():
        parse_space(c.data, "candidate")  # every edit is a valid space
    assert got["stages.aggregated.bottleneck_ratio: drop 2"].data["stages"]["aggregated"]["bottleneck_ratio"] == \
        {"choice": [0.5, 1]}


# ---------------------------------------------------------------------------------------------
# run_refine(): rounds as fixed studies, with a trainer that plants the structure


class Planted:
    """A trainer with nasx.train.train's signature whose accuracy is planted_width (or `accuracy`); it records its
    calls."""

    def __init__(self, interrupt_at: int | None = None, accuracy=None):
        self.calls: list[tuple[str, bool]] = []
        self.interrupt_at = interrupt_at
        self.accuracy = accuracy or planted_width

    def __call__(self, spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                 progress=None):
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        self.calls.append((spec.id, test))
        r = curve_train(spec, dataset, budget, device, seed, callback, config=config)
        acc = self.accuracy(spec)
        return TrainResult(**{**r.__dict__, "val_acc": [acc], "final_val_acc": acc, "test_acc": None})


def tiny(tmp_path) -> StudyConfig:
    return StudyConfig(dataset="synthetic", budget=Budget(1, 0.5), device="cpu", workers=1,
                       storage=str(tmp_path / "refine.journal"), flops=(1_000_000, 5_000_000))


@pytest.mark.slow
def test_two_rounds_end_to_end_then_resume_trains_nothing(planted_file, tmp_path):
    trainer = Planted()
    out = tmp_path / "out"
    run = run_refine(str(planted_file), name="p", config=tiny(tmp_path), samples=16, rounds=2, out=out,
                     train_fn=trainer)
    assert not run.interrupted and [r.study for r in run.rounds] == ["refine-p-r1", "refine-p-r2"]
    assert len(trainer.calls) == 32 and len({c[0] for c in trainer.calls}) == 32
    assert not any(test for _, test in trainer.calls)  # the studies never evaluate the test split
    first, second = run.rounds
    assert kept(first.refinement) == ["ties.width: non_decreasing"]
    assert first.file == out / "round-2.yaml" and second.space == str(out / "round-2.yaml")
    # round 1 kept a restriction: round 2's space differs, and its refinement judges its own nets only
    assert [r.judged for r in run.rounds] == [((1, "refine-p-r1", 16),), ((2, "refine-p-r2", 16),)]
    assert not second.pooled and second.refinement.nets == 16 and second.judged_text() == "round 2's own 16 nets"
    # round 2 sampled the refined space: every net of it satisfies the kept tie
    stored = open_study("refine-p-r2", run.storage)
    recs, info = stored.records, stored.info
    assert stored.band == (1_000_000, 5_000_000)
    assert info.space == str(out / "round-2.yaml") and info.corner is None
    done = [r for r in recs if r.state == "COMPLETE"]
    assert len(done) == 16 and all(widths_non_decreasing(r.net) for r in done)
    assert all(r.outcome.test_acc is None for r in done) and all(r.tags["round"] == 2 for r in done)
    refined = load_space(run.refined)
    assert refined.content_hash == load_space(out / "round-3.yaml").content_hash
    # the file holds the band and the input the nets were trained at: it samples in band with its own defaults
    assert refined.flops == (1_000_000, 5_000_000) and refined.resolution == 16
    assert in_band_share(refined, refined.flops) >= 0.5 and sample(refined, 0, 10).acceptance >= 0.5

    folder = write_refine_report(run, command="nasx refine ...")
    page = (folder / "index.html").read_text()
    assert "A \u2192 B" in page and "refined.yaml" in page and "ties.width: non_decreasing" in page
    assert (folder / "edf_rounds.png").read_bytes()[:4] == b"\x89PNG" and (folder / "round-1-kept.png").is_file()
    csv_text = (folder / "candidates.csv").read_text()
    assert csv_text.count("\n") == 1 + len(first.refinement.evaluations) + len(second.refinement.evaluations)
    assert csv_text.startswith("round,study,judged_rounds,judged_nets,step,")

    again = Planted()
    rerun = run_refine(str(planted_file), name="p", config=tiny(tmp_path), samples=16, rounds=2, out=out,
                       train_fn=again)
    assert again.calls == [] and [len(r.records) for r in rerun.rounds] == [16, 16]
    assert [kept(r.refinement) for r in rerun.rounds] == [kept(r.refinement) for r in run.rounds]


@pytest.mark.slow
def test_an_interrupted_round_resumes_where_it_stopped(planted_file, tmp_path):
    stopped = Planted(interrupt_at=5)
    run = run_refine(str(planted_file), name="i", config=tiny(tmp_path), samples=12, out=tmp_path / "o",
                     train_fn=stopped)
    assert run.interrupted and run.rounds == [] and not (tmp_path / "o" / "round-2.yaml").exists()
    rest = Planted()
    run = run_refine(str(planted_file), name="i", config=tiny(tmp_path), samples=12, out=tmp_path / "o",
                     train_fn=rest)
    assert not run.interrupted and len(rest.calls) == 12 - 5
    assert not {c[0] for c in rest.calls} & {c[0] for c in stopped.calls}


def weak_width(spec) -> float:
    """planted_width's effect, weak against the noise: 16 nets cannot keep it at round 1's level, 32 can at round 2's."""
    return 0.5 + 0.035 * widths_non_decreasing(spec) + 0.1 * luck(spec)


@pytest.fixture(scope="module")
def weak(planted_file, tmp_path_factory):
    """Two rounds of 16 nets with the weak effect: round 1 keeps nothing, so round 2 samples the same space again."""
    folder = tmp_path_factory.mktemp("weak")
    trainer, notes = Planted(accuracy=weak_width), []
    run = run_refine(str(planted_file), name="w", config=tiny(folder), samples=16, rounds=2, out=folder / "out",
                     train_fn=trainer, on_note=notes.append)
    return folder, run, trainer, notes


def test_a_round_that_keeps_nothing_is_sampled_again_and_judged_pooled(weak, planted_file):
    folder, run, trainer, notes = weak
    assert not run.interrupted and [r.study for r in run.rounds] == ["refine-w-r1", "refine-w-r2"]
    first, second = run.rounds
    # round 1: too few nets for the weak effect (tested, not significant under Bonferroni)
    assert kept(first.refinement) == [] and first.judged == ((1, "refine-w-r1", 16),)
    width = next(e for e in first.refinement.evaluations if e.restriction.text == "ties.width: non_decreasing")
    assert width.tested and width.verdict.startswith("not significant")
    # round 2 trained 16 new nets of the same space (round 1's content, only the name differs), drawn with its seed
    assert len(trainer.calls) == 32 and len({c[0] for c in trainer.calls}) == 32
    assert second.space == str(folder / "out" / "round-2.yaml")
    assert {**second.refinement.data, "name": None} == {**first.refinement.data, "name": None}
    drawn2 = sample(load_space(second.space), np.random.default_rng([0, 2]), 16, flops=(1_000_000, 5_000_000))
    assert {r.net.id for r in second.records if r.state == "COMPLETE"} == {s.spec.id for s in drawn2}
    assert all(r.tags["round"] == 2 for r in second.records)
    # judged on both samples: 32 nets, and the pooled evidence keeps what neither sample kept alone
    assert second.pooled and second.judged == ((1, "refine-w-r1", 16), (2, "refine-w-r2", 16))
    assert second.refinement.nets == 32 and len(second.errors) == 16 and len(first.errors) == 16
    assert kept(second.refinement) == ["ties.width: non_decreasing"]
    assert kept(refine(second.records, second.refinement.data, source="r2 alone", band=run.band, look=2)) == []
    text = "rounds 1-2 pooled: 32 nets of the same space (16 of refine-w-r1, 16 of refine-w-r2)"
    assert second.judged_text() == text
    # stderr says so; the files' headers record the evidence
    assert any("round 2 samples it again and judges rounds 1-2 pooled" in n for n in notes)
    assert any(n.startswith("round 2: 16 nets of") and "(the space of round 1 again)" in n for n in notes)
    assert any(n.startswith(f"round 2: judged on {text}; 1 restriction(s) kept") for n in notes)
    for path in (folder / "out" / "round-3.yaml", run.refined):
        header = path.read_text()
        assert f"# judged on {text}\n" in header and "# from " in header and ": 32 trained nets" in header
    assert "refined from rounds 1-2 pooled (studies refine-w-r1, refine-w-r2)" in \
        (folder / "out" / "round-3.yaml").read_text()
    assert "# judged on round 1's own 16 nets\n" in (folder / "out" / "round-2.yaml").read_text()
    # the page and the CSV say which nets each round judged; the EDF figure draws each round's own sample
    page = (write_refine_report(run) / "index.html").read_text()
    assert "Round 1: space A \u2192 A (unchanged)" in page and "Round 2: space A \u2192 B" in page
    assert f"Judged on {text}" in page and "Judged on round 1&#x27;s own 16 nets" in page
    with open(folder / "out" / "candidates.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["round"], r["judged_rounds"], r["judged_nets"]) for r in rows} == {("1", "1", "16"), ("2", "1 2", "32")}
    # the same command again trains nothing and decides the same
    again = Planted(accuracy=weak_width)
    rerun = run_refine(str(planted_file), name="w", config=tiny(folder), samples=16, rounds=2, out=folder / "out",
                       train_fn=again)
    assert again.calls == [] and [r.judged for r in rerun.rounds] == [r.judged for r in run.rounds]
    assert [kept(r.refinement) for r in rerun.rounds] == [[], ["ties.width: non_decreasing"]]


def test_after_a_pooled_round_keeps_a_restriction_the_next_judges_its_own_nets(weak, planted_file):
    folder, run, first_trainer, _ = weak  # (after the test above: this adds round 3 to its studies and files)
    trainer = Planted(accuracy=weak_width)
    more = run_refine(str(planted_file), name="w", config=tiny(folder), samples=16, rounds=3, out=folder / "out",
                      train_fn=trainer)
    # rounds 1 and 2 are resumed, not retrained: only round 3's 16 nets are trained
    assert len(trainer.calls) == 16 and not {c[0] for c in trainer.calls} & {c[0] for c in first_trainer.calls}
    assert [kept(r.refinement) for r in more.rounds[:2]] == [kept(r.refinement) for r in run.rounds]
    third = more.rounds[2]
    assert third.space == str(folder / "out" / "round-3.yaml") and not third.pooled
    assert third.judged == ((3, "refine-w-r3", 16),) and third.refinement.nets == 16
    assert all(widths_non_decreasing(r.net) for r in third.records)


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    """A round 1 made by hand, as the real example was: resnext's cpu corner, 8 nets (32x32 synthetic); and a study
    of 3 nets, too few to refine."""
    folder = tmp_path_factory.mktemp("handmade")
    storage = str(folder / "refine-hand.journal")
    space = load_space("resnext").corner("cpu")
    from nasx import data as nasx_data

    shape = nasx_data.input_shape("synthetic:32")
    run = sample(space.at(shape), np.random.default_rng(0), MIN_NETS, flops=(10_000_000, 30_000_000))
    cfg = StudyConfig(space="resnext", corner="cpu", dataset="synthetic:32", budget=Budget(1, 0.25, batch_size=128),
                      val_size=200, flops=(10_000_000, 30_000_000), study="refine-hand-r1", storage=storage,
                      workers=1, seed=0, sampler="random", device="cpu")
    run_study(cfg, candidates=[Candidate(s.spec, seed=0, tags={"round": 1}) for s in run], train_fn=Planted())
    few = dataclasses.replace(cfg, study="few")
    run_study(few, candidates=[Candidate(s.spec, seed=0) for s in run[:3]], train_fn=Planted())
    return folder, storage


def test_a_handmade_round_one_is_resumed_not_retrained(handmade):
    folder, storage = handmade
    trainer = Planted()
    cfg = StudyConfig(dataset="synthetic:32", budget=Budget(1, 0.25, batch_size=128), val_size=200,
                      flops=(10_000_000, 30_000_000), storage=storage, seed=0, device="cpu")
    run = run_refine("resnext", corner="cpu", name="hand", config=cfg, samples=MIN_NETS, out=folder / "out",
                     train_fn=trainer)
    assert trainer.calls == [] and run.rounds[0].study == "refine-hand-r1"
    assert run.rounds[0].refinement.nets == MIN_NETS
    assert load_space(run.refined).corners == {}  # the corner is flattened into a standalone space


# ---------------------------------------------------------------------------------------------
# The command


def test_later_rounds_of_a_stored_study_train_on_its_whole_proxy_side_included():
    """A study refined as round 1 hands its budget on whole: a proxy at 24 px stays at 24 px (with the batch given)."""
    from nasx.experiments.refine import _from_study

    journal = str(Path(__file__).resolve().parents[2] / "reports" / "examples" / "fidelity-resnext-cpu" /
                  "fidelity-resnext-cpu.journal")
    given = StudyConfig(storage=journal, budget=Budget.given(batch_size=64))
    _, cfg, space, _ = _from_study("fidelity-resnext-cpu-e1-f0.125-r24", given, None, None)
    assert (cfg.budget, cfg.dataset, space) == (Budget(1, 0.125, resolution=24, batch_size=64), "cifar10", "resnext")


def test_cli_refines_an_existing_study(handmade):
    folder, storage = handmade
    result = CliRunner().invoke(app, ["refine", "--study", "refine-hand-r1", "--storage", storage,
                                      "--out", str(folder / "cli")])
    assert result.exit_code == 0, result.output
    assert "refined space:" in result.output and (folder / "cli" / "index.html").is_file()
    assert load_space(folder / "cli" / "refined.yaml").name == "refine-hand-r1-r2"


@pytest.mark.parametrize("args, message", [
    ([], "give --space"),
    (["--study", "nope", "--storage", "{tmp}/none.journal"], "unknown study 'nope'"),
    (["--space", "resnext", "--flops", "30M:10M"], "--flops"),
    (["--space", "resnext", "--corner", "gpu"], "no corner 'gpu'"),
    (["--space", "no-such-space"], "no such space"),
    (["--study", "refine-hand-r1", "--epochs", "3"], "leave out --epochs"),
    (["--space", "resnext", "--alpha", "2"], "alpha"),
])
def test_cli_bad_input_is_one_line(args, message, tmp_path):
    result = CliRunner().invoke(app, ["refine", *[a.replace("{tmp}", str(tmp_path)) for a in args]])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_too_few_complete_nets(handmade):
    folder, storage = handmade
    result = CliRunner().invoke(app, ["refine", "--study", "few", "--storage", storage, "--out", str(folder / "o")])
    assert result.exit_code == 2 and "at least 8 complete nets" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_rule_space_is_refused_in_one_line():
    from nasx.experiments.refine import RefineError, space_mapping

    with pytest.raises(RefineError, match="laid out by the RegNet rule"):
        space_mapping("regnet")


def test_check_seeds_says_whether_the_decisions_hold_under_other_permutation_seeds(planted_file, tmp_path):
    run = run_refine(str(planted_file), name="c", config=tiny(tmp_path), samples=16, rounds=1, out=tmp_path / "out",
                     train_fn=Planted(), check_seeds=3)
    assert any(n.startswith("round 1: the same decisions") and "seeds 0-2" in n for n in run.notes)
    page = (write_refine_report(run) / "index.html").read_text()
    assert "under permutation seeds 0-2" in page and "family-wise error rate" in page
    assert "nets left out (one-sided FLOPs bins)" in page and "effective sizes" in page
