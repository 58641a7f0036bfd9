"""nasx.bench and `nasx bench`: the quick run completes on the CPU and its JSON carries every measurement."""

from __future__ import annotations

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from nasx import data
from nasx.train import bench
from nasx.net.complexity import complexity
from nasx.cli.train import register

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def app():
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        pass

    return app


@pytest.mark.slow
@pytest.mark.heavy
def test_bench_quick_json_has_every_field(app, tmp_path):
    out = tmp_path / "bench.json"
    # synthetic 16x16 images and 2 steps keep this under ~20 s; docs/benchmarks.md has the real-data runs
    res = CliRunner().invoke(app, ["bench", "--quick", "--format", "json", "--device", "cpu", "--dataset", "synthetic",
                                   "--steps", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout[res.stdout.index("{"):])
    assert result == json.loads(out.read_text())
    assert result["quick"] is True and result["device"].startswith("cpu")
    assert result["data"].startswith("synthetic")
    assert set(result["seconds"]) == {"throughput", "counting", "concurrency"}
    models = [row["model"] for row in result["throughput"]]
    assert models == ["resnet20", "resnext11_8x2d_w64"]
    for row in result["throughput"]:
        assert row["fast"]["images_per_s"] > 0 and row["baseline"]["images_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["fast"]["images_per_s"] / row["baseline"]["images_per_s"])
        assert row["baseline"]["batch_size"] == 128 and row["fast"]["amp"] is False
        assert row["flops"] > 0 and row["params"] > 0
    c = result["counting"]
    assert c["counts_agree"] is True and c["analytic_specs_per_s"] > c["fvcore_specs_per_s"] > 0
    assert c["ratio"] > 10  # the analytic twin builds nothing
    conc = result["concurrency"]
    assert conc["ks"] == [1, 2] and "CPU only" in conc["note"]
    assert [row["k"] for row in conc["rows"]] == [1, 2]
    for row in conc["rows"]:
        assert "error" not in row, row
        assert row["aggregate_images_per_s"] > 0 and len(row["per_trial_images_per_s"]) == row["k"]
        assert row["reasons"] == ["completed"]


def test_bench_table_and_bad_ks(app):
    res = CliRunner().invoke(app, ["bench", "--ks", "0,x"])
    assert res.exit_code == 2 and "--ks" in res.output


def test_resnext_bench_specs_are_what_the_docs_say():
    small, full = bench.resnext_bench_spec(True), bench.resnext_bench_spec(False)
    assert [s.width for s in full.stages] == [128, 256, 512] and [s.depth for s in full.stages] == [3, 3, 3]
    assert [s.block.group_width for s in full.stages] == [4, 8, 16] and {s.block.cardinality for s in full.stages} == {8}
    assert round(complexity(full).flops / 1e6) == 116 and round(complexity(small).flops / 1e6) == 15


def test_naive_per_sample_pipeline_crops_flips_and_normalizes():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    ds = bench._PerSampleCifar(x, torch.arange(4), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    img, label = ds[2]
    assert img.shape == (3, 8, 8) and img.dtype == torch.float32 and int(label) == 2
    raw = (img * 0.25 + 0.5) * 255  # back to pixel values: a crop of the zero-padded image, maybe flipped
    padded = torch.nn.functional.pad(x[2], (4, 4, 4, 4)).float()
    assert any(torch.allclose(raw, (w.flip(2) if f else w), atol=1e-3)
               for dy in range(9) for dx in range(9) for f in (0, 1) for w in [padded[:, dy:dy + 8, dx:dx + 8]])


def test_pick_data_falls_back_to_synthetic(tmp_path):
    ds, note = bench.pick_data("cifar100", str(tmp_path))
    assert ds.name == "synthetic:32" and ds.resolution == 32 and note.startswith("synthetic 32x32 (cifar100 unavailable")


def test_split_configs_cover_every_even_split_one_process_first():
    assert bench.split_configs(1) == [(1, 1)]
    assert bench.split_configs(2) == [(1, 2), (2, 1)]
    assert bench.split_configs(6) == [(1, 6), (2, 3), (3, 2), (6, 1)]


def test_achieved_and_attainable_rates():
    # training = forward + backward = 3x the forward's multiply-adds, 2 FLOPs each
    assert bench.train_gflops(100.0, 10_000_000) == pytest.approx(6.0)
    assert bench.matmul_rate(n=256, repeats=1) > 0.1
    assert bench.conv_rate(batch=2, channels=8, side=8, repeats=1) > 0.01
    spec = bench.resnext_cpu_spec()
    from nasx.space import load_space

    assert load_space("resnext").corner("cpu").contains(spec).reason is None  # what the CPU default trains
    assert round(complexity(spec).flops / 1e5) == 137
    ds = data.load("synthetic", val_size=64)
    plain = bench.plain_loop(spec, ds, steps=1, warmup=1, batch_size=8)
    assert plain["images_per_s"] > 0 and plain["steps"] == 1 and plain["batch_size"] == 8


@pytest.mark.slow
@pytest.mark.heavy
def test_bench_split_measures_each_config_in_its_own_processes(app, tmp_path):
    out = tmp_path / "split.json"
    res = CliRunner().invoke(app, ["bench", "--split", "--rounds", "1", "--steps", "1", "--dataset", "synthetic",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "processes x threads" in res.output and "vs plain" in res.output
    sp = json.loads(out.read_text())["split"]
    assert [(r["processes"], r["threads"]) for r in sp["rows"]] == bench.split_configs(sp["cores"])
    for row in sp["rows"]:
        assert "error" not in row, row
        assert row["threads_seen"] == [row["threads"]]  # each process ran with the threads it was given
        assert row["matmul_gflops"] > 0 and row["conv_gflops"] > 0
        assert set(row["nets"]) == {"resnet20", "resnext_cpu"}
        for name, net in row["nets"].items():
            assert net["images_per_s"] > 0 and net["plain_images_per_s"] > 0
            assert net["gflops"] == pytest.approx(net["images_per_s"] * 6 * sp["nets"][name] / 1e9)
            assert net["of_matmul"] == pytest.approx(net["gflops"] / row["matmul_gflops"])
    assert sp["rows"][0]["nets"]["resnet20"]["vs_first"] == 1.0
