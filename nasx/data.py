"""Datasets as uint8 tensors: found locally (or downloaded once), decoded once, cached, split into train/val/test.

Images are stored **NCHW uint8** (N x C x H x W, values 0..255) and labels int64; the trainer converts
to float, normalizes with the training split's per-channel mean/std and changes the memory format on
the device. Nothing here knows about models.

Where a dataset is looked for, in order: `data_dir` (the CLI's `--data-dir`), `$NASX_DATA`,
Debian's /usr/share/datasets (Fashion-MNIST), then `$NASX_CACHE/data` (default ~/.cache/nasx/data),
where downloads go. A download happens only when nothing local is found and neither `download=False`
(`--no-download`) nor `NASX_OFFLINE=1` forbids it. Decoded arrays are cached under
`$NASX_CACHE/decoded/`, keyed by the source's path, size and mtime, so a second load is a file read.

Sources understood:
  cifar10        torchvision's `cifar-10-batches-py/` (or its `cifar-10-python.tar.gz`), an image folder
                 `train/<class>/*`, `test/<class>/*`, or a `.tar.gz` of one;
  cifar100       torchvision's `cifar-100-python/` (or `cifar-100-python.tar.gz`; fine labels), or an image folder;
  fashion-mnist  the four idx files (`*-idx?-ubyte[.gz]`);
  imagefolder:P  a folder `P/train/<class>/*` [`P/test/<class>/*`], or `P/<class>/*`, or a .tar.gz of one;
  synthetic      small (2000 train, 500 test, 10 classes, 16x16 RGB; synthetic:32 for 32x32), deterministic,
                 learnable; for unit tests and benchmarks without data.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from .errors import NasxError
from .net.fit import InputShape

__all__ = [
    "DATASETS",
    "DataError",
    "DataNotFound",
    "Dataset",
    "Raw",
    "Progress",
    "cache_dir",
    "load",
    "load_raw",
    "locate",
    "Located",
    "split",
    "stratified_indices",
]

DATASETS = ("cifar10", "cifar100", "fashion-mnist", "imagefolder:PATH", "synthetic[:SIDE]")

# progress(what, done, total): e.g. ("download cifar-10-python.tar.gz", bytes, total_bytes) or
# ("decode", images, total_images); total may be 0 when unknown.
Progress = Callable[[str, int, int], None]

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
_CACHE_VERSION = 1


class DataError(NasxError, RuntimeError):
    """A dataset cannot be read; the message is one line meant for the user."""


class DataNotFound(DataError):
    """No copy of a dataset anywhere nasx may look (and no download allowed)."""


# ---------------------------------------------------------------------------------------------
# What a loaded dataset is


@dataclass(frozen=True)
class Raw:
    """A dataset's official train and test sets (uint8 NCHW images, int64 labels), before any split."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: Optional[torch.Tensor]
    test_y: Optional[torch.Tensor]
    classes: tuple[str, ...]
    source: str  # where it was read from
    content_hash: str  # sha256 prefix over all images and labels


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test splits as uint8 NCHW tensors plus what a trainer needs to know.

    `mean` and `std` are per-channel statistics of the training split on the 0..1 scale.
    `split_hash` identifies the exact split (data content, validation indices); store it with results.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: Optional[torch.Tensor]
    test_y: Optional[torch.Tensor]
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    split_hash: str
    source: str
    seed: int = 0
    val_indices: Optional[torch.Tensor] = field(default=None, repr=False)  # into the official train set

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def input(self) -> InputShape:
        """What a net fitted to this dataset takes (see nasx.net.fit)."""
        return InputShape(self.resolution, self.in_channels, self.num_classes)

    @property
    def device(self) -> torch.device:
        return self.train_x.device

    def to(self, device: str | torch.device) -> "Dataset":
        """The same dataset with every tensor on `device` (still uint8): do it once per process."""
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return replace(self, train_x=move(self.train_x), train_y=move(self.train_y), val_x=move(self.val_x),
                       val_y=move(self.val_y), test_x=move(self.test_x), test_y=move(self.test_y))

    def resized(self, resolution: int) -> "Dataset":
        """The same splits at `resolution` x `resolution` (antialiased bilinear, rounded back to uint8): a proxy
        budget's input; the split hash gains `@<resolution>` so records say which images a net saw."""
        if resolution == self.resolution:
            return self
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
            raise DataError(f"resolution {resolution!r}: must be a whole number >= 1")

        def resize(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            if t is None:
                return None
            out = torch.empty((len(t), t.shape[1], resolution, resolution), dtype=torch.uint8, device=t.device)
            for i in range(0, len(t), 4096):  # bounded float memory
                chunk = torch.nn.functional.interpolate(t[i:i + 4096].float(), size=(resolution, resolution),
                                                        mode="bilinear", antialias=True, align_corners=False)
                out[i:i + 4096] = chunk.round_().clamp_(0, 255).to(torch.uint8)
            return out

        return replace(self, train_x=resize(self.train_x), val_x=resize(self.val_x), test_x=resize(self.test_x),
                       split_hash=f"{self.split_hash.split('@')[0]}@{resolution}")

    def describe(self) -> dict:
        """JSON-able summary (sizes, shape, split hash, source)."""
        return {
            "name": self.name, "source": self.source, "split_hash": self.split_hash, "seed": self.seed,
            "train": len(self.train_y), "val": len(self.val_y),
            "test": None if self.test_y is None else len(self.test_y),
            "classes": self.num_classes, "shape": [self.in_channels, self.resolution, self.resolution],
        }


# ---------------------------------------------------------------------------------------------
# Public entry points


def cache_dir() -> Path:
    """$NASX_CACHE, default ~/.cache/nasx."""
    return Path(os.environ.get("NASX_CACHE") or Path.home() / ".cache" / "nasx").expanduser()


def load(
    name: str,
    *,
    data_dir: str | Path | None = None,
    val_size: int | float = 5000,
    seed: int = 0,
    download: bool = True,
    progress: Progress | None = None,
) -> Dataset:
    """Load `name` (see DATASETS) and hold out a stratified, seeded validation split of `val_size`
    images (an int) or of that fraction of the training set (a float < 1); 0 keeps all for training."""
    return split(load_raw(name, data_dir=data_dir, download=download, progress=progress), val_size, seed)


@dataclass(frozen=True)
class Located:
    """Where a dataset will come from: a file or folder (`path`, `kind`), a download, or generated data."""

    key: str
    path: Optional[Path]
    kind: str  # a reader kind, "download" or "synthetic"


def locate(name: str, *, data_dir: str | Path | None = None, download: bool = True) -> Located:
    """Find `name` without decoding anything; DataError (one line, what was looked at) if it cannot be had.

    A `data_dir` that was given must exist, and is then looked in before nasx's own download cache only
    (never silently replaced by $NASX_DATA or the system's copy)."""
    key = name.strip()
    if key == "synthetic" or key.startswith("synthetic:"):
        side = key.partition(":")[2]
        if side and not (side.isdigit() and 8 <= int(side) <= 64):
            raise DataError(f"synthetic:{side}: the image side must be an integer in 8..64")
        return Located(key, None, "synthetic")
    if key.startswith("imagefolder:"):
        path = Path(key.split(":", 1)[1]).expanduser()
        if not path.exists():
            raise DataNotFound(f"imagefolder: {path} does not exist (give a folder with train/<class>/* "
                               "[and test/<class>/*], or <class>/*, or a .tar.gz of one)")
        return Located(key, path, "imagefolder")
    if key not in _FINDERS:
        raise DataError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)})")
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataNotFound(f"--data-dir {data_dir}: no such folder")
    looked: list[str] = []
    for root, why in _roots(data_dir):
        found = _FINDERS[key](root)
        looked.append(f"{root} ({why})")
        if found is not None:
            return Located(key, found[0], found[1])
    offline = os.environ.get("NASX_OFFLINE", "").strip() not in ("", "0", "false", "no")
    if download and not offline and key in _DOWNLOADS:
        return Located(key, None, "download")
    why = "--no-download was given" if not download else "NASX_OFFLINE=1 is set" if offline else "no download for it"
    raise DataNotFound(
        f"{key} not found; looked in {'; '.join(looked) or 'nowhere'}. {_HOW[key]} "
        f"Give its folder with --data-dir DIR or NASX_DATA=DIR"
        + (f" (not downloading: {why})." if key in _DOWNLOADS else ".")
    )


def load_raw(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = True,
    progress: Progress | None = None,
) -> Raw:
    """The official train/test sets of `name`, from the decoded cache when it is fresh."""
    found = locate(name, data_dir=data_dir, download=download)
    key = found.key
    if found.kind == "synthetic":
        return _synthetic(size=int(key.partition(":")[2] or 16))
    if found.kind == "download":
        path, kind = _download(key, progress)
    else:
        path, kind = found.path, found.kind
    return _cached(key, path, lambda: _read_source(key, path, kind, progress), progress)


def split(raw: Raw, val_size: int | float = 5000, seed: int = 0) -> Dataset:
    """Hold a stratified validation split out of `raw`'s training set (seeded; see `stratified_indices`)."""
    n = len(raw.train_y)
    n_val = int(round(val_size * n)) if isinstance(val_size, float) and 0 < val_size < 1 else int(val_size)
    if not 0 <= n_val < n:
        raise DataError(f"val_size {val_size} must leave at least one training image (the training set has {n})")
    val_idx = stratified_indices(raw.train_y, n_val, seed)
    keep = torch.ones(n, dtype=torch.bool)
    keep[val_idx] = False
    train_idx = keep.nonzero().squeeze(1)
    train_x = raw.train_x[train_idx]
    mean, std = _channel_stats(train_x)
    digest = hashlib.sha256(f"{raw.content_hash}|{n_val}|".encode())
    digest.update(val_idx.numpy().astype("<i8").tobytes())
    return Dataset(
        name=raw.name, train_x=train_x, train_y=raw.train_y[train_idx], val_x=raw.train_x[val_idx],
        val_y=raw.train_y[val_idx], test_x=raw.test_x, test_y=raw.test_y, classes=raw.classes,
        mean=mean, std=std, split_hash=digest.hexdigest()[:12], source=raw.source, seed=seed, val_indices=val_idx,
    )


def stratified_indices(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """`size` indices (sorted) drawn per class in proportion to its frequency (largest remainder),
    at random under `seed` (numpy's PCG64); the same labels, size and seed always give the same indices."""
    y = labels.cpu().numpy()
    n = len(y)
    if size <= 0:
        return torch.zeros(0, dtype=torch.long)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * size / n
    take = np.floor(quota).astype(np.int64)
    short = size - int(take.sum())
    if short:
        order = sorted(range(len(classes)), key=lambda i: (-(quota[i] - take[i]), i))
        take[order[:short]] += 1
    perm = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    shuffled = y[perm]
    picked = [perm[shuffled == c][:k] for c, k in zip(classes, take)]
    return torch.from_numpy(np.sort(np.concatenate(picked)).astype(np.int64))


# ---------------------------------------------------------------------------------------------
# Where to look


def _roots(data_dir: str | Path | None) -> list[tuple[Path, str]]:
    roots: list[tuple[Path, str]] = []
    if data_dir:  # given: looked in first, then only where nasx itself downloads to (never $NASX_DATA instead)
        return [(Path(data_dir).expanduser(), "--data-dir"), (cache_dir() / "data", "cache")]
    if os.environ.get("NASX_DATA"):
        roots.append((Path(os.environ["NASX_DATA"]).expanduser(), "NASX_DATA"))
    roots.append((Path("/usr/share/datasets"), "system"))
    roots.append((cache_dir() / "data", "cache"))
    return roots


def _candidates(root: Path, *names: str) -> list[Path]:
    """root itself and root/<alias> for each alias (a data dir may hold several datasets)."""
    return [root] + [root / n for n in names]


def _is_imagefolder(d: Path) -> bool:
    return (d / "train").is_dir() and any(p.is_dir() for p in (d / "train").iterdir())


def _find_cifar(root: Path, folder: str, archive: str, aliases: tuple[str, ...]):
    if root.is_file():
        return (root, "tar") if root.name.endswith((".tar.gz", ".tgz", ".tar")) else None
    for d in _candidates(root, *aliases):
        if not d.is_dir():
            continue
        if (d / folder).is_dir():
            return d / folder, "pickle"
        if d.name == folder:
            return d, "pickle"
        if (d / archive).is_file():
            return d / archive, "tar"
        if _is_imagefolder(d):
            return d, "imagefolder"
        # any archive in a folder named for the dataset; in a general data dir, one named for it
        archives = sorted(p for p in list(d.glob("*.tar.gz")) + list(d.glob("*.tgz"))
                          if d is not root or _names_dataset(p.name, aliases[0]))
        if archives:
            return archives[0], "tar"
    return None


def _names_dataset(filename: str, key: str) -> bool:
    """'cifar10-jpeg.tar.gz' names cifar10; 'cifar-100-python.tar.gz' names cifar100, not cifar10."""
    flat = filename.lower().replace("-", "").replace("_", "")
    at = flat.find(key)
    return at >= 0 and not flat[at + len(key): at + len(key) + 1].isdigit()


def _find_fashion(root: Path):
    if root.is_file():
        root = root.parent
    for d in _candidates(root, "fashion-mnist", "fashion_mnist", "FashionMNIST", "FashionMNIST/raw"):
        if all(_idx_file(d, stem) for stem in _FASHION_FILES):
            return d, "idx"
    return None


_FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_file(d: Path, stem: str) -> Path | None:
    for p in (d / f"{stem}.gz", d / stem):
        if p.is_file():
            return p
    return None


_FINDERS: dict[str, Callable[[Path], tuple[Path, str] | None]] = {
    "cifar10": lambda r: _find_cifar(r, "cifar-10-batches-py", "cifar-10-python.tar.gz", ("cifar10", "cifar-10", "CIFAR10")),
    "cifar100": lambda r: _find_cifar(r, "cifar-100-python", "cifar-100-python.tar.gz", ("cifar100", "cifar-100", "CIFAR100")),
    "fashion-mnist": _find_fashion,
}

_HOW = {
    "cifar10": "Provide torchvision's cifar-10-batches-py/ (or cifar-10-python.tar.gz), an image folder "
               "train/<class>/ test/<class>/, or a .tar.gz of one.",
    "cifar100": "Provide torchvision's cifar-100-python/ (or cifar-100-python.tar.gz) or an image folder "
                "train/<class>/ test/<class>/.",
    "fashion-mnist": "Provide the four idx files (train-images-idx3-ubyte.gz, ...), e.g. from Debian's "
                     "dataset-fashion-mnist package.",
}

_DOWNLOADS = {
    "cifar10": [("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")],
    "cifar100": [("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85")],
    "fashion-mnist": [
        (f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{stem}.gz", md5)
        for stem, md5 in zip(_FASHION_FILES, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                                              "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))
    ],
}


def _download(key: str, progress: Progress | None) -> tuple[Path, str]:
    """torchvision's files into $NASX_CACHE/data/<key>/, md5-checked; returns what the finder would."""
    dest_dir = cache_dir() / "data" / key
    dest_dir.mkdir(parents=True, exist_ok=True)
    for url, md5 in _DOWNLOADS[key]:
        dest = dest_dir / url.rsplit("/", 1)[1]
        if dest.is_file() and _md5(dest) == md5:
            continue
        tmp = dest.with_name(dest.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(f"download {dest.name}", done, total)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise DataError(f"{key}: download of {url} failed ({e}); get it by hand and pass --data-dir") from None
        got = _md5(tmp)
        if got != md5:
            tmp.unlink(missing_ok=True)
            raise DataError(f"{key}: {url} has md5 {got}, expected {md5}; not using it")
        tmp.replace(dest)
    found = _FINDERS[key](dest_dir)
    assert found is not None, dest_dir
    return found


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# The decoded cache


def _fingerprint(path: Path) -> str:
    """Path + size + mtime of the source (of every file under it, for a folder)."""
    h = hashlib.sha256(str(path.resolve()).encode())
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        st = p.stat()
        h.update(f"|{p.relative_to(path) if p != path else ''}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _cached(key: str, path: Path, read: Callable[[], Raw], progress: Progress | None) -> Raw:
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)[:40]
    file = cache_dir() / "decoded" / f"{slug}-{_fingerprint(path)}-v{_CACHE_VERSION}.pt"
    if file.is_file():
        try:
            blob = torch.load(file, weights_only=True)
            return Raw(name=blob["name"], train_x=blob["train_x"], train_y=blob["train_y"], test_x=blob.get("test_x"),
                       test_y=blob.get("test_y"), classes=tuple(json.loads(blob["classes"].numpy().tobytes())),
                       source=str(path), content_hash=blob["content_hash"].numpy().tobytes().decode())
        except Exception:  # a truncated or foreign file: decode again and overwrite it
            pass
    raw = read()
    file.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "name": raw.name, "train_x": raw.train_x, "train_y": raw.train_y,
        "classes": torch.frombuffer(bytearray(json.dumps(list(raw.classes)).encode()), dtype=torch.uint8),
        "content_hash": torch.frombuffer(bytearray(raw.content_hash.encode()), dtype=torch.uint8),
    }
    if raw.test_x is not None:
        blob["test_x"], blob["test_y"] = raw.test_x, raw.test_y
    fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(blob, tmp)
        os.replace(tmp, file)  # atomic: concurrent loaders see the old state or the whole file
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # never leave a cut temp file behind
        code = getattr(e, "errno", None)
        size = sum(t.numel() * t.element_size() for t in blob.values() if isinstance(t, torch.Tensor))
        if code is None and shutil.disk_usage(file.parent).free < size:
            code = errno.ENOSPC
        reason = os.strerror(code) if code else str(e).strip().splitlines()[0]
        raise OSError(code or errno.EIO, f"cannot write the decoded-data cache ({reason}); free space there or set "
                                         f"NASX_CACHE to a folder with room", str(file.parent)) from None
    return raw


def _content_hash(*tensors: Optional[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        if t is not None:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _raw(name: str, train_x, train_y, test_x, test_y, classes, source: str) -> Raw:
    as_x = lambda a: None if a is None else torch.from_numpy(np.array(a, dtype=np.uint8, order="C"))  # noqa: E731
    as_y = lambda a: None if a is None else torch.from_numpy(np.asarray(a, dtype=np.int64))  # noqa: E731
    tx, ty, vx, vy = as_x(train_x), as_y(train_y), as_x(test_x), as_y(test_y)
    return Raw(name, tx, ty, vx, vy, tuple(classes), source, _content_hash(tx, ty, vx, vy))


# ---------------------------------------------------------------------------------------------
# Readers


def _read_source(key: str, path: Path, kind: str, progress: Progress | None) -> Raw:
    """Read with the reader of `kind`; a truncated, damaged or unreadable file is a one-line DataError."""
    import zlib

    readers = {"pickle": lambda: _read_cifar_pickles(key, path, _open_folder(path)), "idx": lambda: _read_idx(key, path),
               "tar": lambda: _read_tar(key, path, progress), "imagefolder": lambda: _read_imagefolder(key, path, progress)}
    try:
        return readers[kind]()
    except DataError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, pickle.UnpicklingError, struct.error, OSError, ValueError,
            KeyError, IndexError) as e:  # EOFError: click would turn it into a bare "Aborted."
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, OSError) and e.errno is not None and e.strerror:
            raise DataError(f"{key}: cannot read {e.filename or path} ({e.strerror})") from None
        raise DataError(f"{key}: {path} is truncated or damaged ({detail}); download it again, or point "
                        f"--data-dir at a good copy") from None


def _open_folder(path: Path) -> Callable[[str], bytes | None]:
    return lambda name: (path / name).read_bytes() if (path / name).is_file() else None


def _read_cifar_pickles(key: str, source: Path, get: Callable[[str], bytes | None]) -> Raw:
    """torchvision's python pickles: data (N x 3072, RGB planes), labels / fine_labels, a meta file."""
    def batch(name: str) -> dict:
        blob = get(name)
        if blob is None:
            raise DataError(f"{key}: {source} lacks {name}")
        return pickle.loads(blob, encoding="latin1")

    if key == "cifar100":
        train_b, test_b = [batch("train")], [batch("test")]
        classes = batch("meta")["fine_label_names"]
        label = "fine_labels"
    else:
        train_b = [batch(f"data_batch_{i}") for i in range(1, 6)]
        test_b = [batch("test_batch")]
        classes = batch("batches.meta")["label_names"]
        label = "labels"

    def stack(batches):
        x = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches]).reshape(-1, 3, 32, 32)
        y = np.concatenate([np.asarray(b[label], dtype=np.int64) for b in batches])
        return x, y

    (trx, try_), (tex, tey) = stack(train_b), stack(test_b)
    return _raw(key, trx, try_, tex, tey, classes, str(source))


def _read_idx(key: str, d: Path) -> Raw:
    def read(stem: str) -> np.ndarray:
        p = _idx_file(d, stem)
        data = gzip.open(p).read() if p.suffix == ".gz" else p.read_bytes()
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08:
            raise DataError(f"{key}: {p} is not an idx file of unsigned bytes")
        shape = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)

    trx, try_, tex, tey = (read(s) for s in _FASHION_FILES)
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    return _raw(key, trx[:, None], try_, tex[:, None], tey, classes, str(d))


def _read_tar(key: str, path: Path, progress: Progress | None) -> Raw:
    """A .tar.gz of torchvision's pickles or of an image folder, read in one pass without extracting."""
    files: dict[str, bytes] = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if member.isfile():
                f = tar.extractfile(member)
                if f is not None:
                    files[member.name.lstrip("./")] = f.read()
    # torchvision's archive: <folder>/data_batch_1 ... ; look for the batch files by base name
    by_base = {}
    for name, blob in files.items():
        by_base.setdefault(name.rsplit("/", 1)[-1], blob)
    if key in ("cifar10", "cifar100") and ("data_batch_1" in by_base or ("train" in by_base and "meta" in by_base)):
        return _read_cifar_pickles(key, path, by_base.get)
    entries = [(name, blob) for name, blob in files.items() if Path(name).suffix.lower() in _IMAGE_SUFFIXES]
    return _from_image_entries(key, path, entries, progress)


def _read_imagefolder(key: str, path: Path, progress: Progress | None) -> Raw:
    if path.is_file():
        return _read_tar(key, path, progress)
    entries = [(str(p.relative_to(path)), p) for p in sorted(path.rglob("*"))
               if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES]
    return _from_image_entries(key, path, entries, progress)


def _from_image_entries(key: str, source: Path, entries: list, progress: Progress | None) -> Raw:
    """Image-folder layout from (relative path, bytes-or-Path) pairs: [prefix/]{train,test}/<class>/<file>
    or [prefix/]<class>/<file> (then all is training data and there is no test set)."""
    split_of: dict[str, list] = {"train": [], "test": []}
    plain: list = []
    for name, item in entries:
        parts = Path(name).parts
        if len(parts) >= 3 and parts[-3] in ("train", "test"):
            split_of[parts[-3]].append((parts[-2], name, item))
        elif len(parts) >= 2:
            plain.append((parts[-2], name, item))
    if not split_of["train"]:
        split_of = {"train": plain, "test": []}
    if not split_of["train"]:
        raise DataError(f"{key}: no images in {source} in train/<class>/<image> or <class>/<image> layout")
    classes = sorted({c for c, _, _ in split_of["train"]})
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({c for c, _, _ in split_of["test"]} - set(index))
    if unknown:
        raise DataError(f"{key}: test classes {', '.join(unknown[:3])} have no training images in {source}")
    order = {s: sorted(items, key=lambda t: (index[t[0]], t[1])) for s, items in split_of.items()}
    all_items = [item for s in ("train", "test") for _, _, item in order[s]]
    images = _decode_all(all_items, progress)
    n_train = len(order["train"])
    labels = {s: [index[c] for c, _, _ in order[s]] for s in order}
    test_x = images[n_train:] if order["test"] else None
    return _raw(key, images[:n_train], labels["train"], test_x, labels["test"] if order["test"] else None,
                classes, str(source))


def _decode_one(item) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(item) if isinstance(item, (bytes, bytearray)) else item) as im:
        im = im.convert("L") if im.mode in ("L", "I;16", "1") else im.convert("RGB")
        return np.asarray(im)


def _decode_chunk(items: list) -> list[np.ndarray]:
    return [_decode_one(i) for i in items]


def _decode_all(items: list, progress: Progress | None) -> np.ndarray:
    """Decode with a process pool (fork where available); every image must have one size and mode."""
    import concurrent.futures as cf
    import multiprocessing as mp

    n = len(items)
    workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 16)
    chunk = 2000
    chunks = [items[i: i + chunk] for i in range(0, n, chunk)]
    decoded: list[np.ndarray] = []
    if workers > 1 and n > 2 * chunk and "fork" in mp.get_all_start_methods():
        with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            for part in pool.map(_decode_chunk, chunks):
                decoded.extend(part)
                if progress:
                    progress("decode", len(decoded), n)
    else:
        for c in chunks:
            decoded.extend(_decode_chunk(c))
            if progress:
                progress("decode", len(decoded), n)
    shapes = {a.shape for a in decoded}
    if len(shapes) != 1:
        raise DataError(f"images differ in size or channels ({', '.join(map(str, sorted(shapes)[:3]))}); "
                        "resize them to one square size first")
    shape = shapes.pop()
    if shape[0] != shape[1]:
        raise DataError(f"images are {shape[1]}x{shape[0]}; nasx needs square images")
    stacked = np.stack(decoded)
    return stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)


# ---------------------------------------------------------------------------------------------
# Statistics and the synthetic set


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the 0..1 scale, exact, from a 256-bin histogram of each channel."""
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    mean, std = [], []
    for c in range(x.shape[1]):
        hist = torch.bincount(x[:, c].reshape(-1), minlength=256).double()
        m = float((hist * levels).sum() / hist.sum())
        v = float((hist * (levels - m) ** 2).sum() / hist.sum())
        mean.append(round(m, 6))
        std.append(round(max(v, 1e-12) ** 0.5, 6))
    return tuple(mean), tuple(std)


def _synthetic(n_train: int = 2000, n_test: int = 500, classes: int = 10, size: int = 16) -> Raw:
    """Class = a fixed random low-frequency colour pattern; each image is its pattern, shifted by up to 2
    pixels, plus noise. Deterministic (fixed seed), learnable by a small net in a few epochs."""
    g = torch.Generator().manual_seed(1234)
    coarse = torch.rand(classes, 3, 4, 4, generator=g)
    templates = torch.nn.functional.interpolate(coarse, size=(size + 4, size + 4), mode="bilinear", align_corners=False)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % classes
        y = y[torch.randperm(n, generator=g)]
        dx, dy = torch.randint(0, 5, (2, n), generator=g)
        x = torch.stack([templates[c, :, j: j + size, i: i + size] for c, i, j in zip(y.tolist(), dx.tolist(), dy.tolist())])
        x = x + 0.15 * torch.randn(x.shape, generator=g)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8), y

    trx, try_ = make(n_train)
    tex, tey = make(n_test)
    return Raw("synthetic" if size == 16 else f"synthetic:{size}", trx, try_, tex, tey, tuple(f"class{i}" for i in range(classes)), "synthetic",
               _content_hash(trx, try_, tex, tey))
