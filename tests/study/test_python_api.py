"""The public Python API to stored studies (docs/python-api.md): its example runs as written on a synthetic study,
`import nasx` does not load the reader, and an unknown study is a one-line error."""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasx.study.synthetic import make_study

ROOT = Path(__file__).resolve().parents[2]


def test_the_documented_example_runs_as_written(tmp_path, monkeypatch):
    make_study(tmp_path / "studies" / "demo.journal", "demo", 40, space="resnet", seed=0)
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "docs" / "python-api.md").read_text()
    text = "\n".join("" if line.startswith("```") else line for line in text.splitlines())  # a fence ends an output
    test = doctest.DocTestParser().get_doctest(text, {}, "python-api.md", "docs/python-api.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test)
    assert result.attempted >= 12 and result.failed == 0


def test_open_study_is_lazy_and_an_unknown_study_is_one_line(tmp_path):
    probe = ("import sys, nasx; print('nasx.study.store' in sys.modules, 'pandas' in sys.modules); "
             "print(nasx.open_study.__module__, nasx.StoredStudy.__name__)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["False", "False", "nasx.study.store", "StoredStudy"], out.stderr
    import nasx
    from nasx.study import StudyError

    with pytest.raises(StudyError, match=r"^unknown study 'none': no storage at .*none\.journal"):
        nasx.open_study("none", studies_dir=tmp_path)
    assert not (tmp_path / "none.journal").exists()
