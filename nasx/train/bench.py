"""Benchmarks on the current device: proxy-training throughput (fast path vs a naive DataLoader loop),
analytic complexity counting vs fvcore, aggregate throughput of K concurrent trials, and (`run_split`) the
CPU's cores split between concurrent trials and threads, against attainable matmul/conv rates and a plain loop.

Returns plain dicts (JSON-able); prints nothing (the CLI formats them).

Nets: `resnet20` (zoo) and a ResNeXt-29-style net. On CUDA that is `resnext29_8x4d_w128`: CIFAR stem 32,
three stages of 3 aggregated blocks to widths 128/256/512, cardinality 8, group width 4/8/16
(bottleneck widths 32/64/128), 116 MFLOPs, 0.73M params. On CPU, and with `quick`, it is the reduced
`resnext11_8x2d_w64`: CIFAR stem 16, one block per stage to 64/128/256, cardinality 8, group width
2/4/8, 15 MFLOPs.

The naive baseline: a `torch.utils.data.DataLoader` over the same uint8 images, per-sample random
crop (zero padding 4) + flip written here on a uint8 CHW tensor, float conversion and normalization
per sample, batch 128, fp32, contiguous format, the same model, SGD and loss; 0 workers on CPU (the
trainer has the cores), min(8, cores // 2) on CUDA with pinned memory.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import replace
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..net.build import build
from ..data import DataError, Dataset, load
from ..net.spec import AggregatedBlock, Head, NetSpec, Stage, Stem
from ..net.fit import fit
from .budget import Budget
from .trainer import TrainConfig, resolve_device, train

__all__ = ["resnext_bench_spec", "resnext_cpu_spec", "pick_data", "throughput", "baseline_throughput", "plain_loop",
           "matmul_rate", "conv_rate", "train_gflops", "counting", "concurrency", "split", "split_configs", "run",
           "run_split"]


def resnext_bench_spec(reduced: bool) -> NetSpec:
    """The ResNeXt-29-style bench net (see the module docstring); `reduced` for CPU / quick runs."""
    stem, widths, depth, gw = (16, (64, 128, 256), 1, 2) if reduced else (32, (128, 256, 512), 3, 4)
    stages = tuple(
        Stage(depth, w, AggregatedBlock(cardinality=8, group_width=gw * 2**i), stride=1 if i == 0 else 2)
        for i, w in enumerate(widths)
    )
    return NetSpec(stem=Stem("cifar", stem), stages=stages, head=Head("linear"), num_classes=10, resolution=32)


def resnext_cpu_spec() -> NetSpec:
    """A net of the resnext space's `cpu` corner (what the CPU default of `nasx explore` trains): CIFAR stem 16,
    stages of depth 1, 2, 1 to widths 64/64/128, cardinality 8, bottleneck ratio 0.5 (group width 4/4/8), 13.7
    MFLOPs."""
    stages = tuple(Stage(d, w, AggregatedBlock(cardinality=8, group_width=w // 2 // 8), stride=1 if i == 0 else 2)
                   for i, (d, w) in enumerate(zip((1, 2, 1), (64, 64, 128))))
    return NetSpec(stem=Stem("cifar", 16), stages=stages, head=Head("linear"), num_classes=10, resolution=32)


def pick_data(dataset: str = "cifar10", data_dir: Optional[str] = None, val_size: int = 512) -> tuple[Dataset, str]:
    """The named dataset if it is local (never downloads), else 32x32 synthetic data; and a note saying which."""
    try:
        ds = load(dataset, data_dir=data_dir, val_size=val_size, download=False)
        return ds, f"{dataset} ({ds.source})"
    except DataError as e:
        ds = load("synthetic:32", val_size=val_size)
        return ds, f"synthetic 32x32 ({dataset} unavailable: {str(e).split(';')[0]})"


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def throughput(spec: NetSpec, ds: Dataset, device: torch.device, *, steps: int, batch_size: Optional[int] = None,
               seed: int = 0) -> dict:
    """The trainer's own loop for 2 epochs of `steps` steps: steady images/s is the second epoch's
    (the first pays for cudnn autotuning and allocator warm-up, reported separately)."""
    batch = Budget(batch_size=batch_size).batch_for(device.type == "cuda")
    cfg = TrainConfig().resolved(device, batch)
    n = len(ds.train_y)
    fraction = min(1.0, steps * batch / n)
    small = replace(ds, val_x=ds.val_x[:256], val_y=ds.val_y[:256])
    r = train(spec, small, Budget(epochs=2, fraction=fraction, batch_size=batch_size), device, seed, config=cfg)
    if r.reason != "completed":
        return {"reason": r.reason, "images_per_s": None}
    return {"images_per_s": r.epoch_images_per_s[-1], "first_epoch_images_per_s": r.epoch_images_per_s[0],
            "batch_size": batch, "steps": int(fraction * n) // batch, "amp": cfg.amp,
            "channels_last": cfg.channels_last, "reason": r.reason}


class _PerSampleCifar(torch.utils.data.Dataset):
    """The naive pipeline: one uint8 CHW image at a time, cropped, flipped, normalized on the CPU."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean, std, padding: int = 4):
        self.x, self.y, self.padding = x, y, padding
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        img = self.x[i]  # C x H x W uint8
        p = self.padding
        _, h, w = img.shape
        padded = F.pad(img, (p, p, p, p))
        dy, dx = torch.randint(0, 2 * p + 1, (2,)).tolist()
        img = padded[:, dy:dy + h, dx:dx + w]
        if torch.rand(()) < 0.5:
            img = img.flip(2)
        return (img.float() / 255 - self.mean) / self.std, self.y[i]


def baseline_throughput(spec: NetSpec, ds: Dataset, device: torch.device, *, steps: int, warmup: int = 3,
                        batch_size: int = 128, workers: Optional[int] = None, seed: int = 0, amp: bool = False,
                        channels_last: bool = False) -> dict:
    """Images/s of a DataLoader loop with per-sample augmentation in worker processes and pinned memory on
    CUDA, timed over `steps` steps after `warmup`: fp32 NCHW batch 128 (the naive loop), or, as a fair
    baseline, the fast path's batch with bf16 autocast and channels_last."""
    cuda = device.type == "cuda"
    if workers is None:
        workers = min(8, (os.cpu_count() or 2) // 2) if cuda else 0
    torch.manual_seed(seed)
    spec = fit(spec, ds.input)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = build(spec).to(device).to(memory_format=memory_format).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    loader = torch.utils.data.DataLoader(
        _PerSampleCifar(ds.train_x, ds.train_y, ds.mean, ds.std), batch_size=batch_size, shuffle=True,
        num_workers=workers, pin_memory=cuda, drop_last=True, persistent_workers=workers > 0,
    )
    done, t0, images = 0, 0.0, 0
    while done < warmup + steps:
        for x, y in loader:
            if done == warmup:
                _sync(device)
                t0 = time.perf_counter()
            x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            images += len(y) if done > warmup else 0
            if done == warmup + steps:
                break
    _sync(device)
    seconds = time.perf_counter() - t0
    del loader
    return {"images_per_s": images / seconds, "batch_size": batch_size, "steps": steps, "workers": workers,
            "amp": amp, "channels_last": channels_last}


def plain_loop(spec: NetSpec, ds: Dataset, *, steps: int, warmup: int = 2, batch_size: int = 128,
               seed: int = 0) -> dict:
    """Images/s of a minimal hand-written CPU training loop, the fair baseline of the trainer: the images
    normalized once into one float tensor, random batches, channels_last, SGD with Nesterov momentum and
    label smoothing; no augmentation, schedule or checks. Timed over `steps` steps after `warmup`."""
    torch.manual_seed(seed)
    spec = fit(spec, ds.input)
    n = min(len(ds.train_y), (warmup + steps) * batch_size)
    mean = torch.tensor(ds.mean).view(1, -1, 1, 1)
    std = torch.tensor(ds.std).view(1, -1, 1, 1)
    x = ((ds.train_x[:n].float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)
    y = ds.train_y[:n]
    model = build(spec).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    t0 = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        idx = torch.randint(0, n, (batch_size,))
        loss = criterion(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return {"images_per_s": steps * batch_size / (time.perf_counter() - t0), "batch_size": batch_size,
            "steps": steps}


def matmul_rate(n: int = 2048, repeats: int = 4) -> float:
    """GFLOP/s of an n x n fp32 matmul on the CPU (2 n^3 FLOPs each), after one warm-up product."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    t = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9


def conv_rate(batch: int = 64, channels: int = 64, side: int = 32, repeats: int = 3) -> float:
    """GFLOP/s of a training step (forward, input and weight gradients: 3x the forward) of a dense 3x3 conv,
    `channels` in and out at `side` x `side`, channels_last fp32, after one warm-up step."""
    conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(batch, channels, side, side).contiguous(memory_format=torch.channels_last).requires_grad_()

    def step() -> None:
        conv(x).sum().backward()

    step()
    t = time.perf_counter()
    for _ in range(repeats):
        step()
    flops = 3 * 2 * batch * side * side * channels * channels * 9
    return flops * repeats / (time.perf_counter() - t) / 1e9


def train_gflops(images_per_s: float, macs: int) -> float:
    """Achieved GFLOP/s of training at `images_per_s`: forward and backward are 3x the forward's multiply-adds
    (nasx counts multiply-adds, as fvcore does), 2 FLOPs each."""
    return images_per_s * 3 * 2 * macs / 1e9


def counting(specs: dict[str, NetSpec], repeats: int = 200) -> dict:
    """Specs/s of `nasx.complexity` (analytic) and of `nasx.verify.measure` (fvcore on a built model)."""
    from ..net.complexity import complexity
    from ..net.verify import measure

    t = time.perf_counter()
    for _ in range(repeats):
        analytic = {name: complexity(s) for name, s in specs.items()}
    analytic_s = (time.perf_counter() - t) / (repeats * len(specs))
    t = time.perf_counter()
    measured = {name: measure(s) for name, s in specs.items()}
    fvcore_s = (time.perf_counter() - t) / len(specs)
    agree = all(analytic[k].flops == measured[k]["flops"] and analytic[k].params == measured[k]["params"] for k in specs)
    return {"specs": list(specs), "analytic_specs_per_s": 1 / analytic_s, "fvcore_specs_per_s": 1 / fvcore_s,
            "ratio": fvcore_s / analytic_s, "analytic_ms": analytic_s * 1e3, "fvcore_ms": fvcore_s * 1e3,
            "counts_agree": agree}


def _concurrent_worker(index: int, spec_dict: dict, dataset: str, data_dir: Optional[str], device: str,
                       threads: int, steps: int, barrier, queue) -> None:
    """One trial process: load (cached) data, wait for the others, train 2 epochs, report epoch-2 timing."""
    try:
        torch.set_num_threads(threads)
        ds, _ = pick_data(dataset, data_dir)
        spec = NetSpec.from_dict(spec_dict)
        dev = torch.device(device)
        batch = Budget().batch_for(dev.type == "cuda")
        cfg = TrainConfig().resolved(dev, batch)
        fraction = min(1.0, steps * batch / len(ds.train_y))
        ds = replace(ds, val_x=ds.val_x[:256], val_y=ds.val_y[:256])
        marks: list[float] = []
        barrier.wait()
        r = train(spec, ds, Budget(epochs=2, fraction=fraction), dev, seed=index, config=cfg,
                  callback=lambda report: marks.append(time.time()))
        queue.put({"index": index, "reason": r.reason, "images": r.images - round(r.images / 2),
                   "start": marks[0] if marks else None, "end": marks[-1] if marks else None,
                   "images_per_s": r.epoch_images_per_s[-1] if r.epoch_images_per_s else None})
    except BaseException as e:  # the parent reports it; never hang the barrier
        try:
            barrier.abort()
        except Exception:
            pass
        queue.put({"index": index, "error": f"{type(e).__name__}: {e}"})


def concurrency(spec: NetSpec, dataset: str, data_dir: Optional[str], device: torch.device, ks: list[int],
                steps: int) -> list[dict]:
    """Aggregate images/s of K processes each training its own copy at once (spawned, same device).

    Each process trains 2 epochs of `steps` steps after a common barrier; the aggregate is the sum of
    their second-epoch images over the span from the first second-epoch start to the last end.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    from .cores import cpu_cores

    cores = cpu_cores()
    rows = []
    for k in ks:
        barrier, queue = ctx.Barrier(k), ctx.Queue()
        threads = max(1, cores // k)
        procs = [ctx.Process(target=_concurrent_worker,
                             args=(i, spec.to_dict(), dataset, data_dir, str(device), threads, steps, barrier, queue))
                 for i in range(k)]
        for p in procs:
            p.start()
        results = _collect(queue, procs)
        for p in procs:
            p.join()
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            rows.append({"k": k, "error": errors[0]})
            continue
        span = max(r["end"] for r in results) - min(r["start"] for r in results)
        images = sum(r["images"] for r in results)
        rows.append({"k": k, "threads_per_process": threads, "aggregate_images_per_s": images / span,
                     "per_trial_images_per_s": [round(r["images_per_s"], 1) for r in results],
                     "reasons": sorted({r["reason"] for r in results})})
    return rows


def split_configs(cores: int) -> list[tuple[int, int]]:
    """(processes, threads each) for every even split of `cores`, one process with every thread first."""
    return [(p, cores // p) for p in range(1, cores + 1) if cores % p == 0]


def _split_worker(index: int, tasks: list, dataset: str, data_dir: Optional[str], threads: int, steps: int,
                  barrier, queue) -> None:
    """One process of a split: `threads` intra-op threads; each task starts with the others (barrier)."""
    try:
        torch.set_num_threads(threads)  # this process is the benchmark's own
        ds, _ = pick_data(dataset, data_dir)
        ds = replace(ds, val_x=ds.val_x[:256], val_y=ds.val_y[:256])
        cpu = torch.device("cpu")
        for name, kind, spec_dict in tasks:
            barrier.wait()
            if kind == "matmul":
                rate = matmul_rate()
            elif kind == "conv":
                rate = conv_rate()
            elif kind == "trainer":
                rate = throughput(NetSpec.from_dict(spec_dict), ds, cpu, steps=steps)["images_per_s"]
            else:
                rate = plain_loop(NetSpec.from_dict(spec_dict), ds, steps=steps)["images_per_s"]
            queue.put({"index": index, "task": name, "rate": rate, "threads": torch.get_num_threads()})
        queue.put({"index": index, "done": True})
    except BaseException as e:  # the parent reports it; never hang the barrier
        with _suppress():
            barrier.abort()
        queue.put({"index": index, "error": f"{type(e).__name__}: {e}"})


def _suppress():
    import contextlib

    return contextlib.suppress(Exception)


def _split_round(tasks: list, processes: int, threads: int, dataset: str, data_dir: Optional[str],
                 steps: int) -> dict:
    """{task: aggregate rate (the sum over the processes, which run each task at once)}, or {"error": ...}."""
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_split_worker, args=(i, tasks, dataset, data_dir, threads, steps, barrier, queue))
             for i in range(processes)]
    for p in procs:
        p.start()
    rates: dict[str, float] = {}
    seen_threads: set[int] = set()
    done, error = 0, None
    while done < processes and error is None:
        try:
            msg = queue.get(timeout=2.0)
        except queue_mod.Empty:
            if not any(p.is_alive() for p in procs):
                error = f"a process exited with code {[p.exitcode for p in procs]} without a result"
            continue
        if "error" in msg:
            error = msg["error"]
        elif msg.get("done"):
            done += 1
        else:
            rates[msg["task"]] = rates.get(msg["task"], 0.0) + msg["rate"]
            seen_threads.add(msg["threads"])
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    if error is not None:
        return {"error": error}
    return {**rates, "threads_seen": sorted(seen_threads)}


def split(nets: dict[str, NetSpec], dataset: str, data_dir: Optional[str], *,
          configs: Optional[list[tuple[int, int]]] = None, rounds: int = 3, steps: int = 10,
          progress: Callable[[str], None] | None = None) -> dict:
    """The cores split between concurrent trials and threads per trial: for each (processes, threads) config,
    the aggregate images/s of the trainer and of a plain loop on each net, and the attainable rates (a 2048
    fp32 matmul, a dense 3x3 conv training step) with the same split; configs interleaved, `rounds` times
    (alternating their order), medians reported."""
    from statistics import median

    from ..net.complexity import complexity
    from .cores import cpu_cores

    say = progress or (lambda message: None)
    cores = cpu_cores()
    configs = configs or split_configs(cores)
    tasks = [("matmul", "matmul", None), ("conv", "conv", None)]
    for name, spec in nets.items():
        tasks += [(name, "trainer", spec.to_dict()), (f"{name}/plain", "plain", spec.to_dict())]
    runs: dict[tuple[int, int], list[dict]] = {c: [] for c in configs}
    loads = []
    for r in range(rounds):
        for processes, threads in (configs if r % 2 == 0 else configs[::-1]):
            say(f"split round {r + 1}/{rounds}: {processes} process(es) x {threads} thread(s)")
            loads.append(round(os.getloadavg()[0], 2))
            runs[(processes, threads)].append(_split_round(tasks, processes, threads, dataset, data_dir, steps))
    rows = []
    for (processes, threads), results in runs.items():
        errors = [res["error"] for res in results if "error" in res]
        if errors:
            rows.append({"processes": processes, "threads": threads, "error": errors[0]})
            continue
        med = {task: median(res[task] for res in results) for task, _, _ in tasks}
        row: dict = {"processes": processes, "threads": threads,
                     "threads_seen": sorted({t for res in results for t in res["threads_seen"]}),
                     "matmul_gflops": med["matmul"], "conv_gflops": med["conv"], "nets": {}}
        for name, spec in nets.items():
            ips, plain = med[name], med[f"{name}/plain"]
            gflops = train_gflops(ips, complexity(spec).flops)
            row["nets"][name] = {
                "images_per_s": ips, "images_per_s_rounds": [round(res[name], 1) for res in results],
                "plain_images_per_s": plain, "vs_plain": ips / plain, "gflops": gflops,
                "of_matmul": gflops / med["matmul"], "of_conv": gflops / med["conv"]}
        rows.append(row)
    first = rows[0]
    for row in rows:
        for name, net in row.get("nets", {}).items():
            net["vs_first"] = net["images_per_s"] / first["nets"][name]["images_per_s"] if "nets" in first else None
    return {"cores": cores, "rounds": rounds, "steps": steps, "nets": {n: complexity(s).flops for n, s in nets.items()},
            "load_average": loads, "rows": rows}


def _collect(queue, procs, poll: float = 2.0) -> list[dict]:
    """One result per process; a process that died without reporting (a crash) becomes an error."""
    import queue as queue_mod

    results: list[dict] = []
    while len(results) < len(procs):
        try:
            results.append(queue.get(timeout=poll))
        except queue_mod.Empty:
            if not any(p.is_alive() for p in procs):
                try:
                    while True:
                        results.append(queue.get(timeout=0.5))
                except queue_mod.Empty:
                    pass
                codes = [p.exitcode for p in procs]
                results += [{"error": f"a worker exited with code {c} without a result"} for c in codes if c][: len(procs) - len(results)]
                break
    return results


def run(*, device: str | None = "auto", quick: bool = False, dataset: str = "cifar10", data_dir: Optional[str] = None,
        steps: Optional[int] = None, baseline_steps: Optional[int] = None, ks: Optional[list[int]] = None,
        concurrent_steps: Optional[int] = None, count_repeats: Optional[int] = None,
        progress: Callable[[str], None] | None = None) -> dict:
    """All three benchmarks; sizes default by device and `quick`."""
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    say = progress or (lambda message: None)
    steps = steps or (5 if quick else 100 if cuda else 20)
    baseline_steps = baseline_steps or (5 if quick else 100 if cuda else 20)
    concurrent_steps = concurrent_steps or (3 if quick else 100 if cuda else 10)
    count_repeats = count_repeats or (50 if quick else 500)
    ks = ks or ([1, 2, 4, 8] if cuda else [1, 2])
    reduced = quick or not cuda
    ds, data_note = pick_data(dataset, data_dir)
    nets = {"resnet20": fit(build_spec("resnet20"), ds.input)}
    rx_name = "resnext11_8x2d_w64" if reduced else "resnext29_8x4d_w128"
    nets[rx_name] = fit(resnext_bench_spec(reduced), ds.input)
    out: dict = {
        "date": time.strftime("%Y-%m-%d"), "device": _device_name(dev), "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(), "data": data_note, "quick": quick,
        "throughput": [], "counting": None, "concurrency": None,
    }
    from ..net.complexity import complexity

    seconds: dict[str, float] = {}
    t = time.perf_counter()
    for name, spec in nets.items():
        say(f"throughput {name}")
        fast = throughput(spec, ds, dev, steps=steps)
        base = baseline_throughput(spec, ds, dev, steps=baseline_steps)
        fair = baseline_throughput(spec, ds, dev, steps=baseline_steps, batch_size=fast.get("batch_size") or 128,
                                   amp=cuda, channels_last=True, workers=None if cuda else 2)
        cx = complexity(spec)
        ratio = fast["images_per_s"] / base["images_per_s"] if fast.get("images_per_s") else None
        fair_ratio = fast["images_per_s"] / fair["images_per_s"] if fast.get("images_per_s") else None
        out["throughput"].append({"model": name, "flops": cx.flops, "params": cx.params, "fast": fast,
                                  "baseline": base, "ratio": ratio, "fair_baseline": fair, "fair_ratio": fair_ratio})
    seconds["throughput"], t = time.perf_counter() - t, time.perf_counter()
    say("counting")
    count_specs = {"resnet20": build_spec("resnet20"), rx_name: nets[rx_name]}
    if not quick:
        count_specs["resnet56"] = build_spec("resnet56")
        count_specs["resnet18"] = build_spec("resnet18")
        count_specs["resnext29_8x4d_w128"] = resnext_bench_spec(False)
    out["counting"] = counting(count_specs, count_repeats)
    seconds["counting"], t = time.perf_counter() - t, time.perf_counter()
    say(f"concurrency K={ks}")
    out["concurrency"] = {
        "model": "resnet20", "steps": concurrent_steps, "ks": ks,
        "note": "CUDA: K processes share one GPU" if cuda else
                "CPU only: K = 1, 2 processes share the cores (threads per process = cores // K); no GPU here",
        "rows": concurrency(nets["resnet20"], ds.name, data_dir, dev, ks, concurrent_steps),
    }
    seconds["concurrency"] = time.perf_counter() - t
    out["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    return out


def build_spec(name: str) -> NetSpec:
    from ..net.zoo import get

    return get(name)


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(dev)}"
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def run_split(*, dataset: str = "cifar10", data_dir: Optional[str] = None, rounds: int = 3, steps: int = 10,
              configs: Optional[list[tuple[int, int]]] = None, progress: Callable[[str], None] | None = None) -> dict:
    """`nasx bench --split`: ResNet-20 and a `cpu`-corner ResNeXt at explore's CPU proxy (batch 128, fp32,
    channels_last) under every split of the cores (see `split`)."""
    ds, data_note = pick_data(dataset, data_dir)  # also fills the decoded cache the processes read
    nets = {"resnet20": fit(build_spec("resnet20"), ds.input), "resnext_cpu": fit(resnext_cpu_spec(), ds.input)}
    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": _device_name(torch.device("cpu")),
           "torch": torch.__version__, "data": data_note}
    t = time.perf_counter()
    out["split"] = split(nets, dataset, data_dir, configs=configs, rounds=rounds, steps=steps, progress=progress)
    out["seconds"] = round(time.perf_counter() - t, 1)
    return out
