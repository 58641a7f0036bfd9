"""nasx as a user installs it: the wheel holds the shipped spaces, and installed from the wheel (no -e, outside the
checkout) it runs the main job: list the spaces, sample a corner, a 1-trial study and its report."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout, built offline from a copy of it (a build leaves build/ and *.egg-info behind)."""
    pytest.importorskip("setuptools", minversion="70.1", reason="the build backend (pip install -e '.[dev]')")
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "nasx", src / "nasx", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(work / "dist"), str(src)], check=True, capture_output=True, text=True)
    [built] = (work / "dist").glob("nasx-*.whl")
    return built


def test_the_wheel_ships_every_space(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(p.name for p in (ROOT / "nasx" / "spaces").glob("*.yaml"))
    assert len(shipped) >= 6 and {f"nasx/spaces/{n}" for n in shipped} <= names
    assert "nasx/cli/app.py" in names and not any(n.startswith(("spaces/", "tests/", "scripts/")) for n in names)


@pytest.mark.heavy
@pytest.mark.slow
def test_installed_wheel_runs_the_main_job(wheel, tmp_path):
    """A fresh virtual environment with the wheel installed into it (its dependencies seen through a .pth naming
    this interpreter's site-packages, whose editable nasx finder that .pth does not load), run from a folder
    outside the checkout with no PYTHONPATH."""
    venv = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    [venv_site] = json.loads(subprocess.run([python, "-c", "import json, site; print(json.dumps(site.getsitepackages()))"],
                                            check=True, capture_output=True, text=True).stdout)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NASX_SPACES_PATH")}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], env=env, check=True, capture_output=True, text=True)
    # after the install: with the .pth, pip would see the editable nasx's metadata and install nothing
    Path(venv_site, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "work"
    work.mkdir()

    def nasx(*args: str) -> str:
        done = subprocess.run([bin_dir / "nasx", *args], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = subprocess.run([python, "-c", "import nasx; print(nasx.__file__)"], cwd=work, env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    assert Path(where).is_relative_to(venv) and not Path(where).is_relative_to(ROOT)
    listed = [line.split()[0] for line in nasx("spaces").splitlines()[1:]]
    assert listed == ["classic", "inception", "regnet", "resnet", "resnext", "vgg"]
    rows = json.loads(nasx("sample", "--space", "resnext", "--corner", "cpu", "-n", "3", "--format", "json"))
    assert len(rows) == 3 and all(10_000_000 <= r["flops"] <= 30_000_000 for r in rows)
    out = nasx("explore", "--space", "resnext", "--dataset", "synthetic", "--device", "cpu", "--trials", "1",
               "--no-references")
    assert "1 complete" in out and (work / "studies" / "resnext.journal").is_file()
    (work / "reports").rename(work / "after-explore")
    assert "report: reports/resnext/index.html" in nasx("report", "resnext")
    page = (work / "reports" / "resnext" / "index.html").read_text()
    assert "resnext" in page and (work / "reports" / "resnext" / "accuracy_vs_flops.svg").is_file()
