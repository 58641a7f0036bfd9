"""nasx.data: every source format loads to the right uint8 tensors, the cache works, splits are stratified,
disjoint and seeded, and a missing dataset is one clear message without any network call."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CIFAR10_ARCHIVE, FASHION_DIR
from nasx import data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------------
# Tiny generated sources


def _images(n: int, classes: int, seed: int, side: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 3, side, side), dtype=np.uint8)
    y = np.arange(n) % classes
    return x, y


def _write_cifar10_batches(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A torchvision-layout cifar-10-batches-py with 5 x 20 train and 10 test 32x32 images."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    trx, try_ = _images(100, 10, 1, 32)
    tex, tey = _images(10, 10, 2, 32)
    for i in range(5):
        part = slice(20 * i, 20 * (i + 1))
        batch = {"data": trx[part].reshape(20, -1), "labels": try_[part].tolist(), "batch_label": f"batch {i}"}
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch))
    (folder / "test_batch").write_bytes(pickle.dumps({"data": tex.reshape(10, -1), "labels": tey.tolist()}))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_cases_per_batch": 20}))
    return trx, try_, tex, tey


def _save_png(path: Path, chw: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(chw.transpose(1, 2, 0)).save(path)


def _write_imagefolder(root: Path, classes=("cat", "dog", "emu")) -> dict:
    """train/<class>/*.png (4 each) and test/<class>/*.png (2 each), 8x8 RGB, lossless."""
    out = {}
    for split, per in (("train", 4), ("test", 2)):
        x, _ = _images(per * len(classes), 1, 7 if split == "train" else 8)
        k = 0
        for c in classes:
            for i in range(per):
                _save_png(root / split / c / f"{i:03d}.png", x[k])
                out[(split, c, i)] = x[k]
                k += 1
    return out


def _tar_gz(folder: Path, dest: Path, arcname: str) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return dest


# ---------------------------------------------------------------------------------------------
# Real data (../shared/datasets)


@pytest.mark.slow
def test_cifar10_jpeg_archive_loads(cifar10_raw):
    raw = cifar10_raw
    assert raw.train_x.shape == (50000, 3, 32, 32) and raw.train_x.dtype == torch.uint8
    assert raw.test_x.shape == (10000, 3, 32, 32) and raw.test_y.shape == (10000,)
    assert raw.classes == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert torch.bincount(raw.train_y).tolist() == [5000] * 10
    assert torch.bincount(raw.test_y).tolist() == [1000] * 10
    # real photographs, not a constant: CIFAR-10's channel means are near 0.49, 0.48, 0.45
    mean, std = data.dataset.channel_stats(raw.train_x)
    assert mean == pytest.approx((0.491, 0.482, 0.447), abs=0.01)
    assert all(0.2 < s < 0.3 for s in std)


@pytest.mark.slow
def test_cifar10_second_load_is_cached(cifar10_raw, nasx_offline_cache):
    cached = list((nasx_offline_cache / "decoded").glob("cifar10-*.pt"))
    assert len(cached) == 1
    t = time.perf_counter()
    again = data.load_raw("cifar10", data_dir=CIFAR10_ARCHIVE.parent)
    seconds = time.perf_counter() - t
    assert seconds < 3.0, f"cache hit took {seconds:.2f} s"
    assert torch.equal(again.train_x[:100], cifar10_raw.train_x[:100])
    assert again.content_hash == cifar10_raw.content_hash


@pytest.mark.slow
def test_cifar10_found_via_nasx_data_and_data_dir_wins(cifar10_raw, tmp_path, monkeypatch):
    monkeypatch.setenv("NASX_DATA", str(CIFAR10_ARCHIVE.parent.parent))  # holds cifar10/<archive>
    assert data.load_raw("cifar10").content_hash == cifar10_raw.content_hash
    trx, *_ = _write_cifar10_batches(tmp_path)
    raw = data.load_raw("cifar10", data_dir=tmp_path)  # --data-dir comes before NASX_DATA
    assert raw.train_x.shape[0] == 100 and torch.equal(raw.train_x, torch.from_numpy(trx))


@pytest.mark.slow
def test_split_of_real_cifar10(cifar10, cifar10_raw):
    ds = cifar10
    assert (len(ds.train_y), len(ds.val_y), len(ds.test_y)) == (45000, 5000, 10000)
    assert torch.bincount(ds.val_y).tolist() == [500] * 10
    assert torch.bincount(ds.train_y).tolist() == [4500] * 10
    assert len(ds.split_hash) == 12
    assert data.split(cifar10_raw, 5000, 0).split_hash == ds.split_hash
    assert data.split(cifar10_raw, 5000, 1).split_hash != ds.split_hash


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"Fashion-MNIST idx files not present at {FASHION_DIR}")
def test_fashion_mnist_idx_loads():
    ds = data.load("fashion-mnist", data_dir=FASHION_DIR.parent, val_size=6000, seed=1)
    assert ds.train_x.shape == (54000, 1, 28, 28) and ds.train_x.dtype == torch.uint8
    assert ds.test_x.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.val_y).tolist() == [600] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert ds.in_channels == 1 and ds.resolution == 28
    assert 0.25 < ds.mean[0] < 0.32  # Fashion-MNIST's mean is about 0.286


# ---------------------------------------------------------------------------------------------
# Generated sources


def test_cifar10_batches_py_folder_and_its_archive(tmp_path):
    trx, try_, tex, tey = _write_cifar10_batches(tmp_path / "src")
    raw = data.load_raw("cifar10", data_dir=tmp_path / "src")
    assert torch.equal(raw.train_x, torch.from_numpy(trx)) and torch.equal(raw.train_y, torch.from_numpy(try_))
    assert torch.equal(raw.test_x, torch.from_numpy(tex)) and raw.test_y.tolist() == tey.tolist()
    assert raw.classes[1] == "automobile"
    # torchvision's cifar-10-python.tar.gz, read without extracting
    _tar_gz(tmp_path / "src" / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    (tmp_path / "arch").mkdir()
    os.replace(tmp_path / "cifar-10-python.tar.gz", tmp_path / "arch" / "cifar-10-python.tar.gz")
    from_tar = data.load_raw("cifar10", data_dir=tmp_path / "arch")
    assert torch.equal(from_tar.train_x, raw.train_x) and from_tar.content_hash == raw.content_hash


def test_cifar100_python_folder(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    trx, try_ = _images(40, 20, 3, 32)
    tex, tey = _images(20, 20, 4, 32)
    coarse = lambda y: (np.asarray(y) // 5).tolist()  # noqa: E731
    (folder / "train").write_bytes(pickle.dumps({"data": trx.reshape(40, -1), "fine_labels": try_.tolist(),
                                                  "coarse_labels": coarse(try_)}))
    (folder / "test").write_bytes(pickle.dumps({"data": tex.reshape(20, -1), "fine_labels": tey.tolist(),
                                                 "coarse_labels": coarse(tey)}))
    names = [f"fine{i:02d}" for i in range(20)]
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": names, "coarse_label_names": ["c"] * 4}))
    ds = data.load("cifar100", data_dir=tmp_path, val_size=20, seed=0)
    assert ds.num_classes == 20 and ds.classes == tuple(names)
    assert torch.bincount(ds.val_y, minlength=20).tolist() == [1] * 20  # stratified: one of each class
    raw = data.load_raw("cifar100", data_dir=tmp_path)
    assert torch.equal(raw.train_x, torch.from_numpy(trx)) and raw.train_y.tolist() == try_.tolist()


def test_imagefolder_and_its_tar_gz(tmp_path):
    truth = _write_imagefolder(tmp_path / "pets")
    raw = data.load_raw(f"imagefolder:{tmp_path / 'pets'}")
    assert raw.classes == ("cat", "dog", "emu")
    assert raw.train_x.shape == (12, 3, 8, 8) and raw.test_x.shape == (6, 3, 8, 8)
    assert raw.train_y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert np.array_equal(raw.train_x[5].numpy(), truth[("train", "dog", 1)])  # PNG is lossless
    assert np.array_equal(raw.test_x[4].numpy(), truth[("test", "emu", 0)])
    archive = _tar_gz(tmp_path / "pets", tmp_path / "pets.tar.gz", "pets")
    from_tar = data.load_raw(f"imagefolder:{archive}")
    assert from_tar.content_hash == raw.content_hash and from_tar.classes == raw.classes


def test_imagefolder_without_test_split_and_cifar10_as_imagefolder(tmp_path):
    truth = _write_imagefolder(tmp_path / "tree")
    flat = tmp_path / "tree" / "train"  # <class>/* directly: all training, no test set
    raw = data.load_raw(f"imagefolder:{flat}")
    assert raw.train_x.shape[0] == 12 and raw.test_x is None
    # cifar10 given as an image folder under --data-dir
    raw10 = data.load_raw("cifar10", data_dir=tmp_path / "tree")
    assert raw10.test_x.shape[0] == 6 and np.array_equal(raw10.train_x[0].numpy(), truth[("train", "cat", 0)])


def test_synthetic_is_deterministic_and_sized():
    a, b = data.load("synthetic", val_size=200, seed=3), data.load("synthetic", val_size=200, seed=3)
    assert torch.equal(a.train_x, b.train_x) and a.split_hash == b.split_hash
    assert a.train_x.shape == (1800, 3, 16, 16) and a.test_x.shape == (500, 3, 16, 16)
    assert data.load("synthetic:32", val_size=0).train_x.shape == (2000, 3, 32, 32)


def test_input_shape_is_read_without_decoding_and_equals_the_decoded_input(tmp_path, monkeypatch):
    from PIL import Image

    _write_cifar10_batches(tmp_path / "c10")
    _write_imagefolder(tmp_path / "pets")  # 8x8 RGB, 3 classes, a test split
    archive = _tar_gz(tmp_path / "pets", tmp_path / "pets.tar.gz", "pets")
    for c in ("a", "b"):  # a flat grey image folder: 12x12 L, 2 classes
        (tmp_path / "grey" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((12, 12), 40 * i, np.uint8), mode="L").save(tmp_path / "grey" / c / f"{i}.png")
    cases = {("cifar10", tmp_path / "c10"): (32, 3, 10), (f"imagefolder:{tmp_path / 'pets'}", None): (8, 3, 3),
             (f"imagefolder:{archive}", None): (8, 3, 3), (f"imagefolder:{tmp_path / 'grey'}", None): (12, 1, 2),
             ("cifar10", tmp_path / "pets"): (8, 3, 3),  # cifar10 as an image folder: not the table's 32 px
             ("synthetic:24", None): (24, 3, 10)}

    def never(*args, **kwargs):
        raise AssertionError("decoded")

    with monkeypatch.context() as m:
        m.setattr(data.loading, "read_source", never)
        m.setattr(data.formats, "_decode_all", never)
        probed = {case: data.input_shape(case[0], data_dir=case[1]) for case in cases}
    for (name, where), want in cases.items():
        shape = probed[(name, where)]
        assert (shape.resolution, shape.in_channels, shape.num_classes) == want, name
        assert data.load(name, data_dir=where, val_size=0).input == shape  # the decode agrees
    monkeypatch.setattr(data.formats, "probe_input", never)  # decoded now: the cache answers, pixels unread
    assert data.input_shape(f"imagefolder:{archive}") == probed[(f"imagefolder:{archive}", None)]
    Image.fromarray(np.zeros((6, 9, 3), np.uint8)).save(tmp_path / "grey" / "a" / "0.png")  # the first image, 9x6
    monkeypatch.undo()
    with pytest.raises(data.DataError, match="images are 9x6; nasx needs square images"):
        data.input_shape(f"imagefolder:{tmp_path / 'grey'}")
    with pytest.raises(data.DataNotFound, match="does not exist"):
        data.input_shape(f"imagefolder:{tmp_path / 'missing'}")


def test_content_cache_is_refreshed_when_the_source_changes(tmp_path):
    _write_cifar10_batches(tmp_path)
    first = data.load_raw("cifar10", data_dir=tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    blob = pickle.loads(batch.read_bytes())
    blob["data"] = np.zeros_like(blob["data"])
    batch.write_bytes(pickle.dumps(blob))
    os.utime(batch, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    second = data.load_raw("cifar10", data_dir=tmp_path)
    assert second.content_hash != first.content_hash and int(second.train_x[:20].sum()) == 0


# ---------------------------------------------------------------------------------------------
# Splits


def _indexed_raw(n_per_class=(30, 50, 20)) -> data.Raw:
    """Image i holds the number i in its pixels, so identity is checkable after a split."""
    y = np.concatenate([np.full(k, c) for c, k in enumerate(n_per_class)])
    n = len(y)
    x = np.zeros((n, 1, 4, 4), dtype=np.uint8)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return data.dataset.raw_from("indexed", x, y, None, None, ["a", "b", "c"], "test")


def _ids(x: torch.Tensor) -> set[int]:
    return set((x[:, 0, 0, 0].long() + 256 * x[:, 0, 0, 1].long()).tolist())


def test_split_is_disjoint_stratified_and_seeded():
    raw = _indexed_raw()
    ds = data.split(raw, 20, seed=5)
    train_ids, val_ids = _ids(ds.train_x), _ids(ds.val_x)
    assert not train_ids & val_ids and len(train_ids | val_ids) == 100
    assert torch.bincount(ds.val_y).tolist() == [6, 10, 4]  # 20% of 30/50/20
    again = data.split(raw, 20, seed=5)
    assert _ids(again.val_x) == val_ids and again.split_hash == ds.split_hash
    other = data.split(raw, 20, seed=6)
    assert _ids(other.val_x) != val_ids and other.split_hash != ds.split_hash
    # the labels travel with their images
    assert torch.equal(ds.val_y, raw.train_y[ds.val_indices])


def test_split_sizes_fraction_zero_and_rounding():
    raw = _indexed_raw((7, 7, 7))
    assert len(data.split(raw, 0.5, 0).val_y) == 10  # round(0.5 * 21)
    zero = data.split(raw, 0, 0)
    assert len(zero.val_y) == 0 and len(zero.train_y) == 21
    odd = data.split(raw, 4, 0)  # quotas 4/3 each: the remainder goes to the lowest class index
    assert torch.bincount(odd.val_y, minlength=3).tolist() == [2, 1, 1]
    with pytest.raises(data.DataError):
        data.split(raw, 21, 0)


def test_channel_stats_match_direct_computation():
    x = torch.randint(0, 256, (50, 3, 5, 5), dtype=torch.uint8)
    mean, std = data.dataset.channel_stats(x)
    f = x.double() / 255
    assert mean == pytest.approx(f.mean(dim=(0, 2, 3)).tolist(), abs=1e-6)
    assert std == pytest.approx(f.std(dim=(0, 2, 3), unbiased=False).tolist(), abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Missing data: one line, no traceback, no network


@pytest.fixture
def no_network(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("nasx tried the network")

    monkeypatch.setattr("urllib.request.urlopen", refuse)
    return calls


def test_a_connection_to_another_host_is_refused_at_once():
    """The suite's guard (conftest.offline_sockets): an address off this machine fails at once; loopback does not."""
    import socket
    import time

    started = time.perf_counter()
    with pytest.raises(OSError, match="a test tried the network"):
        socket.create_connection(("192.0.2.1", 80), timeout=5)  # TEST-NET-1: never routed
    assert time.perf_counter() - started < 1
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with socket.create_connection(server.getsockname(), timeout=5):
        pass
    server.close()


def test_missing_dataset_is_one_clear_line(tmp_path, no_network, monkeypatch):
    monkeypatch.setenv("NASX_DATA", str(tmp_path))
    with pytest.raises(data.DataNotFound) as info:
        data.load("cifar100")
    message = str(info.value)
    assert "\n" not in message
    assert "cifar100 not found" in message and str(tmp_path) in message and "(NASX_DATA)" in message
    assert "(cache)" in message and "--data-dir" in message and "NASX_OFFLINE=1" in message
    assert not no_network


def test_a_given_data_dir_must_exist_and_is_the_only_place_looked_in(tmp_path, no_network, monkeypatch):
    monkeypatch.setenv("NASX_DATA", str(tmp_path))  # would hold the data: must not be used instead
    with pytest.raises(data.DataNotFound, match="no such folder"):
        data.locate("cifar10", data_dir=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataNotFound) as info:
        data.locate("cifar100", data_dir=tmp_path / "empty")
    assert "(NASX_DATA)" not in str(info.value) and str(tmp_path / "empty") in str(info.value)
    assert not no_network


def test_no_download_flag_also_prevents_the_network(tmp_path, monkeypatch, no_network):
    monkeypatch.delenv("NASX_OFFLINE")
    with pytest.raises(data.DataNotFound, match="--no-download"):
        data.load("fashion-mnist", data_dir=tmp_path, download=False)
    assert not no_network


def test_unknown_dataset_and_bad_imagefolder(tmp_path):
    with pytest.raises(data.DataError, match="unknown dataset 'mnist3d'"):
        data.load("mnist3d")
    with pytest.raises(data.DataNotFound, match="does not exist"):
        data.load(f"imagefolder:{tmp_path / 'missing'}")


def test_download_once_with_checksum_and_progress(tmp_path, monkeypatch):
    """The download path, served from a local file:// URL: md5-checked, reported, then found locally."""
    import hashlib

    _write_cifar10_batches(tmp_path / "src")
    archive = _tar_gz(tmp_path / "src" / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.delenv("NASX_OFFLINE")
    monkeypatch.setenv("NASX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(data.sources.DOWNLOADS, "cifar10", [(archive.as_uri(), "0" * 32)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="md5"):
        data.load_raw("cifar10", data_dir=tmp_path / "empty")
    monkeypatch.setitem(data.sources.DOWNLOADS, "cifar10", [(archive.as_uri(), md5)])
    events = []
    raw = data.load_raw("cifar10", data_dir=tmp_path / "empty", progress=lambda *e: events.append(e))
    assert raw.train_x.shape == (100, 3, 32, 32)
    assert (tmp_path / "cache" / "data" / "cifar10" / "cifar-10-python.tar.gz").is_file()
    assert events and events[-1][0] == "download cifar-10-python.tar.gz" and events[-1][1] == archive.stat().st_size
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: pytest.fail("downloaded twice"))
    assert data.load_raw("cifar10", data_dir=tmp_path / "empty").content_hash == raw.content_hash
