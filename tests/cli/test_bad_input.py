"""Issue 19, bad input: each case is one line and exit 2 (1 for a runtime fault), no traceback, nothing lost."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import pickle
import struct
import sys
import tarfile
import tempfile
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import numpy as np
import optuna
import pytest
from typer.testing import CliRunner

import nasx.data
import nasx.net.build
import nasx.train.trainer
import nasx.units
from conftest import FASHION_DIR
from nasx.cli.app import app
from nasx.net.complexity import complexity
from nasx.net.spec import NetSpec
from nasx.net.zoo import ZOO
from nasx.study import StudyConfig, StudyError, redact, run_study
from nasx.train.budget import Budget
from study_fakes import curve_train, final_accuracy

runner = CliRunner()
def tiny(**options: str) -> list[str]:
    """A small CPU study's options, with `options` (space="vgg", ...) replacing or adding to them."""
    values = {"space": "resnet", "dataset": "synthetic", "flops": "1M:4M", "epochs": "1", "fraction": "0.5",
              "device": "cpu", **options}
    return [arg for key, value in values.items() for arg in (f"--{key}", value)] + ["--no-references", "--no-report"]


TINY = tiny()


def one_error_line(result, code: int = 2) -> str:
    """The result's exit code is `code`, with exactly one `nasx: error:` line and no traceback; that line."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "Aborted" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("nasx: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def never(*args, **kwargs):
    raise AssertionError("reached work that the checks should have prevented")


def nan_train(spec, dataset, budget, device=None, seed=0, callback=None, *, config=None, test=False, progress=None):
    """Every net diverges (the real trainer's `nan` stop)."""
    result = curve_train(spec, dataset, budget, device, seed, callback, config=config)
    result.reason, result.error = "nan", "loss is nan"
    return result


def test_passwords_are_masked_in_every_form():
    assert redact("postgresql://:S3cretPW@host/db") == "postgresql://:***@host/db"  # empty user
    assert redact("postgresql://u:p@ss@w0rd@host:5432/db") == "postgresql://u:***@host:5432/db"  # raw '@'
    assert redact("postgresql://u:p/w d@host/db") == "postgresql://u:***@host/db"
    assert redact("postgresql://host/db?user=u&password=S3c&x=1") == "postgresql://host/db?user=u&password=***&x=1"
    assert redact("failed for postgresql://:S3cret@h/db and x://u:p@q@r/s") == \
        "failed for postgresql://:***@h/db and x://u:***@r/s"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db" and redact("studies/x.journal") == "studies/x.journal"
    for url, secret in (("postgresql://:S3cretPW@127.0.0.1:1/db", "S3cretPW"),
                        ("postgresql://me:p@ss@w0rd@127.0.0.1:1/db", "w0rd")):
        line = one_error_line(runner.invoke(app, ["report", "x", "--storage", url]))
        assert secret not in line and "ss@" not in line and "***" in line, line


def test_train_out_that_cannot_be_written_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(nasx.train.trainer, "train", never)
    monkeypatch.setattr(nasx.data, "load", never)
    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # a read-only mount, as root sees one too
        if dir is not None and Path(dir) == read_only:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    (tmp_path / "file").write_text("x")
    args = ["train", "resnet20", "--dataset", "synthetic", "--epochs", "1", "--device", "cpu", "--out"]
    line = one_error_line(runner.invoke(app, args + [str(read_only / "sub" / "r.json")]))
    assert "Read-only file system" in line and not (read_only / "sub").exists()
    assert "is a file" in one_error_line(runner.invoke(app, args + [str(tmp_path / "file" / "r.json")]))
    assert "is a folder" in one_error_line(runner.invoke(app, args + [str(tmp_path)]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "ro"] and not list(read_only.iterdir())


def test_train_result_is_kept_when_its_write_fails_after_training(tmp_path, monkeypatch):
    monkeypatch.setattr(nasx.train.trainer, "train", curve_train)
    out = tmp_path / "r.json"
    real_write = Path.write_text

    def write_text(self, *args, **kwargs):  # the disk fills up during training
        if self == out:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    result = runner.invoke(app, ["train", "resnet20", "--dataset", "synthetic", "--epochs", "2", "--device", "cpu",
                                 "--out", str(out)])
    line = one_error_line(result, code=1)
    assert "No space left on device" in line and str(out) in line
    fallback = Path(line.rsplit("the result is in ", 1)[1])
    try:
        record = json.loads(fallback.read_text())
        assert record["target"] == "resnet20" and record["epochs_done"] == 2
        assert f"val accuracy   {100 * record['final_val_acc']:.2f}%" in result.stdout  # printed as well
        assert record["final_val_acc"] == pytest.approx(final_accuracy(NetSpec.from_dict(record["spec"])))
    finally:
        fallback.unlink()
    assert not out.exists()


def test_a_truncated_or_random_dataset_archive_is_one_line_naming_it(tmp_path):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    good = io.BytesIO()
    with tarfile.open(fileobj=good, mode="w:gz") as tar:
        for i in range(4):
            blob = os.urandom(50_000)
            info = tarfile.TarInfo(f"train/c{i}/{i}.png")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    archive = folder / "cifar10-jpeg.tar.gz"
    for content in (good.getvalue()[: len(good.getvalue()) // 2], os.urandom(20_000)):
        archive.write_bytes(content)
        result = runner.invoke(app, ["train", "resnet20", "--dataset", "cifar10", "--data-dir", str(tmp_path),
                                     "--epochs", "1", "--device", "cpu"])
        line = one_error_line(result)
        assert str(archive) in line and "truncated or damaged" in line and "download it again" in line


@pytest.mark.parametrize("device", ["cuda", "tpu"])
def test_a_device_the_machine_lacks_is_refused_before_decoding(device, monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(nasx.data, "load", never)
    monkeypatch.chdir(tmp_path)
    commands = (["train", "resnet20", "--dataset", "synthetic", "--epochs", "1"],
                ["explore", "--space", "resnet", "--dataset", "synthetic", "--trials", "1"],
                ["edf", "--space", "resnet", "-n", "2", "--flops", "1M:4M", "--epochs", "1", "--dataset", "synthetic"],
                ["fidelity", "--space", "resnet", "--dataset", "synthetic"],
                ["bench", "--quick"])
    for args in commands:
        line = one_error_line(runner.invoke(app, args + ["--device", device]))
        assert f"device {device!r}" in line, (args, line)
    assert not list(tmp_path.iterdir())  # no studies/ folder, journal or lock file


def test_a_negative_learning_rate_or_weight_decay_is_refused(monkeypatch):
    monkeypatch.setattr(nasx.data, "load", never)
    base = ["train", "resnet20", "--dataset", "synthetic", "--epochs", "1", "--device", "cpu"]
    assert "learning rate -1.0 must be > 0" in one_error_line(runner.invoke(app, base + ["--lr", "-1"]))
    assert "weight decay -1.0 must be >= 0" in one_error_line(runner.invoke(app, base + ["--weight-decay", "-1"]))
    with pytest.raises(ValueError, match="learning rate 0"):
        nasx.train.TrainConfig(lr=0)


def test_warmup_must_be_a_share_of_the_steps(monkeypatch):
    monkeypatch.setattr(nasx.data, "load", never)
    base = ["train", "resnet20", "--dataset", "synthetic", "--epochs", "1", "--device", "cpu", "--warmup"]
    for bad in ("5", "1", "-0.1"):
        assert "must lie in [0, 1)" in one_error_line(runner.invoke(app, base + [bad]))
    assert nasx.train.TrainConfig(warmup=0.0).warmup == 0.0


def test_report_and_export_out_onto_or_under_a_file_are_refused(tmp_path):
    file = tmp_path / "taken"
    file.write_text("keep me")
    cases = [(["report", "s", "--out", str(file)], "is a file, not a folder"),
             (["report", "s", "--out", str(file / "sub")], "is a file, not a folder"),
             (["export", "s", "--best", "--out", str(file / "net.yaml")], "is a file, not a folder"),
             (["export", "s", "--best", "--out", str(tmp_path)], "the file must end in")]
    for args, message in cases:
        assert message in one_error_line(runner.invoke(app, args + ["--studies-dir", str(tmp_path)])), args
    assert file.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_full_disk_under_the_journal_is_one_line_and_exit_1(tmp_path, monkeypatch):
    from optuna.storages.journal import JournalFileBackend

    monkeypatch.setattr(nasx.train.trainer, "train", curve_train)
    real_append = JournalFileBackend.append_logs

    full = []

    def append_logs(self, logs):  # the disk is full by the time the first trial ends, and stays full
        if full or any(log.get("state") == optuna.trial.TrialState.COMPLETE.value for log in logs):
            full.append(logs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_append(self, logs)

    monkeypatch.setattr(JournalFileBackend, "append_logs", append_logs)
    journal = tmp_path / "s.journal"
    result = runner.invoke(app, ["explore", *TINY, "--trials", "2", "--storage", str(journal), "--study", "full"])
    line = one_error_line(result, code=1)
    assert "No space left on device" in line and str(journal) in line and "run the same command again" in line
    monkeypatch.setattr(JournalFileBackend, "append_logs", real_append)
    study = optuna.load_study(study_name="full", storage=nasx.study.open_storage(str(journal)))
    states = [t.state.name for t in study.trials]  # what was written reads back whole: the trial cut short
    assert states[-1] == "RUNNING" and "COMPLETE" not in states, states


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"Fashion-MNIST idx files not present at {FASHION_DIR}")
def test_a_full_disk_under_the_cache_is_one_line_and_leaves_no_temp_file(tmp_path, monkeypatch, capsys):
    import signal

    import torch

    from nasx.cli.app import main

    cache = tmp_path / "cache"
    monkeypatch.setenv("NASX_CACHE", str(cache))
    monkeypatch.setattr(nasx.train.trainer, "train", never)

    def save(obj, path):  # torch.save on a full disk: a cut file, then an error
        Path(path).write_bytes(b"\0" * 1000)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1152 vs 1046")

    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(nasx.data.cache.shutil, "disk_usage", lambda path: SimpleNamespace(total=0, used=0, free=0))
    monkeypatch.setattr(sys, "argv", ["nasx", "train", "resnet20", "--dataset", "fashion-mnist", "--data-dir",
                                      str(FASHION_DIR.parent), "--epochs", "1", "--device", "cpu"])
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as stop:
            main()
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("nasx: error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "NASX_CACHE" in lines[0]
    assert str(cache / "decoded") in lines[0] and not list((cache / "decoded").iterdir())  # no temp file left


def test_a_proxy_resolution_below_what_nets_accept_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(nasx.train.trainer, "train", never)
    monkeypatch.chdir(tmp_path)
    for side in ("1", "2"):
        line = one_error_line(runner.invoke(app, ["explore", *TINY, "--resolution", side]))
        assert f"{side} px is below the smallest proxy side, 8 px" in line
    line = one_error_line(runner.invoke(app, ["explore", *tiny(space="vgg", dataset="synthetic:32", flops="1M:400M",
                                                                resolution="8")]))
    assert "too small for the space 'vgg'" in line and "at least 32 px" in line, line
    assert not list(tmp_path.iterdir())  # refused after decoding, yet no empty journal left behind
    with pytest.raises(StudyError, match="at least 32 px"):  # VGG's five 2x2 pools need 32 px
        from nasx.net.fit import InputShape
        from nasx.space import load_space
        from nasx.study.config import check_resolution

        check_resolution(StudyConfig(space="vgg", budget=Budget(1, 1.0, resolution=16)), load_space("vgg"),
                         InputShape(32, 3, 10))


def test_a_study_where_every_trial_failed_exits_non_zero(tmp_path, monkeypatch):
    monkeypatch.setattr(nasx.train.trainer, "train", nan_train)
    result = runner.invoke(app, ["explore", *TINY, "--trials", "1", "--storage", str(tmp_path / "s.journal"),
                                 "--study", "nan"])
    line = one_error_line(result, code=1)
    cap = 3 * 1 + 10  # the study stops at max_trials = 3 x trials + 10
    assert f"every trial failed ({cap}), none complete" in line and f"0 complete, 0 pruned, {cap} failed" in result.stdout


@pytest.mark.slow  # 20 s on a shared 2-core CPU: the report draws every figure
def test_report_export_and_fidelity_read_a_read_only_studies_folder(tmp_path, monkeypatch):
    from nasx.experiments.fidelity import FidelityError, load_fidelity

    studies = tmp_path / "studies"
    run_study(StudyConfig(space="resnet", dataset="synthetic", flops=(1_000_000, 4_000_000), budget=Budget(1, 0.5),
                          device="cpu", sampler="random", study="small", trials=2, studies_dir=str(studies)),
              train_fn=curve_train)
    (studies / "small.lock").unlink()
    before = sorted(p.name for p in studies.iterdir())
    real_open, real_mkdir = builtins.open, os.mkdir

    def refuse(path):
        if Path(path).resolve().is_relative_to(studies.resolve()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def ro_open(file, mode="r", *args, **kwargs):  # a read-only mount of studies/
        if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def ro_mkdir(path, *args, **kwargs):
        refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", ro_open)
    monkeypatch.setattr(os, "mkdir", ro_mkdir)
    with pytest.raises(OSError, match="Read-only"):
        open(studies / "probe", "w")
    res = runner.invoke(app, ["report", "small", "--studies-dir", str(studies), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "index.html").is_file()
    res = runner.invoke(app, ["export", "small", "--best", "--studies-dir", str(studies), "--out",
                              str(tmp_path / "net.yaml")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "net.yaml").is_file()
    with pytest.raises(FidelityError, match="no fidelity run 'small'"):  # read, found no run: no lock refused
        load_fidelity("small", storage=str(studies / "small.journal"))
    assert sorted(p.name for p in studies.iterdir()) == before  # nothing written there


def test_a_refused_start_leaves_no_empty_journal(tmp_path, monkeypatch):
    monkeypatch.setattr(nasx.train.trainer, "train", never)
    monkeypatch.chdir(tmp_path)
    line = one_error_line(runner.invoke(app, ["explore", *tiny(flops="1:2"), "--study", "band"]))
    assert "band unreachable" in line
    assert not list(tmp_path.iterdir())  # neither studies/band.journal nor studies/band.lock nor studies/


def test_fidelity_budgets_are_checked_before_decoding(monkeypatch, tmp_path):
    monkeypatch.setattr(nasx.data, "load", never)
    monkeypatch.setattr(nasx.data, "input_shape", never)  # before the dataset is even looked at
    monkeypatch.chdir(tmp_path)
    base = ["fidelity", "--space", "resnet", "--dataset", "synthetic", "--device", "cpu"]
    assert "budget 'x'" in one_error_line(runner.invoke(app, base + ["--proxy", "x"]))
    assert "budget 'y'" in one_error_line(runner.invoke(app, base + ["--reference", "y"]))
    assert "below the smallest proxy side" in one_error_line(runner.invoke(app, base + ["--proxy", "e1-f0.5-r2"]))
    assert not list(tmp_path.iterdir())


def test_every_help_fits_80_columns_without_cutting_a_word():
    from typer.main import get_command

    for args in [["--help"]] + [[name, "--help"] for name in sorted(get_command(app).commands)]:
        result = runner.invoke(app, args, env={"COLUMNS": "80"})
        assert result.exit_code == 0, args
        lines = result.output.splitlines()
        assert max(map(len, lines)) <= 80 and not [line for line in lines if "…" in line], (args, result.output)
    explore = runner.invoke(app, ["explore", "--help"], env={"COLUMNS": "80"}).output
    assert "nasx explore --storage postgresql://USER:PASS@HOST/DB" in explore


# --- issue 26: input from strangers ------------------------------------------------------------------------------


class Py2Pickler(pickle._Pickler):
    """Python 2's cPickle as it wrote the real CIFAR python batches: protocol 2, every str an 8-bit string
    (SHORT_BINSTRING / BINSTRING), numpy's functions under numpy.core."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_str8(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        head = pickle.SHORT_BINSTRING + bytes([len(raw)]) if len(raw) < 256 else pickle.BINSTRING + struct.pack(
            "<i", len(raw))
        self.write(head + raw)
        self.memoize(obj)

    def save_global(self, obj, name=None):
        self.write(pickle.GLOBAL + f"{obj.__module__.replace('numpy._core', 'numpy.core')}\n"
                                   f"{name or obj.__name__}\n".encode())
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = save_str8
    dispatch[type] = dispatch[type(len)] = save_global


def py2_pickle(obj) -> bytes:
    out = io.BytesIO()
    Py2Pickler(out, protocol=2).dump(obj)
    return out.getvalue()


def cifar10_folder(root: Path, n: int, dump) -> Path:
    """A cifar-10-batches-py folder of 5 train batches and a test batch of `n` images each, written by `dump`."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        batch = {"batch_label": f"batch {i}", "labels": [int(v) for v in rng.integers(0, 10, n)],
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": [f"{k}.png" for k in range(n)]}
        (folder / name).write_bytes(dump(batch))
    (folder / "batches.meta").write_bytes(dump({"num_cases_per_batch": n, "num_vis": 3072,
                                                "label_names": [f"class{k}" for k in range(10)]}))
    return folder


@pytest.mark.parametrize("dump", [py2_pickle] + [partial(pickle.dumps, protocol=p) for p in (2, 4, 5)],
                         ids=["python2", "protocol2", "protocol4", "protocol5"])
def test_real_format_cifar_batches_still_load(tmp_path, monkeypatch, dump):
    monkeypatch.setenv("NASX_CACHE", str(tmp_path / "cache"))
    folder = cifar10_folder(tmp_path / "data", 6, dump)
    raw = nasx.data.load_raw("cifar10", data_dir=tmp_path / "data", download=False)
    batch = pickle.loads((folder / "data_batch_2").read_bytes(), encoding="latin1")
    assert tuple(raw.train_x.shape) == (30, 3, 32, 32) and tuple(raw.test_x.shape) == (6, 3, 32, 32)
    assert raw.train_x[6:12].reshape(6, 3072).numpy().tolist() == batch["data"].tolist()
    assert raw.train_y[6:12].tolist() == batch["labels"] and raw.classes == tuple(f"class{k}" for k in range(10))


class Payload:
    """What a hostile neighbour leaves as a batch: unpickling it would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("how", ["whole", "inside", "python2"])
def test_a_crafted_cifar_batch_runs_nothing_and_is_one_line(tmp_path, monkeypatch, how):
    monkeypatch.setenv("NASX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(nasx.train.trainer, "train", never)
    marker = tmp_path / "marker"
    folder = cifar10_folder(tmp_path / "data", 4, partial(pickle.dumps, protocol=2))
    evil = {"whole": lambda: pickle.dumps(Payload(marker)),
            "inside": lambda: pickle.dumps({"data": Payload(marker), "labels": [0]}),
            "python2": lambda: py2_pickle({"labels": [0], "data": Payload(marker)})}[how]()
    (folder / "data_batch_3").write_bytes(evil)
    result = runner.invoke(app, ["train", "resnet20", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"),
                                 "--no-download", "-e", "1", "--device", "cpu"])
    line = one_error_line(result)
    assert not marker.exists()
    assert "data_batch_3 is not a CIFAR batch" in line and "builtins.exec" in line, line


def test_a_damaged_or_wrongly_shaped_cifar_batch_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("NASX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(nasx.train.trainer, "train", never)
    folder = cifar10_folder(tmp_path / "data", 4, partial(pickle.dumps, protocol=2))
    args = ["train", "resnet20", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--no-download",
            "-e", "1", "--device", "cpu"]
    good = (folder / "test_batch").read_bytes()
    for blob, message in ((good[: len(good) // 2], "test_batch is not a CIFAR batch (pickle data was truncated)"),
                          (pickle.dumps([1, 2, 3]), "a list, not a mapping"),
                          (pickle.dumps({"data": "text", "labels": "abc"}), "truncated or damaged"),
                          (pickle.dumps({"data": np.zeros(5, np.uint8), "labels": [0]}), "truncated or damaged")):
        (folder / "test_batch").write_bytes(blob)
        line = one_error_line(runner.invoke(app, args))
        assert message in line and str(folder) in line, line


def command_options(kind):
    """(command, option) for every option of every command whose value is a `kind` (int or float)."""
    from typer.main import get_command

    return [(name, param) for name, cmd in sorted(get_command(app).commands.items()) for param in cmd.params
            if param.type_descriptor.annotation in (kind, Optional[kind])]


def test_every_float_option_refuses_nan_and_inf_naming_it(monkeypatch, tmp_path):
    monkeypatch.setattr(nasx.data, "load", never)
    monkeypatch.setattr(nasx.data, "input_shape", never)
    monkeypatch.chdir(tmp_path)
    options = command_options(float)
    assert len(options) == 19 and ("fidelity", "--min-tau") in {(c, p.opts[0]) for c, p in options}
    for command, param in options:
        for bad in ("nan", "-inf"):
            line = one_error_line(runner.invoke(app, [command, param.opts[0], bad]))
            assert f"'{param.opts[0]}'" in line and ("finite" in line or "must be" in line), (command, line)
    assert not list(tmp_path.iterdir())


def test_every_whole_number_option_has_a_floor_and_refuses_below_it(monkeypatch, tmp_path):
    monkeypatch.setattr(nasx.data, "load", never)
    monkeypatch.chdir(tmp_path)
    options = command_options(int)
    for command, param in options:
        assert param.min is not None and param.min >= 0, (command, param.opts)  # seeds, counts, 0 for "off"
        line = one_error_line(runner.invoke(app, [command, param.opts[0], str(int(param.min) - 1)]))
        assert f"'{param.opts[0]}'" in line, (command, line)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, option, message", [
    (["ablate", "--dry-run", "--epochs", "0"], "--epochs", "greater than or equal to 1"),
    (["ablate", "--dry-run", "--factor", "0"], "--factor", "0 must be > 0"),
    (["ablate", "--dry-run", "--factor", "-2"], "--factor", "-2 must be > 0"),
    (["ablate", "--dry-run", "--factor", "nan"], "--factor", "nan is not a finite number"),
    (["explore", "--space", "resnet", "--dataset", "synthetic", "--seed", "-1"], "--seed", "greater than or equal to 0"),
    (["sample", "--space", "resnext", "--seed", "-1"], "--seed", "greater than or equal to 0"),
    (["explore", "--space", "resnet", "--dataset", "synthetic", "--timeout", "nan"], "--timeout", "not a finite"),
    (["train", "resnet20", "--dataset", "synthetic", "--val-size", "nan", "-e", "1"], "--val-size", "not a finite"),
    (["train", "resnet20", "--dataset", "synthetic", "--val-size", "1.5", "-e", "1"], "--val-size",
     "1.5 is neither a share below 1 nor a whole number of images"),
    (["explore", "--space", "resnet", "--dataset", "synthetic", "--val-size", "2.5"], "--val-size", "neither a share"),
    (["fidelity", "--dataset", "synthetic", "--min-tau", "nan"], "--min-tau", "nan is not a finite number"),
    (["fidelity", "--dataset", "synthetic", "--min-tau", "2"], "--min-tau", "2 must be <= 1"),
    (["explore", "--dataset", "synthetic", "--flops", "1e400:1e401"], "--flops", "'1e400': not a finite count"),
    (["sample", "--space", "resnext", "--flops", "1M:1e999"], "flops", "'1e999': not a finite count"),
    (["export", "s", "--best", "--max-flops", "1e400", "-o", "net.yaml"], "--max-flops", "not a finite count"),
    (["ablate", "--dry-run", "--values", "2,nan"], "--values", "each must be a finite number > 0"),
    (["ablate", "--dry-run", "--vary", "width", "--values", "0"], "--values", "each must be a finite number > 0"),
    (["simulate", "--rungs", "1/0,1"], "--rungs", "a zero denominator"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_an_option_out_of_range_is_one_line_naming_it_before_any_work(args, option, message, monkeypatch, tmp_path):
    monkeypatch.setattr(nasx.data, "load", never)
    monkeypatch.setattr(nasx.data, "input_shape", never)
    monkeypatch.chdir(tmp_path)
    line = one_error_line(runner.invoke(app, args))
    assert option in line and message in line, line
    assert not list(tmp_path.iterdir())


def test_an_empty_study_name_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(nasx.data, "load", never)
    monkeypatch.chdir(tmp_path)
    line = one_error_line(runner.invoke(app, ["explore", *TINY, "--study", ""]))
    assert "study: '' is an empty name" in line and not list(tmp_path.iterdir())


def test_a_proxy_side_beyond_the_machines_memory_is_refused_from_the_counts(monkeypatch, tmp_path):
    monkeypatch.setattr(nasx.train.trainer, "train", never)
    monkeypatch.setattr(nasx.data.Dataset, "resized", never)
    monkeypatch.chdir(tmp_path)
    line = one_error_line(runner.invoke(app, ["explore", *TINY, "--resolution", "100000", "--batch-size", "2"]))
    assert "resolution: 100000 px needs at least" in line and "give a smaller side (--resolution" in line, line
    raw = nasx.data.load_raw("synthetic")
    images = len(raw.train_x) + len(raw.test_x)  # 3 x 100000^2 bytes each
    assert f"(the images resized {nasx.units.human(images * 3 * 10**10)}B, weights " in line, line
    assert not list(tmp_path.iterdir())


def test_a_net_beyond_the_machines_memory_is_refused_before_it_is_built(monkeypatch, tmp_path):
    monkeypatch.setattr(nasx.train.trainer, "train", never)
    monkeypatch.setattr(nasx.net.build, "build", never)
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"stages": [{"depth": 1000, "width": 100_000, "block": {"branch": "plain"}}]}))
    line = one_error_line(runner.invoke(app, ["train", str(huge), "--dataset", "synthetic", "-e", "1",
                                              "--device", "cpu"]))
    params = complexity(NetSpec.from_json(huge.read_text()).replace(num_classes=10)).params
    assert f"needs at least" in line and f"weights {nasx.units.human(4 * params)}B" in line, line


def spec_and_space_files(folder: Path) -> dict[str, Path]:
    """Files that are not what a spec, space or study option wants: binary, deeply nested YAML and JSON, the lines
    of an Optuna journal (a foreign JSON-lines file), two nets in one .jsonl."""
    files = {"binary.yaml": bytes(range(256)) * 8, "binary.json": bytes(range(128, 256)) * 16,
             # past what YAML's composer can recurse (~500 levels): the 5,000 read the same, 8x slower
             "deep.yaml": b"a: " + b"[" * 600 + b"]" * 600, "deep.json": b"[" * 5000 + b"]" * 5000,
             "journal.jsonl": b'{"op_code": 0, "worker_id": "w", "study_name": "s"}\n{"op_code": 4, "study_id": 0}\n',
             "nets.jsonl": (NetSpec.from_dict(ZOO["resnet20"].make().to_dict()).to_json() + "\n") .encode() * 2}
    out = {}
    for name, content in files.items():
        (folder / name).write_bytes(content)
        out[name] = folder / name
    return out


@pytest.mark.parametrize("args, name, message", [
    (["sample", "--space", "{}"], "binary.yaml", "not a text file (byte 128 is not UTF-8)"),
    (["count", "{}"], "binary.json", "not a text file (byte 0 is not UTF-8)"),
    (["count", "{}"], "binary.yaml", "not a text file"),
    (["ablate", "--dry-run", "--base", "{}"], "binary.yaml", "not a text file"),
    (["explore", "--dataset", "synthetic", "--config", "{}"], "binary.yaml", "not a text file"),
    (["explore", "--dataset", "synthetic", "--space", "{}"], "deep.yaml", "nested too deeply"),
    (["sample", "--space", "{}"], "deep.yaml", "nested too deeply"),
    (["count", "{}"], "deep.yaml", "nested too deeply"),
    (["count", "{}"], "deep.json", "nested too deeply"),
    (["explore", "--dataset", "synthetic", "--config", "{}"], "deep.yaml", "nested too deeply"),
    (["count", "{}"], "journal.jsonl", "holds 2 lines; a spec file is one net"),
    (["train", "{}", "--dataset", "synthetic", "-e", "1"], "journal.jsonl", "holds 2 lines"),
    (["count", "{}"], "nets.jsonl", "holds 2 lines; a spec file is one net"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else v if isinstance(v, str) and "." in v else None)
def test_a_file_that_is_not_a_spec_space_or_study_file_is_one_line_naming_it(args, name, message, monkeypatch,
                                                                             tmp_path):
    monkeypatch.setattr(nasx.data, "load", never)
    monkeypatch.chdir(tmp_path)
    files = spec_and_space_files(tmp_path)
    before = {p: p.read_bytes() for p in files.values()}
    line = one_error_line(runner.invoke(app, [a.replace("{}", str(files[name])) for a in args]))
    assert f"{files[name]}: " in line and message in line, line
    assert {p: p.read_bytes() for p in files.values()} == before and sorted(tmp_path.iterdir()) == sorted(before)


@pytest.mark.parametrize("content, message", [
    ("", "empty; a study file is a mapping of settings"),
    ("timeout: .nan\n", "timeout: nan must be a finite number"),
    ("objectives: 5\n", "objectives: 5 must be a list of names"),
    ("fraction: half\n", "budget fraction 'half': must be a number in (0, 1]"),
    ("budget: half\n", "budget 'half': write e<epochs>-f<fraction>"),
    ("budget: e1-f0.5\nepochs: 2\n", "budget: give it as budget: e1-f0.5 or by its parts (epochs), not both"),
    ("seed: -1\n", "seed: -1 must be a whole number >= 0"),
    ("space: 5\n", "space: 5 must be text"),
    ("study: ''\n", "study: '' is an empty name"),
])
def test_an_empty_or_wrongly_typed_study_file_is_one_line(content, message, monkeypatch, tmp_path):
    monkeypatch.setattr(nasx.data, "load", never)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study.yaml").write_text(content)
    line = one_error_line(runner.invoke(app, ["explore", "--dataset", "synthetic", "--config", "study.yaml"]))
    assert f"study.yaml: {message}" in line, line
    assert [p.name for p in tmp_path.iterdir()] == ["study.yaml"]
