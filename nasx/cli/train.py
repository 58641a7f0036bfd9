"""The `nasx train` and `nasx bench` commands (typer); `register(app)` adds them to the main app."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from .common import check_out, fail, finite, held_out, tqdm_hooks

__all__ = ["register"]


class BenchFormat(str, Enum):
    table = "table"
    json = "json"


# long: the typer registration of `train` and `bench`, each a nested function (the thin CLI layer)
def register(app: typer.Typer) -> None:
    """Add `train` and `bench` to `app`."""

    # long (~65 lines, 18 of them its signature of 16 typer options): the command's body is short
    @app.command()
    def train(
        target: str = typer.Argument(..., help="A zoo name (see `nasx zoo`) or a spec file (.json, .yaml, .jsonl)."),
        dataset: str = typer.Option(..., "--dataset", "-d", help="cifar10, cifar100, fashion-mnist, imagefolder:PATH or synthetic."),
        epochs: int = typer.Option(..., "--epochs", "-e", min=1, help="Passes over the training split."),
        fraction: float = typer.Option(1.0, "--fraction", callback=finite("--fraction", 0, 1, above=True), help="Share of the training split per epoch (a fixed, stratified, seeded subset), as in `nasx explore`."),
        device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda, cuda:1, ..."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where the dataset is (before $NASX_DATA and the cache)."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1, help="Default 512 on CUDA, 128 on CPU."),
        lr: Optional[float] = typer.Option(None, "--lr", callback=finite("--lr"), help="Peak learning rate (default 0.1 x batch / 128)."),
        weight_decay: float = typer.Option(5e-4, "--weight-decay", callback=finite("--weight-decay"), help="SGD weight decay."),
        schedule: str = typer.Option("cosine", "--schedule", help="cosine or onecycle (both with linear warm-up)."),
        warmup: float = typer.Option(0.02, "--warmup", callback=finite("--warmup"), help="Share of all steps spent warming up."),
        val_size: float = typer.Option(0, "--val-size", callback=held_out(none=True), help="Validation images held out of training (a count, or a fraction < 1); 0 trains on all."),
        test: bool = typer.Option(True, "--test/--no-test", help="Report test accuracy at the end."),
        seed: int = typer.Option(0, "--seed", min=0, help="Seed of the split, initialization, order and augmentation."),
        no_download: bool = typer.Option(False, "--no-download", help="Never download a missing dataset."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the full result as JSON to this file."),
    ) -> None:
        """Train a net fully (e.g. the one a study found) with the proxy trainer and print its accuracies."""
        from .. import data as data_mod
        from ..train import trainer as train_mod
        from ..train.budget import Budget
        from ..net.fit import fit
        from ..net.spec import SpecError
        from ..net.zoo import resolve

        try:
            spec = resolve(target)
        except SpecError as e:
            fail(str(e))
        if out is not None:
            check_out(out)  # before training: a result must never be lost to an unwritable --out
        try:  # the cheap checks, before any decoding
            cfg = train_mod.TrainConfig(lr=lr, weight_decay=weight_decay, schedule=schedule, warmup=warmup)
            budget = Budget(epochs=epochs, fraction=fraction, batch_size=batch_size)
            dev = train_mod.resolve_device(device)
        except ValueError as e:
            fail(str(e))
        hook, bars, close = tqdm_hooks()
        try:
            ds = data_mod.load(dataset, data_dir=data_dir, val_size=val_size, seed=seed, download=not no_download,
                               progress=hook)
        except data_mod.DataError as e:
            close()
            fail(str(e))
        try:
            spec = fit(spec, ds.input)
        except (SpecError, ValueError) as e:
            close()
            fail(f"{target} on {dataset}: {e}")
        refusal = _memory_refusal(spec, dev, batch_size)
        if refusal:
            close()
            fail(f"{target} on {dataset}: {refusal}")

        typer.echo(f"training {target} ({spec.id}) on {ds.name}: {len(ds.train_y)} train, {len(ds.val_y)} val, "
                   f"split {ds.split_hash}, device {dev}", err=True)
        try:
            result = train_mod.train(spec, ds, budget, dev, seed, _epoch_line(bars), config=cfg, test=test,
                                     progress=hook)
        finally:
            close()
        record = {"target": target, "spec": spec.to_dict(), "dataset": ds.describe(), **result.to_dict()}
        _say_trained(target, ds.name, result)
        if out is not None:
            _write_result(out, json.dumps(record, indent=1), f"nasx-train-{spec.id}-")
        if result.reason != "completed":
            fail(f"training stopped: {result.reason}" + (f" ({result.error})" if result.error else ""), code=1)

    @app.command()
    def bench(
        device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda, ..."),
        quick: bool = typer.Option(False, "--quick", help="Small sizes: about a minute on a 2-core CPU."),
        format: BenchFormat = typer.Option(BenchFormat.table, "--format", "-f", help="table or json."),
        dataset: str = typer.Option("cifar10", "--dataset", help="Benchmark data if local (else synthetic 32x32)."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where the dataset is."),
        steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Timed steps per throughput measurement."),
        ks: Optional[str] = typer.Option(None, "--ks", help="Concurrent trial counts, e.g. 1,2,4,8."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the JSON to this file."),
        split: bool = typer.Option(False, "--split", help="Only this: the CPU's cores split between concurrent trials and threads per trial (1 x all threads, ..., all x 1), with achieved vs attainable GFLOP/s and a plain loop; configs interleaved, medians of --rounds."),
        rounds: int = typer.Option(3, "--rounds", min=1, help="With --split: rounds of every config."),
    ) -> None:
        """Measure proxy-training images/s (fast path vs naive DataLoader), analytic vs fvcore counting, and K concurrent trials (--split: the CPU's cores as trials x threads)."""
        from ..train import bench as bench_mod

        if out is not None:
            check_out(out)  # before measuring: a result must never be lost to an unwritable --out
        if split:
            _bench_split(bench_mod.run_split(dataset=dataset, data_dir=str(data_dir) if data_dir else None,
                                             rounds=rounds, steps=steps or 10,
                                             progress=lambda message: typer.echo(f"bench: {message}", err=True)),
                         format, out)
            return

        try:
            k_list = [int(k) for k in ks.split(",")] if ks else None
            if k_list is not None and any(k < 1 for k in k_list):
                raise ValueError
        except ValueError:
            fail(f"--ks {ks!r}: give positive integers separated by commas, e.g. 1,2,4")
        try:
            from ..train.trainer import resolve_device

            resolve_device(device)
        except ValueError as e:
            fail(str(e))
        result = bench_mod.run(device=device, quick=quick, dataset=dataset, data_dir=str(data_dir) if data_dir else None,
                               steps=steps, baseline_steps=steps, ks=k_list,
                               progress=lambda message: typer.echo(f"bench: {message}", err=True))
        if out is not None:
            _write_result(out, json.dumps(result, indent=1), "nasx-bench-")
        if format is BenchFormat.json:
            typer.echo(json.dumps(result, indent=1))
            return
        _bench_table(result)


def _memory_refusal(spec, dev, batch_size: Optional[int]) -> Optional[str]:
    """Why `spec` cannot train on `dev` (its weights and one batch's activations, counted, beyond the machine's
    memory), or None: before the model is built, whose allocation would fail with a traceback."""
    from ..net.complexity import complexity
    from ..train.memory import MemoryNeed, machine_memory

    cx = complexity(spec)
    gpus = (dev.index or 0,) if dev.type == "cuda" else ()
    batch = batch_size or (512 if gpus else 128)
    return MemoryNeed.of(params=cx.params, acts=cx.acts, batch=batch).refusal(machine_memory(gpus))


def _epoch_line(bars: dict):
    """The per-epoch callback of `nasx train`: the epoch, its loss and validation accuracy on the training bar."""
    def on_epoch(report) -> None:
        bar = bars.get("train")
        text = f"epoch {report.epoch}/{report.epochs} loss {report.train_loss:.3f}"
        if report.val_acc is not None:
            text += f" val {100 * report.val_acc:.2f}%"
        if bar is not None:
            bar.set_postfix_str(text, refresh=True)

    return on_epoch


def _say_trained(target: str, dataset: str, result) -> None:
    """How the run ended, its time and speed, then its validation and test accuracies where measured."""
    typer.echo(f"{target} on {dataset}: {result.reason} after {result.epochs_done} epochs, "
               f"{result.wall_time:.1f} s, {result.images_per_s:,.0f} img/s")
    if result.final_val_acc is not None:
        typer.echo(f"  val accuracy   {100 * result.final_val_acc:.2f}%")
    if result.test_acc is not None:
        typer.echo(f"  test accuracy  {100 * result.test_acc:.2f}%")


def _bench_table(result: dict) -> None:
    """`nasx bench` as a table: throughput against both loaders, counting speed, concurrent trials."""
    typer.echo(f"nasx bench  {result['date']}  {result['device']}  torch {result['torch']}  data: {result['data']}")
    typer.echo(f"{'proxy training':<22} {'fast img/s':>11} {'naive loop':>11} {'ratio':>7} {'fair loader':>12} "
               f"{'ratio':>7}")
    for row in result["throughput"]:
        fast = row["fast"].get("images_per_s")
        typer.echo(f"{row['model']:<22} {fast or float('nan'):>11,.0f} {row['baseline']['images_per_s']:>11,.0f} "
                   f"{row['ratio'] or float('nan'):>6.2f}x {row['fair_baseline']['images_per_s']:>12,.0f} "
                   f"{row['fair_ratio'] or float('nan'):>6.2f}x")
    typer.echo("naive loop: per-sample DataLoader, fp32, batch 128; fair loader: the same with the fast path's "
               "batch, worker processes, pinned memory, bf16 autocast (CUDA) and channels_last")
    c = result["counting"]
    typer.echo(f"counting ({len(c['specs'])} specs)  analytic {c['analytic_specs_per_s']:,.0f}/s  "
               f"fvcore {c['fvcore_specs_per_s']:,.1f}/s  ratio {c['ratio']:,.0f}x  agree {c['counts_agree']}")
    conc = result["concurrency"]
    typer.echo(f"concurrent trials ({conc['model']}; {conc['note']})")
    for row in conc["rows"]:
        if "error" in row:
            typer.echo(f"  K={row['k']}: error {row['error']}")
        else:
            typer.echo(f"  K={row['k']}: {row['aggregate_images_per_s']:,.0f} img/s aggregate "
                       f"(per trial {', '.join(f'{v:,.0f}' for v in row['per_trial_images_per_s'])})")


def _write_result(out: Path, text: str, prefix: str) -> None:
    """Write a trained result to `out`; if that fails after all (disk full, folder gone read-only), keep it in a
    fresh file in the temp folder, say where, and exit 1."""
    import tempfile

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        return
    except OSError as e:
        reason = e.strerror or str(e)
    try:
        handle, fallback = tempfile.mkstemp(prefix=prefix, suffix=".json")
        with open(handle, "w") as f:
            f.write(text)
    except OSError:
        typer.echo(text)  # the last safe place: the terminal
        fail(f"cannot write {out} ({reason}); the result is printed above", code=1)
    fail(f"cannot write {out} ({reason}); the result is in {fallback}", code=1)


def _bench_split(result: dict, format: BenchFormat, out: Optional[Path]) -> None:
    """Print (and keep) `nasx bench --split`'s result."""
    if out is not None:
        _write_result(out, json.dumps(result, indent=1), "nasx-bench-")
    if format is BenchFormat.json:
        typer.echo(json.dumps(result, indent=1))
        return
    sp = result["split"]
    typer.echo(f"nasx bench --split  {result['date']}  {result['device']}  torch {result['torch']}  "
               f"data: {result['data']}  medians of {sp['rounds']} interleaved rounds, load average "
               f"{min(sp['load_average']):.1f}-{max(sp['load_average']):.1f}")
    typer.echo(f"{'processes x threads':<20} {'matmul GF/s':>11} {'conv GF/s':>10}  {'net':<12} {'img/s':>7} "
               f"{'vs 1st':>7} {'GF/s':>6} {'of mm':>6} {'of conv':>7} {'plain':>7} {'vs plain':>8}")
    for row in sp["rows"]:
        head = f"{row['processes']} x {row['threads']}"
        if "error" in row:
            typer.echo(f"{head:<20} error: {row['error']}")
            continue
        for i, (name, net) in enumerate(row["nets"].items()):
            kernels = f"{row['matmul_gflops']:>11.1f} {row['conv_gflops']:>10.1f}" if i == 0 else " " * 22
            typer.echo(f"{head if i == 0 else '':<20} {kernels}  {name:<12} {net['images_per_s']:>7.0f} "
                       f"{net['vs_first']:>6.2f}x {net['gflops']:>6.1f} {net['of_matmul']:>6.0%} {net['of_conv']:>7.0%} "
                       f"{net['plain_images_per_s']:>7.0f} {net['vs_plain']:>7.2f}x")
    typer.echo("aggregate over the processes; GF/s = images/s x 3 x 2 x multiply-adds (forward + backward); "
               "matmul: 2048 fp32; conv: dense 3x3, 64 channels, 32x32, training step; plain: a minimal "
               "hand-written loop at the same batch")
