"""The entry points: `load` (found, decoded or read from the cache, split), `load_raw` (before the split) and
`input_shape` (what a net fitted to the dataset takes, from the cache or the first record: no decode)."""

from __future__ import annotations

from pathlib import Path

from ..net.fit import InputShape
from .cache import cached, cached_input
from .dataset import Dataset, Progress, Raw, split
from .formats import KNOWN_INPUTS, probe_input, read_source, synthetic
from .sources import download_files, locate

__all__ = ["load", "load_raw", "input_shape"]


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
        return synthetic(size=int(key.partition(":")[2] or 16))
    if found.kind == "download":
        path, kind = download_files(key, progress)
    else:
        path, kind = found.path, found.kind
    return cached(key, path, lambda: read_source(key, path, kind, progress), progress)


def input_shape(name: str, *, data_dir: str | Path | None = None, download: bool = True) -> InputShape:
    """What a net fitted to `name` takes (side, channels, classes; the same as `load(name).input`) without decoding:
    found as `load` finds it (DataError the same way), then the fixed table for torchvision's files, the decoded
    cache's shapes, or an image folder's layout and first image header."""
    found = locate(name, data_dir=data_dir, download=download)
    if found.kind == "synthetic":
        return InputShape(int(found.key.partition(":")[2] or 16), 3, 10)
    if found.kind == "download":  # torchvision's files
        return KNOWN_INPUTS[found.key]
    return cached_input(found.key, found.path) or probe_input(found.key, found.path, found.kind)
