"""The proxy trainer: a spec and a dataset in, per-epoch validation accuracy and a stop reason out.

One code path for both devices. The dataset lives on the device as uint8; each batch is indexed,
augmented there (random crop with zero padding, horizontal flip), converted to float and normalized
with the training split's per-channel mean/std. On CUDA: bf16 autocast, channels_last, cudnn
autotuning, fused SGD; on CPU: fp32, channels_last (oneDNN's NHWC kernels: 1.2x for ResNet-20,
2-2.5x for grouped convs on a 2-core CPU), inference_mode for evaluation, and `threads` to pin the
intra-op thread count for the run (the caller's value is restored). SGD with Nesterov momentum,
label smoothing, a one-cycle (linear warm-up, linear decay; the CUDA default) or cosine (linear
warm-up, cosine decay; the CPU default) schedule per step.
torch.compile is off by default: on the GPU box it cost 50-85 s per net and gained nothing for runs
this short. The loss is accumulated on the device; the host reads it once per `check_every` steps
(to stop on NaN/inf) and once per epoch, so steps do not wait on the GPU.

Continuation (`Continuation`, opt-in: a study's --continue): a budget trained as a prefix of a top budget's run
(warm-up, constant rate, a decay branch off the trunk), its pre-decay state returned so that a later run trains on
from it to a larger budget and equals the run trained straight through (same seed, same data order).

Stops: `completed`; `nan` (non-finite training loss); `oom` (torch.cuda.OutOfMemoryError; model and
optimizer are dropped and the CUDA cache emptied so the process can go on); `pruned` (the per-epoch
callback returned a true value or raised `Pruned`). Knows nothing of Optuna; never prints.
"""

from __future__ import annotations

import copy
import gc
import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Optional, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Dataset, stratified_indices
from ..net.build import build
from ..net.fit import fit
from ..net.spec import NetSpec
from .budget import Budget

__all__ = ["TrainConfig", "EpochReport", "TrainResult", "Pruned", "Trainer", "train", "augment",
           "resolve_device", "REASONS", "Continuation", "continued_steps", "CheckpointMismatch"]

REASONS = ("completed", "nan", "oom", "pruned")


class CheckpointMismatch(ValueError):
    """A saved state that is not this run's: another net, seed or top budget, or past this run's trunk."""


class Pruned(Exception):
    """Raise from a callback (or return a true value) to stop a run as `pruned`."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer, schedule, augmentation and device options: the trainer's mechanics (the batch size is the
    budget's: `Budget.batch_size`). None means: chosen by the device."""

    lr: Optional[float] = None  # peak learning rate; default 0.1 * batch / 128 on CUDA, 0.2 * batch / 128 on CPU
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    schedule: Optional[str] = None  # onecycle | cosine; default onecycle on CUDA, cosine on CPU (short CPU proxies)
    warmup: float = 0.1  # share of all steps spent warming up linearly
    crop_padding: int = 4  # 0 disables the random crop
    flip: bool = True
    amp: Optional[bool] = None  # bf16 autocast; default on for CUDA only
    channels_last: Optional[bool] = None  # default on (CUDA and CPU: oneDNN's NHWC kernels, 1.2-2.5x on CPU)
    cudnn_benchmark: bool = True
    compile: bool = False
    eval_batch_size: int = 1024
    check_every: int = 50  # steps between host reads of the loss (NaN check, loss curve, progress)
    threads: Optional[int] = None  # CPU: torch intra-op threads during this run (restored after); None leaves them

    def __post_init__(self) -> None:
        if self.schedule not in (None, "onecycle", "cosine"):
            raise ValueError(f"unknown schedule {self.schedule!r} (onecycle or cosine)")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads {self.threads} must be >= 1")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate {self.lr} must be > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight decay {self.weight_decay} must be >= 0")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup {self.warmup} is a share of all steps: it must lie in [0, 1)")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum {self.momentum} must lie in [0, 1)")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label smoothing {self.label_smoothing} must lie in [0, 1)")

    def resolved(self, device: torch.device, batch_size: int) -> "TrainConfig":
        """The device's defaults filled in; the default peak learning rate scales with `batch_size` (the budget's)."""
        cuda = device.type == "cuda"
        # CPU defaults come from 1-epoch proxies of 10-40 MFLOP nets on half of CIFAR-10: a cosine decay beat the
        # one-cycle's linear one by 1.6 points, and peak 0.2 (batch 128) matched 0.1 and beat 0.4 by 3.
        return TrainConfig(**{
            **asdict(self),
            "lr": self.lr if self.lr is not None else (0.1 if cuda else 0.2) * batch_size / 128,
            "schedule": self.schedule or ("onecycle" if cuda else "cosine"),
            "amp": cuda if self.amp is None else self.amp,
            "channels_last": True if self.channels_last is None else self.channels_last,
        })


@dataclass(frozen=True)
class EpochReport:
    """What the callback sees after each epoch."""

    epoch: int  # 1-based
    epochs: int
    val_acc: Optional[float]  # None when there is no validation split
    train_loss: float
    elapsed: float  # seconds since the start of the run
    images_per_s: float  # this epoch's training throughput


@dataclass
class TrainResult:
    """Everything a study or a user keeps from one run (`to_dict` is JSON-able)."""

    reason: str
    epochs_done: int
    val_acc: list[float]  # per epoch
    train_loss: list[float]  # mean training loss per epoch
    loss_curve: list[float]  # mean training loss per `check_every` steps
    final_val_acc: Optional[float]
    test_acc: Optional[float]
    wall_time: float  # whole run: setup, training, evaluation
    train_time: float  # training steps only
    images: int  # training images processed
    images_per_s: float  # images / train_time (first epoch included)
    epoch_times: list[float]
    epoch_images_per_s: list[float]
    peak_memory_bytes: Optional[int]  # CUDA only
    device: str
    seed: int
    spec_id: str
    params: int
    split_hash: str
    budget: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    error: Optional[str] = None
    resumed_at: Optional[int] = None  # continuation: the step this run resumed at (None: it started from scratch)
    # continuation: the state before this run's decay branch (model, optimizer, order's generator, step), from which
    # a promotion trains on; never stored in the record (the study writes it to a checkpoint file)
    pre_decay: Optional[dict] = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(replace(self, pre_decay=None)).items() if k != "pre_decay"}


@dataclass(frozen=True)
class Continuation:
    """A rung trained as a prefix of the top budget's run, so that a promotion trains on instead of retraining:
    the steps of one run over the `top` budget's share of the training split (its data order, at its side and
    batch), the learning rate warmed up over `warmup` of the top's steps, then held at its peak (the trunk); a rung
    of work w takes the first w of the top's steps, its last `decay` share being a linear decay to 0 branched off
    the trunk (warm-up, stable, decay: WSD). `state` (a run's `pre_decay`) is where the trunk is resumed."""

    top: Budget
    decay: float = 0.2
    state: Optional[dict] = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.decay < 1:
            raise ValueError(f"decay {self.decay} is a share of a rung's steps: it must lie in (0, 1)")


def continued_steps(budget: Budget, top: Budget, top_steps: int, decay: float) -> tuple[int, int]:
    """(the trunk's steps, the whole run's steps) of `budget` as a prefix of `top`'s `top_steps` steps: its work
    share of them, the last `decay` share of it a decay branch (ValueError: a budget at another side or batch)."""
    if budget.resolution != top.resolution or budget.batch_size != top.batch_size:
        raise ValueError(f"continuation: rung {budget.name} must train at the top rung {top.name}'s side and batch")
    side = top.resolution  # both at one side (or both at the data's): the share is epochs x fraction
    total = max(2, min(top_steps, round(top_steps * budget.cost(side) / top.cost(side))))
    return total - max(1, round(decay * total)), total


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto' / None: CUDA when available, else CPU; ValueError (one line) for a device this machine lacks."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"device {device!r}: not a device (auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r}: this machine has no CUDA GPU (torch {torch.__version__}); "
                             f"use --device cpu or auto")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {device!r}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {device!r}: MPS is not available on this machine; use --device cpu or auto")
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r}: nasx trains on cpu or cuda (auto, cpu, cuda or cuda:N)")
    return dev


def augment(x: torch.Tensor, generator: torch.Generator, padding: int = 4, flip: bool = True) -> torch.Tensor:
    """Random crop (zero padding) and horizontal flip of a uint8 NCHW batch, on its device, per sample."""
    n, c, h, w = x.shape
    if padding:
        padded = F.pad(x, (padding, padding, padding, padding))
        dy, dx = torch.randint(0, 2 * padding + 1, (2, n), device=x.device, generator=generator)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # N x 1 x H x 1
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # N x 1 x 1 x W
        x = padded[torch.arange(n, device=x.device)[:, None, None, None],
                   torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
    if flip:
        mirror = torch.rand(n, device=x.device, generator=generator) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(3), x)
    return x


class Trainer(Protocol):
    """What a study calls to train a net: `train` itself, or a stand-in with the same signature (tests)."""

    def __call__(self, spec: NetSpec | str, dataset: Dataset, budget: Budget = ..., device: str | torch.device | None = ...,
                 seed: int = ..., callback: Callable[["EpochReport"], object] | None = ..., *,
                 config: "TrainConfig" = ..., test: bool = ...,
                 progress: Callable[[str, int, int], None] | None = ...,
                 continuation: "Continuation | None" = ...) -> "TrainResult": ...


def train(
    spec: NetSpec | str,
    dataset: Dataset,
    budget: Budget = Budget(),
    device: str | torch.device | None = "auto",
    seed: int = 0,
    callback: Callable[[EpochReport], object] | None = None,
    *,
    config: TrainConfig = TrainConfig(),
    test: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    continuation: Continuation | None = None,
) -> TrainResult:
    """Train `spec` (adapted to the dataset's classes, channels and resolution) for `budget` on `device`: at the
    budget's resolution (the dataset resized unless it is at that side) and batch size (else the device's default).

    callback(EpochReport) runs after each epoch; a true return value or `Pruned` stops the run as
    `pruned`. progress("train", step, total_steps) runs after every step (cheap: no host sync).
    With `test`, the test split is evaluated once at the end of a run that was not stopped early.
    With `continuation`, the run is a prefix of the top budget's (see `Continuation`): trained from its `state`
    when given, scored after its decay branch (one report), its pre-decay state returned in `pre_decay`.
    """
    from ..net.zoo import resolve

    t_start = time.perf_counter()
    budget.check_whole()
    dev = resolve_device(device)
    batch = budget.batch_for(dev.type == "cuda")
    cfg = config.resolved(dev, batch)
    if budget.resolution is not None:
        dataset = dataset.resized(budget.resolution)  # itself when the caller resized it already
    spec = fit(resolve(spec), dataset.input)
    torch.manual_seed(seed)
    cudnn_benchmark = torch.backends.cudnn.benchmark  # the caller's setting, restored below
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
        torch.cuda.reset_peak_memory_stats(dev)

    result = TrainResult(
        reason="completed", epochs_done=0, val_acc=[], train_loss=[], loss_curve=[], final_val_acc=None,
        test_acc=None, wall_time=0.0, train_time=0.0, images=0, images_per_s=0.0, epoch_times=[],
        epoch_images_per_s=[], peak_memory_bytes=None, device=str(dev), seed=seed, spec_id=spec.id, params=0,
        split_hash=dataset.split_hash, budget=budget.to_dict(),
        config={"batch_size": batch, **asdict(cfg)},  # the stored form: the batch beside the mechanics
    )
    state: dict = {}
    threads = torch.get_num_threads()
    if cfg.threads is not None and dev.type == "cpu":
        torch.set_num_threads(cfg.threads)
    try:
        if continuation is None:
            _fit(state, result, spec, dataset, budget, dev, seed, cfg, callback, test, progress)
        else:
            _fit_continued(state, result, spec, dataset, budget, dev, seed, cfg, callback, test, progress,
                           continuation)
    except torch.cuda.OutOfMemoryError as e:  # the same class as torch.OutOfMemoryError, on CPU builds too
        result.reason, result.error = "oom", (str(e).strip().splitlines() or ["out of memory"])[0][:300]
    except Pruned:
        result.reason = "pruned"
    finally:
        state.clear()  # model, optimizer, batches: dropped before the cache is emptied
        torch.backends.cudnn.benchmark = cudnn_benchmark  # the caller's settings, whatever happened
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return _finish(result, dev, t_start)


def _finish(result: TrainResult, dev: torch.device, t_start: float) -> TrainResult:
    """After the run, its big objects dropped: collect them, read the CUDA peak memory and empty the cache, then
    the run's images/s and wall time."""
    gc.collect()
    if dev.type == "cuda":
        result.peak_memory_bytes = int(torch.cuda.max_memory_allocated(dev))
        torch.cuda.empty_cache()
    result.images_per_s = result.images / result.train_time if result.train_time > 0 else 0.0
    result.wall_time = time.perf_counter() - t_start
    return result


@dataclass
class _Loop:
    """What the steps of one run share: the data on the device and the (subset) training tensors, the model, the
    one it steps (compiled or itself) and its optimizer, the batch and schedule, the order's generator, and how a
    batch is prepared (normalized, in the memory format) and run (autocast or not)."""

    data: Dataset
    train_x: torch.Tensor
    train_y: torch.Tensor
    model: nn.Module
    step_model: nn.Module
    optimizer: torch.optim.Optimizer
    batch: int
    steps_per_epoch: int
    total_steps: int
    lr_at: Callable[[int], float]
    generator: torch.Generator
    prepare: Callable[[torch.Tensor], torch.Tensor]
    autocast: Callable
    criterion: nn.Module


def _fit(state: dict, result: TrainResult, spec: NetSpec, dataset: Dataset, budget: Budget, dev: torch.device,
         seed: int, cfg: TrainConfig, callback, test: bool, progress) -> None:
    """Set up, then per epoch: the steps, the epoch's record and the callback; last the test split. Everything big
    lives in `state` so the caller can drop it after an exception."""
    t0 = time.perf_counter()
    state["loop"] = loop = _setup(result, spec, dataset, budget, dev, seed, cfg)
    step = 0
    for epoch in range(1, budget.epochs + 1):
        t_epoch = time.perf_counter()
        step, loss_epoch = _epoch(loop, result, cfg, dev, step, t_epoch, progress)
        if loss_epoch is None:  # a non-finite loss: the run stops as "nan"
            return
        if not _end_epoch(loop, result, cfg, dev, budget, epoch, t0, t_epoch, loss_epoch, callback):
            result.reason = "pruned"
            break
    result.final_val_acc = result.val_acc[-1] if result.val_acc else None
    if test and result.reason == "completed" and loop.data.test_x is not None:
        result.test_acc = _accuracy(loop.step_model, loop.data.test_x, loop.data.test_y, cfg.eval_batch_size,
                                    loop.prepare, loop.autocast)


def _fit_continued(state: dict, result: TrainResult, spec: NetSpec, dataset: Dataset, budget: Budget,
                   dev: torch.device, seed: int, cfg: TrainConfig, callback, test: bool, progress,
                   cont: Continuation) -> None:
    """Set up on the top budget's share, resume the trunk from `cont.state` (if any), train the trunk to this
    budget's pre-decay step, keep that state, run the decay branch, then score: one report, one validation."""
    t0 = time.perf_counter()
    state["loop"] = loop = _setup(result, spec, dataset, cont.top, dev, seed, cfg)
    trunk, total = continued_steps(budget, cont.top, loop.total_steps, cont.decay)
    warm = max(1, round(cfg.warmup * loop.total_steps)) if cfg.warmup > 0 else 0  # the top run's warm-up
    peak = cfg.lr

    def trunk_lr(s: int) -> float:
        return peak * (s + 1) / warm if s < warm else peak

    step, order = 0, None
    if cont.state is not None:
        step, order = _resume(loop, cont.state, spec, seed, cont.top, trunk, dev)
        result.resumed_at = step
    start = step
    losses: list[torch.Tensor] = []
    step, order = _steps(loop, result, cfg, dev, step, trunk, order, trunk_lr, progress, total, losses)
    if order is None:
        return  # a non-finite loss
    result.pre_decay = {"model": {k: v.detach().clone() for k, v in loop.model.state_dict().items()},
                        "optimizer": copy.deepcopy(loop.optimizer.state_dict()), "generator": loop.generator.get_state(),
                        "order": order.clone(), "step": step, "spec_id": spec.id, "seed": seed, "top": cont.top.name}
    base, branch = trunk_lr(trunk - 1), total - trunk
    step, order = _steps(loop, result, cfg, dev, step, total, order,
                         lambda s: base * (total - s) / branch, progress, total, losses)
    if order is None:
        return
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    result.train_loss.append(torch.stack(losses).sum().item() / max(1, total - start))
    data = loop.data
    val = _accuracy(loop.step_model, data.val_x, data.val_y, cfg.eval_batch_size, loop.prepare, loop.autocast) \
        if len(data.val_y) else None
    if val is not None:
        result.val_acc.append(val)
    result.epochs_done = budget.epochs
    result.epoch_times.append(result.train_time)
    result.epoch_images_per_s.append(result.images / result.train_time if result.train_time > 0 else 0.0)
    if callback is not None and callback(EpochReport(budget.epochs, budget.epochs, val, result.train_loss[-1],
                                                     time.perf_counter() - t0, result.epoch_images_per_s[-1])):
        result.reason = "pruned"
    result.final_val_acc = result.val_acc[-1] if result.val_acc else None
    if test and result.reason == "completed" and loop.data.test_x is not None:
        result.test_acc = _accuracy(loop.step_model, loop.data.test_x, loop.data.test_y, cfg.eval_batch_size,
                                    loop.prepare, loop.autocast)


def _resume(loop: _Loop, saved: dict, spec: NetSpec, seed: int, top: Budget, trunk: int,
            dev: torch.device) -> tuple[int, torch.Tensor]:
    """Load a pre-decay state into the loop after checking it is this net's, seed's and top budget's, and no later
    than this run's trunk (CheckpointMismatch, one line, otherwise); return its step and data order."""
    claims = (saved.get("spec_id"), saved.get("seed"), saved.get("top"))
    if claims != (spec.id, seed, top.name):
        raise CheckpointMismatch(f"checkpoint of net {claims[0]}, seed {claims[1]}, top {claims[2]}: this run is net "
                         f"{spec.id}, seed {seed}, top {top.name}")
    step = int(saved["step"])
    if not 0 < step <= trunk:
        raise CheckpointMismatch(f"checkpoint at step {step}: this run's trunk ends at step {trunk}")
    loop.model.load_state_dict(saved["model"])
    loop.optimizer.load_state_dict(saved["optimizer"])
    loop.generator.set_state(saved["generator"].cpu())  # a CPU byte tensor for either device's generator
    return step, saved["order"].to(dev)


def _steps(loop: _Loop, result: TrainResult, cfg: TrainConfig, dev: torch.device, step: int, stop: int,
           order: Optional[torch.Tensor], lr_at: Callable[[int], float], progress, total: int,
           losses: list) -> tuple[int, Optional[torch.Tensor]]:
    """Steps `step`..`stop` - 1 of the run's stream over the top budget's share (each pass in a fresh random order,
    drawn as the stream enters it); the loss read on the host once per `check_every` steps. Returns the step and
    the current order (None once the loss is not finite: the reason is then "nan")."""
    loop.model.train()
    bs, optimizer, spe = loop.batch, loop.optimizer, loop.steps_per_epoch
    t = time.perf_counter()
    run = torch.zeros((), device=dev)
    window, done = torch.zeros((), device=dev), 0
    count = 0
    while step < stop:
        i = step % spe
        if i == 0 or order is None:
            order = torch.randperm(len(loop.train_y), device=dev, generator=loop.generator)
        loss = _step(loop, cfg, order[i * bs:(i + 1) * bs], lr_at(step))
        run += loss
        window += loss
        step, done, count = step + 1, done + 1, count + 1
        if progress:
            progress("train", step, total)
        if done == cfg.check_every or step == stop:
            mean_loss = window.item() / done
            result.loss_curve.append(mean_loss)
            window.zero_()
            done = 0
            if not math.isfinite(mean_loss):
                result.reason = "nan"
                order = None
                break
    result.images += count * bs
    result.train_time += time.perf_counter() - t
    losses.append(run)
    return step, order


def _setup(result: TrainResult, spec: NetSpec, dataset: Dataset, budget: Budget, dev: torch.device, seed: int,
           cfg: TrainConfig) -> _Loop:
    """Data to the device (its stratified share), the model built in its memory format, optimizer, batch, schedule,
    the order's generator and the batch preparation."""
    data = dataset.to(dev)  # a no-op when the caller already moved it (do that once per process)
    train_x, train_y = data.train_x, data.train_y
    if budget.fraction < 1:
        keep = stratified_indices(dataset.train_y, max(1, round(budget.fraction * len(dataset.train_y))), seed).to(dev)
        train_x, train_y = train_x[keep], train_y[keep]
    model = build(spec).to(dev)
    result.params = sum(p.numel() for p in model.parameters())
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    step_model = torch.compile(model) if cfg.compile else model
    optimizer = _optimizer(model, cfg, dev)
    n = len(train_y)
    bs = min(budget.batch_for(dev.type == "cuda"), n)
    steps_per_epoch = n // bs  # drop the last partial batch: steady shapes, no tiny BN batches
    total_steps = steps_per_epoch * budget.epochs
    lr_at = _schedule(cfg, total_steps)
    generator = torch.Generator(device=dev).manual_seed(seed)
    mean = torch.tensor(data.mean, device=dev).view(1, -1, 1, 1) * 255
    inv_std = 1 / (torch.tensor(data.std, device=dev).view(1, -1, 1, 1) * 255)

    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = (x.float() - mean) * inv_std
        return x.contiguous(memory_format=memory_format)

    autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if cfg.amp else _no_autocast
    return _Loop(data, train_x, train_y, model, step_model, optimizer, bs, steps_per_epoch, total_steps, lr_at,
                 generator, prepare, autocast, nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing))


def _epoch(loop: _Loop, result: TrainResult, cfg: TrainConfig, dev: torch.device, step: int, t_epoch: float,
           progress) -> tuple[int, Optional[torch.Tensor]]:
    """One pass of steps in a fresh random order; the loss is read on the host once per `check_every` steps (the
    loss curve). Returns the step count and the epoch's summed loss, or None for the loss once it is not finite
    (then the images and time so far are recorded and the reason is "nan")."""
    loop.model.train()
    bs, optimizer = loop.batch, loop.optimizer
    order = torch.randperm(len(loop.train_y), device=dev, generator=loop.generator)
    loss_epoch = torch.zeros((), device=dev)
    loss_window = torch.zeros((), device=dev)
    window = 0
    for i in range(loop.steps_per_epoch):
        loss = _step(loop, cfg, order[i * bs:(i + 1) * bs], loop.lr_at(step))
        loss_epoch += loss
        loss_window += loss
        step += 1
        window += 1
        if progress:
            progress("train", step, loop.total_steps)
        if window == cfg.check_every or i == loop.steps_per_epoch - 1:
            mean_loss = loss_window.item() / window  # the one host sync per window
            result.loss_curve.append(mean_loss)
            loss_window.zero_()
            window = 0
            if not math.isfinite(mean_loss):
                result.reason = "nan"
                result.images += (i + 1) * bs
                result.train_time += time.perf_counter() - t_epoch
                return step, None
    return step, loss_epoch


def _step(loop: _Loop, cfg: TrainConfig, idx: torch.Tensor, lr: float) -> torch.Tensor:
    """One SGD step on the batch `idx` at learning rate `lr`: augment, prepare, forward, backward, update; the loss
    (detached, on the device)."""
    x = loop.prepare(augment(loop.train_x[idx], loop.generator, cfg.crop_padding, cfg.flip))
    for group in loop.optimizer.param_groups:
        group["lr"] = lr
    with loop.autocast():
        loss = loop.criterion(loop.step_model(x), loop.train_y[idx])
    loop.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    loop.optimizer.step()
    return loss.detach().float()


def _end_epoch(loop: _Loop, result: TrainResult, cfg: TrainConfig, dev: torch.device, budget: Budget, epoch: int,
               t0: float, t_epoch: float, loss_epoch: torch.Tensor, callback) -> bool:
    """Record the epoch (time, images/s, mean loss, validation accuracy) and ask the callback; False: prune."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t_epoch
    images = loop.steps_per_epoch * loop.batch
    result.images += images
    result.train_time += seconds
    result.epoch_times.append(seconds)
    result.epoch_images_per_s.append(images / seconds)
    result.train_loss.append(loss_epoch.item() / loop.steps_per_epoch)
    data = loop.data
    val = _accuracy(loop.step_model, data.val_x, data.val_y, cfg.eval_batch_size, loop.prepare, loop.autocast) \
        if len(data.val_y) else None
    if val is not None:
        result.val_acc.append(val)
    result.epochs_done = epoch
    if callback is None:
        return True
    report = EpochReport(epoch, budget.epochs, val, result.train_loss[-1], time.perf_counter() - t0,
                         result.epoch_images_per_s[-1])
    return not callback(report)


def _optimizer(model: nn.Module, cfg: TrainConfig, dev: torch.device) -> torch.optim.Optimizer:
    kwargs = dict(lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                  weight_decay=cfg.weight_decay)
    if dev.type == "cuda":
        try:  # one kernel for the whole update: the loop is launch-bound at proxy batch sizes
            return torch.optim.SGD(model.parameters(), fused=True, **kwargs)
        except (TypeError, RuntimeError):
            pass
    return torch.optim.SGD(model.parameters(), **kwargs)


def _schedule(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """Learning rate at step s: linear warm-up to cfg.lr, then linear (onecycle) or cosine decay to 0."""
    if cfg.schedule not in ("onecycle", "cosine"):
        raise ValueError(f"unknown schedule {cfg.schedule!r} (onecycle or cosine)")
    warm = max(1, round(cfg.warmup * total_steps)) if cfg.warmup > 0 else 0
    peak = cfg.lr

    def lr_at(s: int) -> float:
        if s < warm:
            return peak * (s + 1) / warm
        t = (s - warm) / max(1, total_steps - warm)
        return peak * (1 - t) if cfg.schedule == "onecycle" else peak * 0.5 * (1 + math.cos(math.pi * t))

    return lr_at


class _no_autocast:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, prepare, autocast) -> float:
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    # CPU: inference_mode (no version counters or autograd views); CUDA: no_grad, as measured on the GPU path
    with torch.inference_mode() if y.device.type == "cpu" else torch.no_grad():
        for i in range(0, len(y), batch_size):
            with autocast():
                logits = model(prepare(x[i:i + batch_size]))
            correct += (logits.argmax(1) == y[i:i + batch_size]).sum()
    return correct.item() / len(y)
