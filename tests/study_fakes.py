"""Stand-ins for nasx.train.train in study tests: deterministic learning curves, no training.

Importable by name so that spawned worker processes can use them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time

from nasx.net.complexity import complexity
from nasx.net.fit import fit
from nasx.train import TrainResult


def final_accuracy(spec) -> float:
    """A smooth function of the spec: more FLOPs help, the spec's hash adds architecture 'luck'."""
    luck = int(hashlib.sha256(spec.id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return 0.3 + 0.04 * math.log10(complexity(spec).flops) + 0.25 * luck


def curve_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                progress=None, continuation=None,
                sleep=0.0):
    """Curves acc_e = final * (1 - 0.5^e) / (1 - 0.5^E): the order of nets never changes between epochs."""
    spec = fit(spec, dataset.input)  # what the real trainer builds
    final = final_accuracy(spec)
    accs, reason = [], "completed"
    for epoch in range(1, budget.epochs + 1):
        time.sleep(sleep)
        acc = final * (1 - 0.5 ** epoch) / (1 - 0.5 ** budget.epochs)
        accs.append(acc)
        report = type("Report", (), {"epoch": epoch, "epochs": budget.epochs, "val_acc": acc, "train_loss": 1.0,
                                     "elapsed": 0.0, "images_per_s": 1000.0})()
        if callback is not None and callback(report):
            reason = "pruned"
            break
    return TrainResult(reason=reason, epochs_done=len(accs), val_acc=accs, train_loss=[1.0] * len(accs),
                       loss_curve=[], final_val_acc=accs[-1], test_acc=None, wall_time=0.01, train_time=0.01,
                       images=100, images_per_s=1000.0, epoch_times=[], epoch_images_per_s=[],
                       peak_memory_bytes=None, device="cpu", seed=seed, spec_id=spec.id, params=0, split_hash="x")


def slow_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
               progress=None, continuation=None):
    """The curve trainer, 0.2 s an epoch: long enough for workers to overlap."""
    return curve_train(spec, dataset, budget, device, seed, callback, config=config, sleep=0.2)


def sleepy_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                 progress=None, continuation=None):
    """The curve trainer, 6 s an epoch: a worker busy in one long trial."""
    return curve_train(spec, dataset, budget, device, seed, callback, config=config, sleep=6.0)


def hang_once_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                    progress=None, continuation=None):
    """Hangs (until killed) on the first trial of the process whose marker file is named by NASX_TEST_HANG."""
    marker = os.environ.get("NASX_TEST_HANG")
    if marker and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(3600)
    return curve_train(spec, dataset, budget, device, seed, callback, config=config)


def faulty_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                 progress=None, continuation=None):
    """NaN for some nets, CUDA OOM for others, by the spec's hash."""
    bucket = int(spec.id[:2], 16) % 4
    if bucket in (0, 1):
        result = curve_train(spec, dataset, budget, device, seed, callback, config=config)
        result.reason = "nan" if bucket == 0 else "oom"
        result.error = "simulated"
        return result
    return curve_train(spec, dataset, budget, device, seed, callback, config=config)


def rung_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
               progress=None, continuation=None,
               sleep=0.0):
    """The curve trainer whose final accuracy depends on the budget: a smaller share of the training split costs
    accuracy and adds noise fixed by (net, share), so a low rung orders nets only roughly."""
    result = curve_train(spec, dataset, budget, device, seed, callback, config=config, sleep=sleep)
    noise = int(hashlib.sha256(f"{result.spec_id}:{budget.fraction}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    final = result.final_val_acc - 0.2 * (1 - budget.fraction) + 0.1 * (1 - budget.fraction) * (noise - 0.5)
    return dataclasses.replace(result, val_acc=[*result.val_acc[:-1], final], final_val_acc=final)


def slow_rung_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                    progress=None, continuation=None):
    """The rung trainer, 0.2 s an epoch: workers overlap."""
    return rung_train(spec, dataset, budget, device, seed, callback, config=config, sleep=0.2)


def continue_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                   progress=None, continuation=None, sleep=0.0):
    """The rung trainer that also follows the trainer's continuation contract: with a Continuation it returns a
    small pre-decay state (at its share of 100 top-budget steps, less a fifth for the decay) naming its net, seed
    and top budget, and checks a state it is given as the real trainer does (CheckpointMismatch)."""
    import torch

    from nasx.train.trainer import CheckpointMismatch

    result = rung_train(spec, dataset, budget, device, seed, callback, config=config, sleep=sleep)
    if continuation is None:
        return result
    top = continuation.top
    total = round(100 * budget.cost() / top.cost())
    trunk = total - max(1, round(0.2 * total))
    saved = continuation.state
    if saved is not None:
        if (saved["spec_id"], saved["seed"], saved["top"]) != (result.spec_id, seed, top.name) \
                or not 0 < saved["step"] <= trunk:
            raise CheckpointMismatch(f"checkpoint of net {saved['spec_id']}, step {saved['step']}: not this run's")
        result.resumed_at = saved["step"]
    result.pre_decay = {"model": {"weight": torch.full((4,), float(trunk))}, "optimizer": {"state": {}},
                        "generator": torch.zeros(8, dtype=torch.uint8), "order": torch.arange(4), "step": trunk,
                        "spec_id": result.spec_id, "seed": seed, "top": top.name}
    return result


def slow_continue_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                        progress=None, continuation=None):
    """The continuing rung trainer, 0.2 s an epoch: workers overlap."""
    return continue_train(spec, dataset, budget, device, seed, callback, config=config, continuation=continuation,
                          sleep=0.2)


def hang_on_promotion_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False,
                            progress=None, continuation=None):
    """The continuing rung trainer that hangs (until killed) in the first promotion that trains on from a checkpoint,
    in the process whose marker file NASX_TEST_HANG names."""
    marker = os.environ.get("NASX_TEST_HANG")
    if continuation is not None and continuation.state is not None and marker and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(3600)
    return continue_train(spec, dataset, budget, device, seed, callback, config=config, continuation=continuation)
