"""Decoding the source formats into a `Raw`: torchvision's CIFAR pickles (a folder or a .tar.gz), Fashion-MNIST's
idx files, image folders (a folder or a .tar.gz) and the generated synthetic set; and the input shape of a
source read from its first record (an image header, a fixed table for the fixed formats), without decoding."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from ..net.fit import InputShape
from .dataset import DataError, Progress, Raw, content_hash, raw_from

__all__ = ["FASHION_FILES", "IMAGE_SUFFIXES", "KNOWN_INPUTS", "idx_file", "read_source", "probe_input", "synthetic"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}

FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_file(d: Path, stem: str) -> Path | None:
    for p in (d / f"{stem}.gz", d / stem):
        if p.is_file():
            return p
    return None


# ---------------------------------------------------------------------------------------------
# Readers


def read_source(key: str, path: Path, kind: str, progress: Progress | None) -> Raw:
    """Read with the reader of `kind`; a truncated, damaged or unreadable file is a one-line DataError."""
    readers = {"pickle": lambda: _read_cifar_pickles(key, path, _open_folder(path)), "idx": lambda: _read_idx(key, path),
               "tar": lambda: _read_tar(key, path, progress), "imagefolder": lambda: _read_imagefolder(key, path, progress)}
    with _readable(key, path):
        return readers[kind]()


@contextlib.contextmanager
def _readable(key: str, path: Path) -> Iterator[None]:
    """Turn a truncated, damaged or unreadable source met inside into a one-line DataError that names it."""
    import zlib

    try:
        yield
    except DataError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, pickle.UnpicklingError, struct.error, OSError, ValueError,
            KeyError, IndexError, TypeError, AttributeError) as e:  # EOFError: click would turn it into a bare "Aborted."
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, OSError) and e.errno is not None and e.strerror:
            raise DataError(f"{key}: cannot read {e.filename or path} ({e.strerror})") from None
        raise DataError(f"{key}: {path} is truncated or damaged ({detail}); download it again, or point "
                        f"--data-dir at a good copy") from None


def _open_folder(path: Path) -> Callable[[str], bytes | None]:
    return lambda name: (path / name).read_bytes() if (path / name).is_file() else None


class _BatchUnpickler(pickle.Unpickler):
    """Reads a CIFAR python batch as data: the only globals it resolves are the few that a pickled numpy array
    names (what the real batches, written by Python 2's cPickle, and numpy's later protocols reference); anything
    else, the way a crafted pickle runs code, is an UnpicklingError before it is called."""

    def find_class(self, module: str, name: str):
        found = _BATCH_GLOBALS.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which a CIFAR batch never holds")
        return found


def _empty_array(subtype, shape, dtype):
    """numpy's `_reconstruct`, as a pickled array calls it: an empty ndarray that __setstate__ then fills."""
    if subtype is not np.ndarray or tuple(shape) != (0,):  # numpy writes exactly this; a size here would allocate
        raise pickle.UnpicklingError("an array that numpy does not write")
    return np.ndarray((0,), dtype=np.dtype(dtype))


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as Python 3 pickles bytes under protocol 2: latin-1 only (any codec could be asked for)."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"bytes in encoding {encoding!r}, which pickle never writes")
    return text.encode("latin1")


def _from_buffer(buffer, dtype, shape, order):
    """numpy's `_frombuffer` (protocol 5): an array over the pickle's own bytes."""
    return np.frombuffer(buffer, dtype=np.dtype(dtype)).reshape(shape, order=order)


_BATCH_GLOBALS = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1,
                  **{(f"{core}.multiarray", "_reconstruct"): _empty_array for core in ("numpy.core", "numpy._core")},
                  **{(f"{core}.numeric", "_frombuffer"): _from_buffer for core in ("numpy.core", "numpy._core")}}


def _read_cifar_pickles(key: str, source: Path, get: Callable[[str], bytes | None]) -> Raw:
    """torchvision's python pickles: data (N x 3072, RGB planes), labels / fine_labels, a meta file; read by
    `_BatchUnpickler`, so a batch from anyone executes nothing."""
    def batch(name: str) -> dict:
        blob = get(name)
        if blob is None:
            raise DataError(f"{key}: {source} lacks {name}")
        try:
            data = _BatchUnpickler(io.BytesIO(blob), encoding="latin1").load()
        except pickle.UnpicklingError as e:
            raise DataError(f"{key}: {source}: {name} is not a CIFAR batch ({e}); download it again, or point "
                            f"--data-dir at a good copy") from None
        if not isinstance(data, dict):
            raise DataError(f"{key}: {source}: {name} is not a CIFAR batch (a {type(data).__name__}, not a "
                            f"mapping); download it again, or point --data-dir at a good copy")
        return data

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
    return raw_from(key, trx, try_, tex, tey, classes, str(source))


def _read_idx(key: str, d: Path) -> Raw:
    def read(stem: str) -> np.ndarray:
        p = idx_file(d, stem)
        data = gzip.open(p).read() if p.suffix == ".gz" else p.read_bytes()
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08:
            raise DataError(f"{key}: {p} is not an idx file of unsigned bytes")
        shape = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)

    trx, try_, tex, tey = (read(s) for s in FASHION_FILES)
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    return raw_from(key, trx[:, None], try_, tex[:, None], tey, classes, str(d))


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
    if _pickle_archive(key, by_base):
        return _read_cifar_pickles(key, path, by_base.get)
    entries = [(name, blob) for name, blob in files.items() if Path(name).suffix.lower() in IMAGE_SUFFIXES]
    return _from_image_entries(key, path, entries, progress)


def _pickle_archive(key: str, base_names) -> bool:
    """torchvision's archive of CIFAR pickles (<folder>/data_batch_1 ..., or train and meta), by base name."""
    return key in ("cifar10", "cifar100") and ("data_batch_1" in base_names
                                               or ("train" in base_names and "meta" in base_names))


def _read_imagefolder(key: str, path: Path, progress: Progress | None) -> Raw:
    if path.is_file():
        return _read_tar(key, path, progress)
    return _from_image_entries(key, path, _folder_entries(path), progress)


def _folder_entries(path: Path) -> list[tuple[str, Path]]:
    """(relative path, path) of every image file under the folder `path`, sorted."""
    return [(str(p.relative_to(path)), p) for p in sorted(path.rglob("*"))
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def _layout(key: str, source: Path, entries: list) -> tuple[list[str], dict[str, list]]:
    """The classes and, per split, the (class, name, item) triples in label order of (relative path, item) pairs:
    [prefix/]{train,test}/<class>/<file> or [prefix/]<class>/<file> (then all is training data, no test set)."""
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
    return classes, {s: sorted(items, key=lambda t: (index[t[0]], t[1])) for s, items in split_of.items()}


def _from_image_entries(key: str, source: Path, entries: list, progress: Progress | None) -> Raw:
    """Decode an image-folder layout (see `_layout`) of (relative path, bytes-or-Path) pairs."""
    classes, order = _layout(key, source, entries)
    index = {c: i for i, c in enumerate(classes)}
    all_items = [item for s in ("train", "test") for _, _, item in order[s]]
    images = _decode_all(all_items, progress)
    n_train = len(order["train"])
    labels = {s: [index[c] for c, _, _ in order[s]] for s in order}
    test_x = images[n_train:] if order["test"] else None
    return raw_from(key, images[:n_train], labels["train"], test_x, labels["test"] if order["test"] else None,
                classes, str(source))


def _decode_one(item) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(item) if isinstance(item, (bytes, bytearray)) else item) as im:
        im = im.convert("L") if _channels(im.mode) == 1 else im.convert("RGB")
        return np.asarray(im)


def _channels(mode: str) -> int:
    """Channels an image of PIL `mode` decodes to: grey modes 1, every other mode RGB."""
    return 1 if mode in ("L", "I;16", "1") else 3


def _square_side(width: int, height: int) -> int:
    """The side of a square image; DataError for any other."""
    if width != height:
        raise DataError(f"images are {width}x{height}; nasx needs square images")
    return width


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
    _square_side(shape[1], shape[0])
    stacked = np.stack(decoded)
    return stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)


def synthetic(n_train: int = 2000, n_test: int = 500, classes: int = 10, size: int = 16) -> Raw:
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
               content_hash(trx, try_, tex, tey))


# ---------------------------------------------------------------------------------------------
# The input shape without decoding

KNOWN_INPUTS = {"cifar10": InputShape(32, 3, 10), "cifar100": InputShape(32, 3, 100),
                "fashion-mnist": InputShape(28, 1, 10)}  # what torchvision's files (pickles, idx) hold


def probe_input(key: str, path: Path, kind: str) -> InputShape:
    """The input shape of the source at `path` without decoding it: the fixed table for CIFAR pickles and idx
    files; for an image folder (or a .tar.gz of one), its classes from the layout and its side and channels from
    the first image's header. A source the decode would refuse is refused the same way where the layout shows it."""
    if kind in ("pickle", "idx"):
        return KNOWN_INPUTS[key]
    with _readable(key, path):
        if kind == "tar" or path.is_file():
            names, first = _tar_listing(path)
            if _pickle_archive(key, {name.rsplit("/", 1)[-1] for name in names}):
                return KNOWN_INPUTS[key]
            entries = [(name, None) for name in names if Path(name).suffix.lower() in IMAGE_SUFFIXES]
        else:
            entries = _folder_entries(path)
            first = entries[0][1] if entries else None
        classes, _ = _layout(key, path, entries)
        return _header_input(first, len(classes))


def _tar_listing(path: Path) -> tuple[list[str], Optional[bytes]]:
    """The file names in the archive (one pass, nothing extracted) and the bytes of its first image."""
    names, first = [], None
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if member.isfile():
                name = member.name.lstrip("./")
                names.append(name)
                if first is None and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    f = tar.extractfile(member)
                    first = f.read() if f is not None else None
    return names, first


def _header_input(item, num_classes: int) -> InputShape:
    """Side and channels from an image's header (bytes or a path; its pixels are not decoded)."""
    from PIL import Image

    with Image.open(io.BytesIO(item) if isinstance(item, (bytes, bytearray)) else item) as im:
        return InputShape(_square_side(*im.size), _channels(im.mode), num_classes)
