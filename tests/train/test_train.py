"""nasx.train: learns (synthetic and real CIFAR-10), is bit-reproducible on CPU, stops on NaN, OOM and
pruning with the right reason, and the `nasx train` command works end to end on synthetic data."""

from __future__ import annotations

import gc
import json
import time
import weakref

import pytest
import torch
import typer
from typer.testing import CliRunner

from nasx import data
from nasx.train import trainer as train_mod
from nasx.cli.train import register
from nasx.net.fit import fit
from nasx.net.spec import Head, NetSpec, ResidualBlock, Stage, Stem
from nasx.train import Budget, BudgetError, Pruned, TrainConfig, augment, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_net(widths=(8, 16)) -> NetSpec:
    stages = tuple(Stage(1, w, ResidualBlock(kind="basic"), stride=1 if i == 0 else 2) for i, w in enumerate(widths))
    return NetSpec(stem=Stem("cifar", widths[0]), stages=stages, head=Head("linear"), num_classes=10, resolution=32)


@pytest.fixture(scope="module")
def synthetic():
    return data.load("synthetic", val_size=300, seed=0)


CPU = TrainConfig(lr=0.1, check_every=5)  # the budgets beside it train at batch 64


def test_learns_synthetic_and_reports_everything(synthetic):
    r = train(tiny_net(), synthetic, Budget(epochs=4, batch_size=64), "cpu", seed=0, config=CPU, test=True)
    assert r.reason == "completed" and r.epochs_done == 4
    assert len(r.val_acc) == 4 and len(r.train_loss) == 4 and len(r.epoch_times) == 4
    assert r.final_val_acc == r.val_acc[-1] and r.final_val_acc >= 0.8, r.val_acc  # chance is 0.1
    assert r.test_acc >= 0.75
    assert r.train_loss[-1] < r.train_loss[0]
    steps = len(synthetic.train_y) // 64
    assert r.images == 4 * steps * 64 and r.images_per_s > 0
    assert len(r.loss_curve) == 4 * -(-steps // 5)  # one point per 5 steps, plus each epoch's tail
    assert r.peak_memory_bytes is None and r.device == "cpu" and r.split_hash == synthetic.split_hash
    assert r.params == sum(p.numel() for p in __import__("nasx").build(fit(tiny_net(), synthetic.input)).parameters())
    json.dumps(r.to_dict())


def test_cpu_runs_are_bit_reproducible(synthetic):
    a = train(tiny_net(), synthetic, Budget(epochs=2, fraction=0.5, batch_size=64), "cpu", seed=7, config=CPU)
    b = train(tiny_net(), synthetic, Budget(epochs=2, fraction=0.5, batch_size=64), "cpu", seed=7, config=CPU)
    c = train(tiny_net(), synthetic, Budget(epochs=2, fraction=0.5, batch_size=64), "cpu", seed=8, config=CPU)
    assert a.loss_curve == b.loss_curve and a.val_acc == b.val_acc
    assert a.loss_curve != c.loss_curve


def test_a_proxy_names_parses_and_stores_itself():
    p = Budget(2, 0.25, resolution=24, batch_size=64)
    assert p.name == "e2-f0.25-r24-b64" and Budget.parse(p.name) == p
    assert p.to_dict() == {"epochs": 2, "fraction": 0.25, "resolution": 24, "batch_size": 64}
    assert Budget(1, 0.5).to_dict() == {"epochs": 1, "fraction": 0.5}  # the stored `budget` of earlier versions
    assert p.describe() == "2 epochs on 0.25 of the training split at 24 px, batch 64"
    with pytest.raises(BudgetError, match="smallest proxy side"):
        Budget(1, 0.5, resolution=4)


def test_the_proxy_s_side_and_batch_are_what_the_trainer_uses(synthetic):
    r = train(tiny_net(), synthetic, Budget(epochs=1, fraction=0.25, resolution=12, batch_size=32), "cpu", seed=0,
              config=TrainConfig(lr=0.1, check_every=5))
    assert r.reason == "completed" and r.split_hash == synthetic.split_hash + "@12"
    assert r.config["batch_size"] == 32 and r.images == (round(0.25 * 1700) // 32) * 32
    assert r.budget == {"epochs": 1, "fraction": 0.25, "resolution": 12, "batch_size": 32}


def test_budget_fraction_limits_the_images(synthetic):
    r = train(tiny_net(), synthetic, Budget(epochs=1, fraction=0.25, batch_size=64), "cpu", seed=0, config=CPU)
    assert r.images == (round(0.25 * 1700) // 64) * 64
    with pytest.raises(ValueError):
        Budget(epochs=0)
    with pytest.raises(ValueError):
        Budget(fraction=1.5)


def test_nan_loss_stops_the_run(synthetic):
    cfg = TrainConfig(lr=1e12, check_every=2, label_smoothing=0.0)
    r = train(tiny_net(), synthetic, Budget(epochs=5, batch_size=64), "cpu", seed=0, config=cfg)
    assert r.reason == "nan"
    assert r.epochs_done == 0 and r.val_acc == []  # stopped inside the first epoch
    assert r.images < len(synthetic.train_y)


def test_simulated_cuda_oom_stops_the_run_and_frees_the_model(synthetic, monkeypatch):
    built = []
    real_build = train_mod.build

    def build_that_runs_out_of_memory(spec):
        model = real_build(spec)
        calls = {"n": 0}

        def hook(module, inputs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")

        model.register_forward_pre_hook(hook)
        built.append(weakref.ref(model))
        return model

    monkeypatch.setattr(train_mod, "build", build_that_runs_out_of_memory)
    r = train(tiny_net(), synthetic, Budget(epochs=3, batch_size=64), "cpu", seed=0, config=CPU)
    assert r.reason == "oom" and "simulated" in r.error
    assert r.epochs_done == 0
    gc.collect()
    assert built and built[0]() is None, "the model outlived the OOM"
    # the process goes on: the next trial trains normally
    monkeypatch.setattr(train_mod, "build", real_build)
    assert train(tiny_net(), synthetic, Budget(epochs=1, fraction=0.2, batch_size=64), "cpu", seed=0, config=CPU).reason == "completed"


def test_callback_prunes_by_return_value_or_exception(synthetic):
    seen = []

    def stop_after_two(report):
        seen.append(report)
        return report.epoch == 2

    r = train(tiny_net(), synthetic, Budget(epochs=5, fraction=0.3, batch_size=64), "cpu", seed=0, callback=stop_after_two, config=CPU)
    assert r.reason == "pruned" and r.epochs_done == 2 and len(r.val_acc) == 2
    assert [s.epoch for s in seen] == [1, 2] and seen[0].epochs == 5 and seen[1].val_acc == r.val_acc[1]

    def raise_pruned(report):
        raise Pruned()

    r = train(tiny_net(), synthetic, Budget(epochs=3, fraction=0.3, batch_size=64), "cpu", seed=0, callback=raise_pruned, config=CPU,
              test=True)
    assert r.reason == "pruned" and r.epochs_done == 1 and r.test_acc is None


def test_augment_crops_and_flips_per_sample():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.int32).reshape(2, 3, 6, 6).to(torch.uint8)
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(20):
        out = augment(x, g, padding=2, flip=True)
        assert out.shape == x.shape and out.dtype == torch.uint8
        padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
        for i in range(2):
            found = [(dy, dx, f) for dy in range(5) for dx in range(5) for f in (0, 1)
                     if torch.equal(out[i], (lambda w: w.flip(2) if f else w)(padded[i, :, dy:dy + 6, dx:dx + 6]))]
            assert found, "output is not a flipped/unflipped crop of the padded input"
            seen.add(found[0])
    assert len(seen) > 10  # offsets and flips vary per sample and per call
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(augment(x, g1), augment(x, g2))


def test_cpu_defaults_and_threads_only_for_the_run(synthetic):
    """channels_last is the CPU default too (oneDNN's NHWC kernels), with a cosine schedule at peak 0.2;
    the CUDA defaults are unchanged; `threads` holds for the run only, and the caller's thread count
    comes back even when the run is stopped by an exception."""
    assert TrainConfig().resolved(torch.device("cpu"), 128).channels_last is True
    assert TrainConfig(channels_last=False).resolved(torch.device("cpu"), 128).channels_last is False
    assert (Budget().batch_for(cuda=False), Budget().batch_for(cuda=True), Budget(batch_size=64).batch_for(True)) == \
        (128, 512, 64)  # the budget owns the batch; the device gives the default
    cpu, cuda = TrainConfig().resolved(torch.device("cpu"), 128), TrainConfig().resolved(torch.device("cuda"), 512)
    assert (cpu.lr, cpu.schedule, cpu.amp) == (0.2, "cosine", False)  # short CPU proxies
    assert (cuda.lr, cuda.schedule, cuda.amp, cuda.channels_last) == (0.4, "onecycle", True, True)
    assert TrainConfig().resolved(torch.device("cpu"), 64).lr == 0.1  # the peak scales with the budget's batch
    assert TrainConfig(schedule="onecycle", lr=0.05).resolved(torch.device("cpu"), 128).schedule == "onecycle"
    with pytest.raises(ValueError, match="threads"):
        TrainConfig(threads=0)
    before = torch.get_num_threads()
    seen = []
    r = train(tiny_net(), synthetic, Budget(epochs=1, fraction=0.25, batch_size=64), "cpu", seed=0,
              config=TrainConfig(lr=0.1, threads=before + 1),
              callback=lambda rep: seen.append(torch.get_num_threads()))
    assert r.reason == "completed" and r.config["channels_last"] and r.config["threads"] == before + 1
    assert seen == [before + 1] and torch.get_num_threads() == before

    def stop(rep):
        raise Pruned()

    r = train(tiny_net(), synthetic, Budget(epochs=2, fraction=0.25, batch_size=64), "cpu", seed=0,
              config=TrainConfig(lr=0.1, threads=before + 1), callback=stop)
    assert r.reason == "pruned" and torch.get_num_threads() == before


def test_adapts_to_a_one_channel_dataset():
    gray = data.split(data.dataset.raw_from("gray", torch.randint(0, 255, (256, 1, 12, 12), dtype=torch.uint8).numpy(),
                                (torch.arange(256) % 4).numpy(), None, None, list("abcd"), "test"), 64, 0)
    r = train("resnet20", gray, Budget(epochs=1, batch_size=64), "cpu", seed=0, config=CPU)
    assert r.reason == "completed" and r.val_acc and 0 <= r.val_acc[0] <= 1


@pytest.mark.slow
def test_real_cifar10_short_cpu_training_beats_chance(cifar10, all_cores):
    """16-32-64 ResNet-8, two epochs over a 20% stratified subset (18k images), batch 128 on the CPU (2026-12-01,
    quiet 2-core machine: 41.9% validation accuracy in 37 s)."""
    net = tiny_net((16, 32, 64))
    t = time.perf_counter()
    r = train(net, cifar10, Budget(epochs=2, fraction=0.2, batch_size=128), "cpu", seed=0, config=TrainConfig(lr=0.2))
    seconds = time.perf_counter() - t
    print(f"\nreal CIFAR-10 short training: val {r.val_acc} in {seconds:.1f} s, {r.images_per_s:.0f} img/s")
    assert r.reason == "completed"
    assert r.final_val_acc >= 0.35, r.val_acc  # chance is 0.10


# ---------------------------------------------------------------------------------------------
# The `nasx train` command


@pytest.fixture
def runner():
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:  # keeps `train` a sub-command
        pass

    return app, CliRunner()


def test_cli_train_on_synthetic(runner, tmp_path):
    app, cli = runner
    out = tmp_path / "result.json"
    spec = tmp_path / "net.json"
    spec.write_text(tiny_net().to_json())
    res = cli.invoke(app, ["train", str(spec), "--dataset", "synthetic", "--epochs", "3", "--device", "cpu",
                           "--batch-size", "64", "--lr", "0.1", "--val-size", "200", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "test accuracy" in res.output and "val accuracy" in res.output
    record = json.loads(out.read_text())
    assert record["reason"] == "completed" and record["epochs_done"] == 3
    assert record["dataset"]["val"] == 200 and record["dataset"]["split_hash"] == record["split_hash"]
    assert record["test_acc"] >= 0.6 and record["config"]["batch_size"] == 64
    assert f"{100 * record['test_acc']:.2f}%" in res.output


def test_cli_train_full_data_default_reports_test_only(runner):
    app, cli = runner
    res = cli.invoke(app, ["train", "resnet20", "--dataset", "synthetic", "--epochs", "1", "--device", "cpu",
                           "--batch-size", "256"])
    assert res.exit_code == 0, res.output
    assert "test accuracy" in res.output and "val accuracy" not in res.output
    assert "2000 train, 0 val" in res.output


def test_cli_train_errors_are_one_line(runner, tmp_path):
    app, cli = runner
    res = cli.invoke(app, ["train", "resnet20", "--dataset", "cifar100", "--epochs", "1", "--data-dir", str(tmp_path)])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.startswith("nasx: error")]
    assert len(lines) == 1 and "cifar100 not found" in lines[0] and str(tmp_path) in lines[0]
    assert "Traceback" not in res.output
    res = cli.invoke(app, ["train", "not_a_net", "--dataset", "synthetic", "--epochs", "1"])
    assert res.exit_code == 2 and "not a zoo name" in res.output
    res = cli.invoke(app, ["train", "resnet20", "--dataset", "synthetic", "--epochs", "1", "--schedule", "step"])
    assert res.exit_code == 2 and "unknown schedule 'step'" in res.output and "Traceback" not in res.output


# ---------------------------------------------------------------------------------------------
# CUDA only (the device session): the GPU path learns, reports memory, and survives a real OOM

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_cuda_path_learns_with_bf16_and_channels_last(synthetic):
    r = train(tiny_net(), synthetic, Budget(epochs=4, batch_size=64), "cuda", seed=0, config=TrainConfig(lr=0.1), test=True)
    assert r.reason == "completed" and r.config["amp"] is True and r.config["channels_last"] is True
    assert r.final_val_acc >= 0.8 and r.peak_memory_bytes > 0
    again = train(tiny_net(), synthetic, Budget(epochs=4, batch_size=64), "cuda", seed=0, config=TrainConfig(lr=0.1))
    assert abs(again.final_val_acc - r.final_val_acc) <= 0.05  # reproducible within noise


@cuda
def test_cuda_real_oom_is_caught_and_memory_freed(synthetic):
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    # 1.8 GB of parameters (fine on the host), but each activation of a 1600 x 2048 x 64 x 64 batch is 27 GB
    huge = NetSpec(stem=Stem("cifar", 2048), stages=(Stage(6, 2048, ResidualBlock(kind="basic")),), head=Head("linear"))
    big_images = data.load("synthetic:64", val_size=100)
    r = train(huge, big_images, Budget(epochs=1, batch_size=1600), "cuda", seed=0, config=TrainConfig())
    assert r.reason == "oom", r.error
    assert torch.cuda.memory_allocated() - before < 64 * 2**20
    assert train(tiny_net(), synthetic, Budget(epochs=1), "cuda", seed=0).reason == "completed"


def test_a_continued_run_equals_one_trained_straight_through(synthetic):
    """Continuation: a rung's pre-decay state, trained on to the top budget, gives the run trained straight
    through to it (same seed, same data order): the same losses, accuracy and weights, bit for bit on CPU."""
    from nasx.train.trainer import CheckpointMismatch, Continuation

    top, low, each = Budget(2, 0.25, batch_size=64), Budget(1, 0.125, batch_size=64), TrainConfig(lr=0.1, check_every=1)
    straight = train(tiny_net(), synthetic, top, "cpu", seed=3, config=each, continuation=Continuation(top))
    rung = train(tiny_net(), synthetic, low, "cpu", seed=3, config=each, continuation=Continuation(top))
    on = train(tiny_net(), synthetic, top, "cpu", seed=3, config=each, continuation=Continuation(top, state=rung.pre_decay))
    steps = 2 * (round(0.25 * len(synthetic.train_y)) // 64)
    assert rung.pre_decay["step"] == round(steps / 4) - round(0.2 * round(steps / 4)) and on.resumed_at == \
        rung.pre_decay["step"] and straight.resumed_at is None and straight.pre_decay["step"] == steps - round(0.2 * steps)
    assert on.val_acc == straight.val_acc and on.loss_curve == straight.loss_curve[on.resumed_at:]  # every step's loss
    assert rung.loss_curve[:on.resumed_at] == straight.loss_curve[:on.resumed_at]  # the rung is the top's prefix
    assert on.train_loss[0] != straight.train_loss[0]  # the continued run's mean is over its own steps only
    assert all(torch.equal(a, b) for a, b in zip(on.pre_decay["model"].values(), straight.pre_decay["model"].values()))
    assert rung.val_acc != straight.val_acc and "pre_decay" not in straight.to_dict()
    with pytest.raises(CheckpointMismatch, match="seed 3, top e2-f0.25-b64: this run is net .*, seed 4"):
        train(tiny_net(), synthetic, top, "cpu", seed=4, config=each, continuation=Continuation(top, state=rung.pre_decay))
