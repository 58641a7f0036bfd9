"""`nasx zoo` and `nasx count`: formats, --verify, one-line errors with a non-zero exit."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import nasx
from nasx.cli.app import app
from nasx.net.zoo import ZOO

runner = CliRunner()


def test_zoo_json_lists_every_net_with_counts():
    result = runner.invoke(app, ["zoo", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list(ZOO)
    by_name = {r["name"]: r for r in rows}
    assert by_name["resnet50"]["params"] == 25_557_032
    assert by_name["resnet50"]["resolution"] == 224 and by_name["resnet20"]["resolution"] == 32
    assert by_name["resnet20"]["flops"] == nasx.complexity("resnet20").flops
    assert all({"name", "params", "flops", "acts", "resolution"} <= set(r) for r in rows)


def test_zoo_table_and_csv():
    table = runner.invoke(app, ["zoo"])
    assert table.exit_code == 0 and "resnext50_32x4d" in table.stdout and "25,028,904" in table.stdout
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["zoo", "--format", "csv"]).stdout)))
    assert len(rows) == len(ZOO) and rows[0]["name"] == "resnet18" and int(rows[0]["params"]) == 11_689_512


def test_count_json_for_name_and_file(tmp_path):
    result = runner.invoke(app, ["count", "resnet20", "--format", "json"])
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert (out["params"], out["flops"], out["resolution"]) == (269_722, 40_931_968, 32)
    path = tmp_path / "net.yaml"
    path.write_text(nasx.zoo.get("resnet20").to_yaml())
    from_file = json.loads(runner.invoke(app, ["count", str(path), "--format", "json", "--resolution", "64"]).stdout)
    assert from_file["params"] == 269_722 and from_file["resolution"] == 64
    assert from_file["flops"] == nasx.complexity("resnet20", 64).flops


def test_count_verify_builds_and_agrees():
    result = runner.invoke(app, ["count", "googlenet", "--verify", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["verify_ok"] is True and out["verified"]["flops"] == out["flops"] == 1_504_878_688


def test_count_verify_exits_nonzero_on_a_difference(monkeypatch):
    import nasx.net.verify

    real = nasx.net.verify.measure
    monkeypatch.setattr(nasx.net.verify, "measure", lambda spec, r: real(spec, r) | {"flops": 1})
    result = runner.invoke(app, ["count", "resnet20", "--verify"])
    assert result.exit_code == 1
    assert "differs" in result.stderr and "flops" in result.stderr


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasx", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_bad_spec_files_give_one_line_and_nonzero_exit(tmp_path):
    cases = {
        "cardinality.json": json.dumps({"stem": {}, "stages": [{"depth": 1, "width": 30, "block": {"branch": "aggregated", "cardinality": 4}}]}),
        "branch.yaml": "stages:\n  - {depth: 1, width: 8, block: {branch: dense}}\n",
        "broken.yaml": "stages: [\n  - {depth: 1\n",
        "collapse.json": json.dumps({"stem": {"kind": "alexnet", "width": 8}, "resolution": 6, "stages": [{"depth": 1, "width": 8}]}),
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        proc = run_cli("count", str(path))
        assert proc.returncode != 0, name
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    proc = run_cli("count", "resnet9000")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("count", str(tmp_path / "absent.json"))
    assert proc.returncode != 0 and "cannot read" in proc.stderr and "Traceback" not in proc.stderr
