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

The package by job: `sources` (where to look, downloads), `formats` (decoding each format; the input shape
from the first record), `cache` (the decoded cache), `dataset` (Raw, Dataset and the split), `loading` (the
entry points below).
"""

from __future__ import annotations

from .cache import cache_dir
from .dataset import DataError, DataNotFound, Dataset, Progress, Raw, split, stratified_indices
from .loading import input_shape, load, load_raw
from .sources import DATASETS, Located, locate

__all__ = [
    "DATASETS",
    "DataError",
    "DataNotFound",
    "Dataset",
    "Raw",
    "Progress",
    "cache_dir",
    "input_shape",
    "load",
    "load_raw",
    "locate",
    "Located",
    "split",
    "stratified_indices",
]
