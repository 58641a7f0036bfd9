"""What a loaded dataset is: the official sets (`Raw`), their seeded, stratified train/validation split
(`Dataset`, `split`), the per-channel statistics and content hash stored with results, and the errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

import numpy as np
import torch

from ..errors import NasxError
from ..net.fit import InputShape

__all__ = ["Progress", "DataError", "DataNotFound", "Raw", "Dataset", "split", "stratified_indices", "channel_stats",
           "content_hash", "raw_from"]

# progress(what, done, total): e.g. ("download cifar-10-python.tar.gz", bytes, total_bytes) or
# ("decode", images, total_images); total may be 0 when unknown.
Progress = Callable[[str, int, int], None]


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
    mean, std = channel_stats(train_x)
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


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
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


def content_hash(*tensors: Optional[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        if t is not None:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def raw_from(name: str, train_x, train_y, test_x, test_y, classes, source: str) -> Raw:
    as_x = lambda a: None if a is None else torch.from_numpy(np.array(a, dtype=np.uint8, order="C"))  # noqa: E731
    as_y = lambda a: None if a is None else torch.from_numpy(np.asarray(a, dtype=np.int64))  # noqa: E731
    tx, ty, vx, vy = as_x(train_x), as_y(train_y), as_x(test_x), as_y(test_y)
    return Raw(name, tx, ty, vx, vy, tuple(classes), source, content_hash(tx, ty, vx, vy))
