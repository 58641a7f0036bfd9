"""Start-up and scale (issue 19): the analytic commands never import torch (nor Optuna, pandas, matplotlib),
`nasx export` reads a study without torch or matplotlib, and a 400-trial study (PED-ANOVA's side of 200) gets its report with the
importance method named on the page. Times are measured in docs/benchmarks.md, not asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "optuna", "pandas", "matplotlib", "sklearn", "scipy")

# run the console entry point (main, with its process-wide settings) in a fresh interpreter, then name the heavy
# packages it imported
PROBE = """
import json, sys
watch = json.loads(sys.argv[2])
sys.argv = ["nasx", *json.loads(sys.argv[1])]
from nasx.cli.app import main
try:
    main()
except SystemExit as e:
    code = e.code
else:
    code = 0
print(json.dumps({"code": code, "imported": sorted(m for m in watch if m in sys.modules)}))
"""


def imported_by(args: list[str], cwd: Path, watch=HEAVY) -> tuple[int, list[str], str]:
    """(exit code, heavy packages imported, stdout and stderr) of `nasx ARGS` run through main() in a fresh process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps(watch)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    *printed, last = done.stdout.strip().splitlines()
    report = json.loads(last)
    return report["code"] or 0, report["imported"], "\n".join(printed) + done.stderr


def synthetic():
    """nasx.study.synthetic: studies of made-up results (scripts/synthetic_study.py is its command)."""
    from nasx.study import synthetic as module

    return module


@pytest.mark.parametrize("args", [["--help"], ["zoo"], ["count", "resnet50"], ["count", "resnet20", "--format", "json"],
                                  ["spaces"], ["sample", "--space", "resnext", "-n", "3"], ["explore", "--help"],
                                  ["report", "--help"]], ids=" ".join)
def test_analytic_commands_import_no_torch_nor_optuna(args, tmp_path):
    code, imported, output = imported_by(args, tmp_path)
    assert code == 0, output
    assert imported == [], f"nasx {' '.join(args)} imported {imported}"


def test_count_still_counts_without_torch(tmp_path):
    code, imported, output = imported_by(["count", "resnet50", "--format", "json"], tmp_path)
    assert code == 0 and "torch" not in imported, output
    assert json.loads(output)["params"] == 25_557_032  # torchvision's resnet50


def test_export_reads_a_study_without_torch_or_matplotlib(tmp_path):
    synthetic().make_study(tmp_path / "studies" / "few.journal", "few", 30, space="resnext")
    code, imported, output = imported_by(["export", "few", "--best", "--out", "best.yaml"], tmp_path)
    assert code == 0, output
    assert not {"torch", "matplotlib", "sklearn"} & set(imported), imported
    assert (tmp_path / "best.yaml").read_text().startswith(("name", "stages", "stem", "head", "input", "resolution"))


def test_nasx_package_imports_no_torch_until_build(tmp_path):
    probe = ("import sys, nasx, nasx.net.spec, nasx.net.complexity, nasx.space, nasx.space.sampling, nasx.study.record, "
             "nasx.report, nasx.train.budget, nasx.study.config; n = nasx.complexity('resnet20').params; "
             "before = 'torch' in sys.modules; "
             "nasx.build('resnet20'); print(n, before, 'torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    import nasx

    assert out.stdout.split() == [str(nasx.complexity("resnet20").params), "False", "True"], out.stderr


def test_the_trial_record_imports_neither_optuna_nor_the_worker(tmp_path):
    """nasx.study loads its modules on first use: a reader of records pays for none of the study's machinery."""
    probe = ("import sys, nasx.study.record; "
             "light = sorted(m for m in sys.modules if m.startswith(('optuna', 'torch', 'nasx.study.'))); "
             "from nasx.study import explore; "
             "print(light == ['nasx.study.record'], callable(explore) and explore.__name__ == 'explore')")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["True", "True"], out.stderr


@pytest.mark.slow
def test_report_of_400_trials_names_its_importance_method(tmp_path):
    from nasx.report import write_report
    from nasx.study.record import Shelf
    from nasx.report.figures import FANOVA_MAX_TRIALS

    synthetic().make_study(tmp_path / "big.journal", "big", 400, space="resnext", seed=1)
    index = write_report(["big"], Shelf(str(tmp_path / "big.journal")), out=tmp_path / "out")
    page = index.read_text()
    assert "PED-ANOVA evaluator on the" in page and f"fANOVA, the method up to {FANOVA_MAX_TRIALS} complete" in page
    assert (tmp_path / "out" / "importance-big.svg").stat().st_size > 10_000
    trials = (tmp_path / "out" / "trials.csv").read_text().splitlines()
    assert len(trials) == 401
    # beyond 300 dots the scatter is one image in the SVG, not one path per dot
    assert (tmp_path / "out" / "accuracy_vs_flops.svg").stat().st_size < 400_000
