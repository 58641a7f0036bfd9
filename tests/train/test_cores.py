"""The cores of a CPU used well: the default study's split into concurrent trials x threads per trial, its note,
worker processes that run with the threads they were given, and a study of two CPU workers that ends exactly."""

from __future__ import annotations

import os

import optuna
import pytest

from nasx.study import StudyConfig, explore, open_storage, run_study
from nasx.study import config as study_config
from nasx.study.config import CPU_DEFAULT, cpu_cores, resolve
from nasx.train.budget import Budget
from study_fakes import curve_train


def threads_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                  progress=None):
    """The curve trainer, reporting the worker process's torch thread count as its images/s."""
    import torch

    result = curve_train(spec, dataset, budget, device, seed, callback, config=config)
    result.images_per_s = float(torch.get_num_threads())
    return result


@pytest.fixture
def cores(monkeypatch):
    """Pretend the process may run on N cores (its affinity mask)."""
    def set_cores(n: int) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)
    return set_cores


@pytest.mark.parametrize("n, workers, threads", [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1)])
def test_the_cpu_default_runs_one_one_thread_trial_per_core(cores, n, workers, threads):
    cores(n)
    cfg, notes = resolve(StudyConfig(), cuda=False, gpus=0)
    assert (cfg.workers, cfg.threads) == (workers, threads)
    assert cfg.trials == CPU_DEFAULT["trials"] * workers  # the timeout, not the count, ends it
    assert cfg.timeout == CPU_DEFAULT["timeout"] and cfg.max_trials == 3 * cfg.trials + 10
    [note] = notes
    if workers > 1:
        assert f"on {n} cores: {workers} trials at a time with 1 thread each" in note
        assert f"one with {n} threads; --workers 1 for that" in note
    else:
        assert "on 1 core: one trial at a time with 1 thread" in note
    assert f"up to {cfg.trials} trials of 1 epoch on 50% of the training split" in note


def test_cpu_cores_is_the_affinity_mask_else_the_machine(cores, monkeypatch):
    cores(3)
    assert cpu_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert cpu_cores() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert cpu_cores() == 1


def test_given_workers_share_the_cores_and_sized_or_fixed_studies_run_one_at_a_time(cores):
    cores(8)
    one, notes = resolve(StudyConfig(workers=1), cuda=False, gpus=0)  # today's default, on request
    assert (one.workers, one.threads, one.trials) == (1, 8, CPU_DEFAULT["trials"])
    assert "one trial at a time with 8 threads, up to 10 trials" in notes[0]
    three, _ = resolve(StudyConfig(workers=3), cuda=False, gpus=0)
    assert (three.workers, three.threads, three.trials) == (3, 2, 30)
    sized, notes = resolve(StudyConfig(trials=5), cuda=False, gpus=0)
    assert (sized.workers, sized.threads, sized.trials, notes) == (1, 8, 5, [])
    fixed, _ = resolve(StudyConfig(fixed=True), cuda=False, gpus=0)
    assert (fixed.workers, fixed.threads) == (1, 8)
    chosen, _ = resolve(StudyConfig(workers=2, threads=3), cuda=False, gpus=0)
    assert (chosen.workers, chosen.threads) == (2, 3)
    gpu, _ = resolve(StudyConfig(), cuda=True, gpus=2)
    assert (gpu.workers, gpu.threads) == (2, None)  # GPU workers keep torch's own thread count


def test_threads_must_be_a_whole_number():
    with pytest.raises(study_config.StudyError, match="threads"):
        StudyConfig(threads=0).check()


TINY = dict(dataset="synthetic", space="resnet", flops=(1_000_000, 4_000_000), budget=Budget(1, 0.5),
            device="cpu", sampler="random", heartbeat=0.5)


def test_a_worker_process_trains_with_the_threads_it_was_given(tmp_path):
    # 3 threads: neither torch's default on a 2-core machine nor the 1 of OMP_NUM_THREADS=1
    cfg = StudyConfig(**TINY, trials=2, workers=2, threads=3, storage=str(tmp_path / "t.journal"))
    summary = run_study(cfg, train_fn=threads_train)
    assert summary.snapshot.complete == 2
    study = optuna.load_study(study_name=cfg.name, storage=open_storage(cfg.storage_url))
    assert [t.user_attrs["images_per_s"] for t in study.get_trials() if t.state.name == "COMPLETE"] == [3.0, 3.0]


@pytest.mark.heavy  # CI time: test_a_worker_process_trains_with_the_threads_it_was_given and tests/study/test_workers.py
def test_an_explore_of_two_cpu_workers_completes_exactly_n_trials(tmp_path):
    cfg = StudyConfig(dataset="synthetic", space="resnext", trials=4, budget=Budget(1, 0.25), workers=2,
                      device="cpu", sampler="random", storage=str(tmp_path / "x.journal"), heartbeat=1.0)
    done = explore(cfg, references=False)  # the real trainer, one thread in each of the two worker processes
    assert done.study.config.threads == max(1, cpu_cores() // 2)
    assert done.study.snapshot.complete == 4 and not done.interrupted
    trials = optuna.load_study(study_name=cfg.name, storage=open_storage(cfg.storage_url)).get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4 and not any(t.state.name == "RUNNING" for t in trials)
    assert {t.user_attrs["worker"] for t in complete} == {0, 1}  # both processes trained
    assert all(0.0 <= t.values[0] <= 1.0 and t.user_attrs["images_per_s"] > 0 for t in complete)
